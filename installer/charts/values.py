"""Answers -> the exact Helm values for each chart.

Pure functions, because the values are the heart of the dry-run and of every test that
pins a trap from the guide (domain.md section 2). Operator-supplied extra values are
merged last, so an operator can override anything - and `value_warnings` says when an
override walks into a known trap.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from installer.answers.model import Answers, GpuOperator, Images, KataDeploy
from installer.answers.versions import chart_has
from installer.charts.compat import kata_distribution
from installer.charts.devplugin import PGPU
from installer.charts.registry import gpu_operator_image_values, kata_deploy_image_values
from installer.cluster.facts import WORKLOAD_LABEL, ClusterFacts, NodeFacts, Taint

GPU_SHIM = "qemu-nvidia-gpu"
WORKLOAD_FOR_CHOICE = {"kata": "vm-passthrough", "traditional": "container"}
VALID_WORKLOADS = ("container", "vm-passthrough", "vm-vgpu")
NO_REGISTRY = Images()  # images from the charts' own registries (records are frozen)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge like Helm merges -f files: maps merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# kata-deploy runs where this selects: the Kata nodes, which the plan labels so (all of
# them, the cluster default's too). The chart's default `nodeSelector: {}` puts it on every
# untainted node, restarting containerd on CPU and traditional GPU nodes as well.
KATA_NODE_SELECTOR = {WORKLOAD_LABEL: WORKLOAD_FOR_CHOICE["kata"]}


def tolerations_for(taints: Iterable[Taint]) -> list[dict[str, str]]:
    """Tolerations for exactly these taints (the ones that keep pods off a node)."""
    out: list[dict[str, str]] = []
    for t in taints:
        tol = ({"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
               if t.value else {"key": t.key, "operator": "Exists", "effect": t.effect})
        if t.repels and tol not in out:
            out.append(tol)
    return out


def tolerated(taint: Taint, tolerations: Iterable[Mapping[str, Any]]) -> bool:
    """Does one of `tolerations` tolerate `taint`? (The scheduler's rule: an empty key with
    Exists tolerates everything; an empty effect matches every effect.)"""
    for tol in tolerations:
        if tol.get("effect") not in (None, "", taint.effect):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.key:
                return True
        elif tol.get("key") == taint.key and (tol.get("value") or "") == taint.value:
            return True
    return False


def kata_nodes_of(answers: Answers, cluster: ClusterFacts | None) -> list[NodeFacts]:
    """The nodes chosen for Kata, as discovery saw them."""
    kata = set(answers.nodes.kata_nodes(cluster))
    return [n for n in (cluster.nodes if cluster else ()) if n.name in kata]


def planned_kata_deploy_values(kd: KataDeploy, kata_nodes: list[NodeFacts],
                               images: Images = NO_REGISTRY) -> dict[str, Any]:
    """kata-deploy's values for these Kata nodes: tolerating their taints, configured for
    their distribution, pulling from `images.registry` when set. The plan installs these;
    the support bundle shows the same."""
    return kata_deploy_values(kd, [t for n in kata_nodes for t in n.taints],
                              kata_distribution(kata_nodes), images)


def kata_deploy_values(kd: KataDeploy, taints: Iterable[Taint] = (),
                       distribution: str | None = None,
                       images: Images = NO_REGISTRY) -> dict[str, Any]:
    """Values for kata-deploy: only the GPU shim on only the Kata nodes (tolerating their
    `taints`), no default RuntimeClass, no second NFD, no snapshotter set up on the hosts,
    and containerd's paths for the Kata nodes' `distribution` (k3s, rke2, k0s, microk8s keep
    its configuration elsewhere than kubeadm's /etc/containerd)."""
    values: dict[str, Any] = {
        # The chart has no `nfd` key (the guide's `nfd.enabled=false` is silently ignored);
        # its NFD sub-chart is switched by `node-feature-discovery.enabled`.
        "node-feature-discovery": {"enabled": False},
        # Default values install ~15 runtime classes; GPU nodes need only the NVIDIA GPU shim.
        "shims": {"disableAll": True, GPU_SHIM: {"enabled": True}},
        "defaultShim": {"amd64": GPU_SHIM},
        "runtimeClasses": {"createDefault": False},
        "nodeSelector": dict(KATA_NODE_SELECTOR),
        # The chart's default `["nydus"]` installs a snapshotter service on every host it
        # runs on (tools/packaging/kata-deploy/binary/src/artifacts/snapshotters.rs, 3.29.0
        # - 4.1.0); GPU passthrough does not need it. `kataDeploy.values` may ask for it,
        # and the plan then lists it as a host change.
        "snapshotter": {"setup": []},
    }
    # The chart's default `tolerations: []` keeps kata-deploy off a tainted GPU pool (e.g.
    # nvidia.com/gpu=present:NoSchedule), and the Kata nodes never get their runtime.
    if tolerations := tolerations_for(taints):
        values["tolerations"] = tolerations
    if distribution:
        values["k8sDistribution"] = distribution
    if chart_has(kd.version, "3.32.0"):
        # From 3.32 the chart can run as a job; pin the DaemonSet the verification expects
        # (a local chart of unknown version gets it too: an older chart ignores the key).
        values["deploymentMode"] = "daemonset"
    values = deep_merge(values, kata_deploy_image_values(kd.version, images))
    return deep_merge(values, kd.values)


def gpu_operator_values(answers: Answers) -> dict[str, Any]:
    """Values for the GPU Operator in Kata sandbox mode."""
    op: GpuOperator = answers.gpu_operator
    sandbox: dict[str, Any] = {"enabled": True, "mode": "kata"}
    if answers.nodes.default == "kata":
        sandbox["defaultWorkload"] = "vm-passthrough"
    env: list[dict[str, str]] = []
    if op.resource_naming == "per-model":
        # The empty string is meaningful: it switches to per-model resource names.
        env.append({"name": "P_GPU_ALIAS", "value": ""})
    if op.nvswitch_naming == "per-model":
        env.append({"name": "NVSWITCH_ALIAS", "value": ""})
    values: dict[str, Any] = {
        "sandboxWorkloads": sandbox,
        "kataSandboxDevicePlugin": {"enabled": True, **({"env": env} if env else {})},
        "vfioManager": {"enabled": True},
        "ccManager": {"enabled": True, **({"defaultMode": "off"} if op.cc_mode == "off" else {})},
        # Deprecated, and fights kata-deploy over the runtime classes: never enabled.
        "kataManager": {"enabled": False},
        "nfd": {"enabled": True, "nodefeaturerules": True},
    }
    values = deep_merge(values, gpu_operator_image_values(op.version, answers.images))
    return deep_merge(values, op.values)


def value_warnings(answers: Answers) -> list[str]:
    """Overrides in extra values that lead to a cluster that cannot run Kata GPU pods."""
    values = gpu_operator_values(answers)
    sw = values.get("sandboxWorkloads") or {}
    out = []
    if sw.get("enabled") is not True:
        out.append("gpuOperator.values sets sandboxWorkloads.enabled to something other than "
                   "true: the operator will ignore the vm-passthrough node label")
    if sw.get("mode") != "kata":
        out.append(f"gpuOperator.values sets sandboxWorkloads.mode={sw.get('mode')!r}: only "
                   "'kata' deploys the Kata device plugin; GPU pods will not get devices")
    dw = sw.get("defaultWorkload")
    if dw is not None and dw not in VALID_WORKLOADS:
        out.append(f"sandboxWorkloads.defaultWorkload={dw!r} is not one of {VALID_WORKLOADS}")
    kd = kata_deploy_values(answers.kata_deploy)
    if "nfd" in answers.kata_deploy.values:
        out.append("kataDeploy.values sets `nfd`, a key the chart does not have; use "
                   "`node-feature-discovery.enabled`")
    if (kd.get("shims") or {}).get(GPU_SHIM, {}).get("enabled") is not True:
        out.append(f"kataDeploy.values disables the {GPU_SHIM} shim: no kata-{GPU_SHIM} "
                   "runtime class will exist")
    return out


def gpu_resource_name(answers: Answers) -> str | None:
    """The extended resource Kata GPU pods request; None means per-model names."""
    return PGPU if answers.gpu_operator.resource_naming == "pgpu" else None
