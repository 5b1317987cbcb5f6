"""The upgrade plan: both charts from the installed versions to the answers', then the Kata
nodes rolled in waves of at most `rollout.maxUnavailable`, each node verified before it
takes work again; the rollback that runs on the first failure is part of the plan shown.

Why the DaemonSets are held at OnDelete while the charts change: so a node's kata-deploy and
operand pods change only in that node's wave, after it is drained. Both charts let the
strategy be set - kata-deploy's `updateStrategy` value (helm-chart/kata-deploy/values.yaml
and templates/kata-deploy.yaml, 3.29.0 - 4.1.0) and the GPU Operator's
`daemonsets.updateStrategy` (deployments/gpu-operator/values.yaml, applied to every operand
DaemonSet by controllers/object_controls.go applyUpdateStrategyConfig, v26.3.0 - v26.7.0).
A last helm upgrade with the install's own values gives the rolling strategy back; the
templates do not change with it, so no pod is replaced by it.

Pure: the same answers and facts give the same plan.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from installer.answers.model import Answers, ChartSource
from installer.answers.versions import (
    GPU_OPERATOR_VERSIONS,
    KATA_DEPLOY_VERSIONS,
    parse,
)
from installer.charts.compat import findings
from installer.charts.helm import seconds
from installer.charts.values import (
    deep_merge,
    gpu_operator_values,
    gpu_resource_name,
    kata_nodes_of,
    planned_kata_deploy_values,
    tolerations_for,
    value_warnings,
)
from installer.cluster.facts import Facts, ReleaseFacts, managed_labels, require_record
from installer.engine.params import (
    DiscoverParams,
    HelmParams,
    OperandImagesParams,
    ReleaseRevision,
    RollbackParams,
    SampleParams,
    UpgradeHelmParams,
    VerifyGpuOperatorParams,
    VerifyKataDeployParams,
    WaveParams,
    params_json,
)
from installer.engine.plan import (
    Change,
    Plan,
    Step,
    helm_install_args,
    release_deployed,
    sample_image,
)
from installer.engine.waves import waves_of
from installer.errors import Problem, UserError

# rollingUpdate: None drops the chart default's rollingUpdate (helm: a null value removes a key)
HOLD_KATA_DEPLOY = {"updateStrategy": {"type": "OnDelete", "rollingUpdate": None}}
HOLD_OPERATOR = {"daemonsets": {"updateStrategy": "OnDelete"}}
ON_FAILURE = "only if a step of this upgrade fails"


def values_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The values that change, key by key (`a.b: old -> new`, `+a.b: new`, `-a.b`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted({*old, *new}, key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"+{path}: {new[key]!r}")
            elif key not in new:
                out.append(f"-{path}")
            else:
                out += values_diff(old[key], new[key], path)
        return out
    return [] if old == new else [f"{prefix}: {old!r} -> {new!r}"]


def _version_problems(section: str, current: ReleaseFacts, target: str | None,
                      supported: tuple[str, ...]) -> list[Problem]:
    if target is None:  # a local chart without a version: nothing to compare
        return []
    have, want = parse(current.version), parse(target)
    if want is None:
        return [Problem(f"{section}.version", f"'{target}' is not a version",
                        f"use one of {', '.join(supported)}")]
    if target not in supported and target.removeprefix("v") not in \
            {v.removeprefix("v") for v in supported}:
        return [Problem(f"{section}.version", f"{target} is not a version this installer "
                        f"supports ({supported[0]} - {supported[-1]})",
                        f"use one of {', '.join(supported)}")]
    if have is not None and want < have:
        return [Problem(f"{section}.version", f"{target} is older than the installed "
                        f"{current.version}: upgrade does not downgrade",
                        f"set {section}.version to {current.version} or newer; to go back, "
                        f"roll the release back (`helm rollback {current.name} -n "
                        f"{current.namespace}`) or uninstall and install {target}")]
    return []


def _installed(answers: Answers, facts: Facts) -> tuple[ReleaseFacts, ReleaseFacts]:
    kd, op = answers.kata_deploy, answers.gpu_operator
    found = [(section, c.release, c.namespace, facts.cluster.release(c.release, c.namespace))
             for section, c in (("kataDeploy", kd), ("gpuOperator", op))]
    missing = [Problem(f"{section}.release", f"release {ns}/{name} is not installed",
                       "install first (`gpu-kata-installer --answers FILE`), or name the "
                       "release and namespace it was installed as")
               for section, name, ns, r in found if r is None]
    if missing:
        raise UserError("nothing to upgrade", missing)
    return found[0][3], found[1][3]  # type: ignore[return-value]


def node_current(facts: Facts, node: str) -> bool:
    """Every kata-deploy and operand pod on `node` runs what its DaemonSet now asks for."""
    c = facts.cluster
    pods = (c.operand_images or {}).get(node, {})
    templates = c.operand_templates or {}
    return bool(pods) and all(sorted(images) == sorted(templates.get(ds, images))
                              for ds, images in pods.items())


def _helm_step(step_id: str, title: str, release: str, source: ChartSource,
               version: str | None, namespace: str, timeout: str, values: dict[str, Any],
               current: ReleaseFacts, rollback: RollbackParams | None) -> Step[UpgradeHelmParams]:
    """`helm upgrade` without --wait: helm 4 waits by kstatus, which never calls an OnDelete
    DaemonSet rolled out; the waves and the verify steps are the wait."""
    command = ("helm", *helm_install_args(release, source, version, namespace, timeout,
                                          "<values.yaml>", wait=False))
    helm = HelmParams(release, namespace, source.describe(), version, values, (), command)
    changed = tuple(values_diff(current.values, values))
    params = UpgradeHelmParams(helm, changed, rollback)
    same_version = source.is_local or current.version == version
    if current.status == "deployed" and same_version and not changed:
        return Step(step_id, "change", title, params,
                    note=f"{namespace}/{release} already at {current.version} with these values")
    what = (f"helm upgrade {release} {current.version} -> {version or source.describe()} "
            f"in namespace {namespace}")
    if changed:
        what += f"; values that change: {'; '.join(changed)}"
    return Step(step_id, "change", title, params,
                (Change("helm", f"{namespace}/{release}", what, params_json(params)),))


def _wave_changes(node: str, p: WaveParams) -> tuple[Change, ...]:
    kept = node in p.keep_cordoned
    return (
        Change("cluster", node, f"cordon {node}" + (" (cordoned already, by someone else: "
               "left cordoned after)" if kept else ""), {"node": node, "stage": "cordon"}),
        Change("cluster", node, f"drain {node}: evict its Kata GPU pods through the Eviction "
               "API (PodDisruptionBudgets honoured, never a forced delete), at most "
               f"{p.drain_timeout_seconds} s", {"node": node, "stage": "drain"}),
        Change("cluster", node, f"replace {node}'s kata-deploy pod ({p.kata_namespace}) and "
               f"operand pods ({p.operator_namespace}) with the new DaemonSets' (graceful "
               "delete), and wait for them to run", {"node": node, "stage": "roll"}),
        Change("cluster", node, (f"verify {node}: run {p.verify.image} pinned to it (passes "
                                 "when it exits 0)" if p.verify.own else
                                 f"verify {node}: run the sample pinned to it")
               if p.verify else f"verify {node}: kata-deploy and the operands running "
               "(sample turned off)", {"node": node, "stage": "verify"}),
        *(() if kept else (Change("cluster", node, f"uncordon {node}",
                                  {"node": node, "stage": "uncordon"}),)),
    )


def _rollback_step(rollback: RollbackParams) -> Step[RollbackParams]:
    changes = [Change("helm", f"{r.namespace}/{r.release}",
                      f"helm rollback {r.release} to revision {r.revision} ({r.version})"
                      if r.revision else f"helm rollback {r.release} to its newest revision "
                      f"not at {r.target}",
                      {"release": r.release, "command": [
                          "helm", "rollback", r.release, str(r.revision or "<found>"),
                          "--namespace", r.namespace], "hostEffects": []},
                      condition=ON_FAILURE)
               for r in rollback.releases]
    changes += [Change("label", node, f"restore {node}'s nvidia.com/ and katacontainers.io/ "
                       "labels as they were before the upgrade", {"node": node},
                       condition=ON_FAILURE) for node in rollback.labels]
    changes += [Change("cluster", node, f"uncordon {node}", {"node": node, "key": "uncordon"},
                       condition=ON_FAILURE) for node in rollback.nodes]
    return Step("upgrade/rollback", "change", "On failure: roll back", rollback, tuple(changes),
                note="runs only when a step of this upgrade fails, before the run stops")


def build_upgrade_plan(answers: Answers, facts: Facts) -> Plan:
    """Plan the upgrade. Raises UserError (exit 2) when nothing is installed, a target
    version is older than the installed one or unsupported, or the pair is refused."""
    kd, op = answers.kata_deploy, answers.gpu_operator
    if facts.cluster is None:
        return Plan((Step("discover/cluster", "gather", "Discover the cluster's nodes and releases",
                          DiscoverParams(answers.cluster.kubeconfig, answers.cluster.context)),),
                    (), facts.source)
    require_record(facts)
    cur_kd, cur_op = _installed(answers, facts)
    problems = (_version_problems("kataDeploy", cur_kd, kd.version, KATA_DEPLOY_VERSIONS)
                + _version_problems("gpuOperator", cur_op, op.version, GPU_OPERATOR_VERSIONS))
    if problems:
        raise UserError("these target versions cannot be upgraded to", problems)
    kata_nodes = kata_nodes_of(answers, facts.cluster)
    table = findings(kd.version, op.version, kata_nodes)
    refused = [Problem(f.path, f.text, f.fix) for f in table if f.level == "refuse"]
    if refused:
        raise UserError("these chart versions cannot run on the Kata nodes", refused)
    if facts.cluster.operand_images is None:
        return Plan((Step("discover/operands", "gather",
                          "Read the images kata-deploy and the operands run, node by node",
                          OperandImagesParams((kd.namespace, op.namespace))),), (), facts.source)

    kata = [n.name for n in kata_nodes]
    c = facts.cluster
    theirs = tuple(n for n in kata if n in c.cordoned and n not in c.cordoned_by_upgrade)
    releases = tuple(ReleaseRevision(r.name, r.namespace, r.revision if r.version != t else 0,
                                     r.version if r.version != t else "", t)
                     for r, t in ((cur_op, op.version), (cur_kd, kd.version)))
    rollback = RollbackParams(releases, {n.name: managed_labels(n.labels) for n in kata_nodes},
                              tuple(n for n in kata if n not in theirs))
    kd_values = planned_kata_deploy_values(kd, kata_nodes, answers.images)
    op_values = gpu_operator_values(answers)
    finished = (release_deployed(cur_kd, kd.version, kd.chart, kd_values)
                and release_deployed(cur_op, op.version, op.chart, op_values))
    held_kd, held_op = deep_merge(kd_values, HOLD_KATA_DEPLOY), deep_merge(op_values, HOLD_OPERATOR)
    charts = [
        _helm_step("upgrade/kata-deploy", "Upgrade kata-deploy, its pods held (OnDelete)",
                   kd.release, kd.chart, kd.version, kd.namespace, kd.timeout,
                   kd_values if finished else held_kd, cur_kd, rollback),
        _helm_step("upgrade/gpu-operator", "Upgrade the GPU Operator, operands held (OnDelete)",
                   op.release, op.chart, op.version, op.namespace, op.timeout,
                   op_values if finished else held_op, cur_op, rollback),
    ]
    held = (release_deployed(cur_kd, kd.version, kd.chart, held_kd)
            and release_deployed(cur_op, op.version, op.chart, held_op))
    # A node the interrupted run cordoned is rolled again (and so uncordoned) even if its pods
    # are current: it may have stopped before its verification.
    todo = [] if finished else [n for n in kata if not (
        held and node_current(facts, n) and n not in c.cordoned_by_upgrade)]
    resource = gpu_resource_name(answers)
    verify = None
    own = answers.rollout.verify_image
    if answers.sample.run or own:
        s = answers.sample
        tolerations = tolerations_for(t for n in kata_nodes for t in n.taints)
        verify = SampleParams(own or sample_image(answers), s.memory, s.timeout_seconds,
                              resource, "default", None,
                              tuple(answers.images.pull_secrets) or None,
                              tuple(tolerations) or None,
                              command=tuple(answers.rollout.verify_command or ()) or None,
                              own=True if own else None)
    waves = []
    for number, nodes in enumerate(waves_of(todo, answers.rollout.max_unavailable), 1):
        params = WaveParams(number, nodes, kd.namespace, op.namespace, kd.version, op.version,
                            answers.rollout.drain_timeout_seconds,
                            max(seconds(kd.timeout), seconds(op.timeout)), verify, rollback,
                            tuple(n for n in nodes if n in theirs))
        waves.append(Step(f"upgrade/wave-{number}", "change",
                          f"Wave {number}: {', '.join(nodes)}", params,
                          tuple(c for n in nodes for c in _wave_changes(n, params))))
    done = [n for n in kata if n not in todo]
    release = [] if finished else [
        _helm_step("upgrade/release/kata-deploy", "kata-deploy back to rolling updates",
                   kd.release, kd.chart, kd.version, kd.namespace, kd.timeout, kd_values,
                   replace(cur_kd, values=held_kd, version=kd.version or cur_kd.version,
                           status="deployed"), None),
        _helm_step("upgrade/release/gpu-operator", "GPU Operator back to rolling updates",
                   op.release, op.chart, op.version, op.namespace, op.timeout, op_values,
                   replace(cur_op, values=held_op, version=op.version or cur_op.version,
                           status="deployed"), None),
    ]
    verify_steps = [
        Step("verify/kata-deploy", "verify", "kata-deploy installed on every Kata node",
             VerifyKataDeployParams(tuple(kata), kd.namespace, seconds(kd.timeout))),
        Step("verify/gpu-operator", "verify",
             "GPU Operator ready: ClusterPolicy, operands, GPU resources",
             VerifyGpuOperatorParams(tuple(kata), op.namespace, resource, seconds(op.timeout))),
    ]
    steps = [*charts, *waves, *release, *([] if finished else [_rollback_step(rollback)]),
             *verify_steps]
    warnings = list(value_warnings(answers)) + [str(f) for f in table if f.level == "warn"]
    if done and not finished:
        warnings.append(f"already upgraded (resumed): {', '.join(done)}")
    if not kata:
        warnings.append("no node is chosen for Kata: only the charts are upgraded")
    return Plan(tuple(steps), tuple(warnings), facts.source)
