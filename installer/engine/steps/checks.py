"""Check steps: report each host's verdicts (computed in the plan) and the cluster's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from installer.answers.checknames import expand_ignore
from installer.cluster.facts import Facts, distribution_of, kubelet_root_of
from installer.engine.events import CheckReported, WarningEvent
from installer.engine.params import ClusterChecksParams, HostChecksParams
from installer.engine.plan import Step
from installer.engine.runner import ChecksFailed, Context, Done
from installer.engine.steps.probe import DRY_RUN
from installer.hosts.checks import CheckResult


async def host_checks(ctx: Context, step: Step[HostChecksParams], facts: Facts) -> Done:
    p = step.params
    node = p.node
    if p.unreachable and ctx.dry_run and p.unreachable.startswith(f"{DRY_RUN}:"):
        ctx.emit(WarningEvent(path=step.id, message=f"{node}: not checked - {p.unreachable}"))
        return Done(f"not checked in a dry-run ({p.unreachable})")
    if p.unreachable:
        raise ChecksFailed(f"{node}: could not be checked - {p.unreachable}")
    results = p.checks or ()
    ctx.emit(CheckReported(path=step.id, node=node, results=results,
                           message=f"{len(results)} checks"))
    covered = set(p.covered or ())
    blocking = [r for r in results if r.blocking and r.name not in covered]
    if blocking:
        raise ChecksFailed("; ".join(f"{node} {r.name}: {r.summary} - {r.remedy}"
                                     for r in blocking))
    fixed = [r.name for r in results if r.status == "fail" and r.name in covered]
    return Done(f"passed{' after the planned fixes for ' + ', '.join(fixed) if fixed else ''}")


def cluster_results(facts: Facts, nodes: Sequence[str], own_nfd: str) -> list[CheckResult]:
    """Cluster-side prerequisites: containerd on the Kata nodes, Ready nodes, one NFD. They
    carry no severity: their status alone says what they cost."""
    assert facts.cluster is not None
    out = []
    for name in nodes:
        node = facts.cluster.node(name)
        runtime = (node.container_runtime if node else None) or "unknown"
        ok = runtime.startswith("containerd://")
        kubelet = (f" on {distribution_of(node)}, kubelet root {kubelet_root_of(node)}"
                   if node else "")
        out.append(CheckResult(
            "container-runtime", "pass" if ok else "fail", None,
            f"{name}: {runtime}{kubelet}",
            [f"node {name} containerRuntimeVersion={runtime}"] + (
                [f"node {name} kubeletVersion={node.kubelet_version or 'unknown'}: "
                 f"distribution {distribution_of(node)}, kubelet root "
                 f"{kubelet_root_of(node)}"] if node else []),
            "" if ok else "Kata through the GPU Operator needs containerd"))
        ready = node.ready if node else None
        out.append(CheckResult("node-ready", "pass" if ready else "fail", None,
                               f"{name}: {'Ready' if ready else 'not Ready'}",
                               [f"node {name} Ready={ready}"],
                               "" if ready else f"bring {name} back to Ready first"))
    foreign = [w for w in facts.cluster.nfd_workers if w != own_nfd]
    if foreign:
        out.append(CheckResult("existing-nfd", "warn", None,
                               f"an NFD is already running: {', '.join(foreign)}",
                               [f"DaemonSet {w}" for w in foreign],
                               "set gpuOperator.values nfd.enabled=false to keep one NFD"))
    return out


async def cluster_checks(ctx: Context, step: Step[ClusterChecksParams], facts: Facts) -> Done:
    ignore = expand_ignore(step.params.ignore)
    results = tuple(replace(r, ignored=r.name in ignore)
                    for r in cluster_results(facts, step.params.nodes, step.params.own_nfd))
    ctx.emit(CheckReported(path=step.id, node="cluster", results=results,
                           message=f"{len(results)} checks"))
    blocking = [r for r in results if r.blocking]
    if blocking:
        raise ChecksFailed("; ".join(f"{r.summary} - {r.remedy}" for r in blocking))
    return Done("passed")
