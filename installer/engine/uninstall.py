"""The uninstall plan, in the order domain.md section 7 gives: the sample first, then the GPU
Operator, the labels it leaves behind, kata-deploy, and last the installer's own record.

Nodes return to the labels recorded before the first install (ConfigMap
kube-system/gpu-kata-installer-state); without a record, the operator's known labels go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from installer.answers.model import SAMPLE_POD, Answers
from installer.charts.effects import gpu_operator_removal_effects, kata_deploy_removal_effects
from installer.charts.helm import seconds
from installer.cluster.facts import (
    KATA_RUNTIME_LABEL,
    STATE_CONFIGMAP,
    WORKLOAD_LABEL,
    Facts,
    ReleaseFacts,
    managed_labels,
    require_record,
)
from installer.engine import revert
from installer.engine.hostroute import reached_by_pod
from installer.engine.params import (
    DeleteCrdsParams,
    DeleteSampleParams,
    DeleteStateParams,
    DiscoverParams,
    HelmUninstallParams,
    PatchLabelsParams,
    RemoveHostAccessParams,
    VerifyUninstalledParams,
    params_json,
)
from installer.engine.plan import Change, Plan, Step

OPERATOR_LABEL_PREFIXES = (WORKLOAD_LABEL, "nvidia.com/gpu.deploy.", "nvidia.com/cc.")
OPERATOR_CRDS = ("clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com")


def label_restore(current: dict[str, str], recorded: dict[str, str] | None
                  ) -> dict[str, str | None]:
    """The label patch that returns a node to its recorded labels (None removes a label).

    kata-deploy's own label is left to kata-deploy, whose uninstall removes it.
    """
    ours = {k: v for k, v in managed_labels(current).items() if k != KATA_RUNTIME_LABEL}
    if recorded is None:
        return {k: None for k in ours if k.startswith(OPERATOR_LABEL_PREFIXES)}
    patch: dict[str, str | None] = {k: None for k in ours if k not in recorded}
    patch.update({k: v for k, v in recorded.items()
                  if k != KATA_RUNTIME_LABEL and current.get(k) != v})
    return patch


def _helm_uninstall(step_id: str, release: str, namespace: str, timeout: str,
                    facts: Facts, effects: Callable[[ReleaseFacts], list[str]]
                    ) -> list[Step[HelmUninstallParams]]:
    current = facts.cluster.release(release, namespace) if facts.cluster else None
    params = HelmUninstallParams(release, namespace,
                                 ("helm", "uninstall", release, "--namespace", namespace,
                                  "--wait", "--timeout", timeout),
                                 tuple(effects(current)) if current else ())
    if facts.cluster and current is None:
        return [Step(step_id, "change", f"Uninstall {release}", params,
                     note=f"release {namespace}/{release} is not installed")]
    return [Step(step_id, "change", f"Uninstall {release}", params,
                 (Change("helm", f"{namespace}/{release}",
                         f"helm uninstall {release} in namespace {namespace}",
                         params_json(params)),))]


def build_uninstall_plan(answers: Answers, facts: Facts, *, remove_crds: bool = False,
                         revert_hosts: bool = False) -> Plan:
    """`revert_hosts`: the operator's consent (flag) to revert the host fixes; the answers'
    uninstall.revertHosts gives it too (installer.engine.revert)."""
    if facts.cluster is None:
        return Plan((Step("discover/cluster", "gather", "Discover the cluster's nodes and releases",
                          DiscoverParams(answers.cluster.kubeconfig, answers.cluster.context)),),
                    (), facts.source)
    require_record(facts)
    kd, op = answers.kata_deploy, answers.gpu_operator
    sample_ns = "default"
    steps: list[Step[Any]] = [
        *revert.probe_steps(answers, facts),
        Step("uninstall/sample", "change", "Delete the sample pod if it is there",
             DeleteSampleParams(sample_ns),
             (Change("cluster", f"{sample_ns}/{SAMPLE_POD}",
                     f"delete pod {sample_ns}/{SAMPLE_POD} if present, and any upgrade "
                     f"verification pod {SAMPLE_POD}-<node> an interrupted run left "
                     "(graceful)"),))]
    nodes = facts.cluster.nodes
    steps += _helm_uninstall("uninstall/gpu-operator", op.release, op.namespace, op.timeout,
                             facts, lambda r: gpu_operator_removal_effects(r.version, nodes))
    if remove_crds:
        steps.append(Step("uninstall/crds", "change", "Remove the GPU Operator's CRDs",
                          DeleteCrdsParams(OPERATOR_CRDS),
                          tuple(Change("cluster", crd, f"delete CRD {crd}")
                                for crd in OPERATOR_CRDS)))
    recorded = facts.cluster.recorded_labels
    warnings = [] if recorded is not None else [
        "no record of the labels before install was found: removing the operator's labels "
        "(nvidia.com/gpu.workload.config, gpu.deploy.*, cc.*)"]
    for node in facts.cluster.nodes:
        patch = label_restore(node.labels, None if recorded is None
                              else recorded.get(node.name, {}))
        if patch:
            desc = ", ".join(f"{k}={v}" if v is not None else f"-{k}" for k, v in
                             sorted(patch.items()))
            steps.append(Step(f"uninstall/labels/{node.name}", "change",
                              f"Restore {node.name}'s labels",
                              PatchLabelsParams(node.name, patch),
                              (Change("label", node.name, f"label node {node.name} {desc}",
                                      {"node": node.name, "labels": patch}),)))
    steps += _helm_uninstall("uninstall/kata-deploy", kd.release, kd.namespace, kd.timeout,
                             facts, lambda r: kata_deploy_removal_effects(nodes))
    hosts, host_warnings = revert.revert_steps(answers, facts,
                                               revert.consented(answers, revert_hosts))
    steps += hosts
    warnings += host_warnings
    if any(reached_by_pod(answers, n.name) for n in facts.cluster.nodes):
        pods_ns = answers.host_access.namespace
        steps.append(Step("uninstall/host-access", "change",
                          "Remove the host-access namespace if the installer made it",
                          RemoveHostAccessParams(pods_ns), (Change(
                              "cluster", pods_ns, f"delete namespace {pods_ns} if the "
                              "installer made it (label app.kubernetes.io/managed-by="
                              "gpu-kata-installer), else only host-access pods left in it"),)))
    ns, name = STATE_CONFIGMAP
    if recorded is not None:
        steps.append(Step("uninstall/state", "change", "Forget the recorded labels",
                          DeleteStateParams(), (Change("cluster", f"{ns}/{name}",
                                                      f"delete ConfigMap {ns}/{name}"),)))
    steps.append(Step("verify/uninstalled", "verify", "Nodes back to their recorded labels",
                      VerifyUninstalledParams(recorded, seconds(kd.timeout))))
    return Plan(tuple(steps), tuple(warnings), facts.source)
