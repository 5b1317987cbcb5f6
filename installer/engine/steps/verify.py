"""Verify steps: poll the cluster until installer.charts.verify says done, or say what is
missing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from installer.charts.verify import (
    NodeProgress,
    Snapshot,
    Verdict,
    crashing,
    gpu_operator_verdict,
    kata_deploy_progress,
    kata_deploy_verdict,
    operator_progress,
)
from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.cluster.podread import list_pods
from installer.diagnosis.clusterstate import pod_info
from installer.engine.events import WarningEvent
from installer.engine.params import VerifyGpuOperatorParams, VerifyKataDeployParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed

# A snapshot is a few GETs, one of them every node: on a cluster of up to SMALL_CLUSTER nodes
# that is a few hundred KB, and polling quickly ends each wait closer to the change (kubectl
# wait, watching, reacts at once); a bigger cluster's node list is megabytes, read less often.
POLL_SECONDS, QUICK_POLL_SECONDS, SMALL_CLUSTER = 0.5, 0.2, 100


def snapshot(k: kube.Kube, namespace: str) -> Snapshot:
    """Read what verification needs in a handful of list calls (runs in a thread)."""

    # Nodes and RuntimeClasses as plain JSON: typed models of every node on each poll
    # would spend most of a poll's CPU on a 1,000-node cluster building objects.
    nodes = k.get_json("/api/v1/nodes")["items"]
    rcs = k.get_json("/apis/node.k8s.io/v1/runtimeclasses")["items"]
    policy = kube.read_cluster_policy(k)
    return Snapshot(
        node_labels={n["metadata"]["name"]: dict(n["metadata"].get("labels") or {})
                     for n in nodes},
        node_allocatable={n["metadata"]["name"]: dict((n.get("status") or {}).get(
            "allocatable") or {}) for n in nodes},
        runtime_classes=tuple(rc["metadata"]["name"] for rc in rcs),
        runtime_class_selectors={rc["metadata"]["name"]: dict(
            (rc.get("scheduling") or {}).get("nodeSelector") or {}) for rc in rcs},
        cluster_policy=policy,
        # only the crashing pods' logs: verification quotes no other, every half second
        pods=tuple(pod_info(k, p, crashing) for p in list_pods(k, namespace)),
    )


def observed(verdict: Verdict, progress: dict[str, NodeProgress]) -> str:
    """What a wait says it saw: the nodes still awaited (at most two named, then how many
    more), else what the verdict still misses cluster-wide."""
    behind = [p.seen for p in progress.values() if not p.done]
    if behind:
        more = f"; and {len(behind) - 2} more node(s)" if len(behind) > 2 else ""
        return "; ".join(behind[:2]) + more
    if verdict.missing:
        return f"{len(progress)} node(s) ready; still missing: {verdict.missing[0]}"
    return "ready"


def report(waits: WaitReporter, verdict: Verdict, progress: dict[str, NodeProgress]) -> None:
    waits.saw(observed(verdict, progress),
              nodes={n: p.seen for n, p in progress.items() if not p.done},
              ready=tuple(n for n, p in progress.items() if p.done))


async def wait_for(ctx: Context, step: Step[VerifyKataDeployParams | VerifyGpuOperatorParams],
                   judge: Callable[[Snapshot], Verdict], awaited: str,
                   progress: Callable[[Snapshot], dict[str, NodeProgress]]) -> Done:
    k: kube.Kube = ctx.services["kube"]
    timeout = step.params.timeout_seconds
    deadline = time.monotonic() + timeout
    waits = WaitReporter(ctx.emit, step.id, awaited, timeout)
    last_cause = ""
    while True:
        snap = await asyncio.to_thread(snapshot, k, step.params.namespace)
        verdict = judge(snap)
        report(waits, verdict, progress(snap))
        if verdict.done:
            return Done("verified")
        if verdict.definitive or time.monotonic() >= deadline:
            why = "" if verdict.definitive else \
                f"timed out after {timeout}s; "
            raise StepFailed(f"{why}still missing: {'; '.join(verdict.missing)}",
                             cause=f"likeliest cause: {verdict.cause}", fix=verdict.fix)
        if verdict.cause and verdict.cause != last_cause:
            ctx.emit(WarningEvent(path=step.id, message=f"waiting: {verdict.cause}"))
            last_cause = verdict.cause
        await asyncio.sleep(QUICK_POLL_SECONDS if len(snap.node_labels) <= SMALL_CLUSTER
                            else POLL_SECONDS)


async def verify_kata_deploy(ctx: Context, step: Step[VerifyKataDeployParams],
                             facts: Facts) -> Done:
    nodes = list(step.params.nodes)
    return await wait_for(ctx, step, lambda s: kata_deploy_verdict(s, nodes),
                          f"kata-deploy's labels on {_count(nodes)} and its RuntimeClass",
                          lambda s: kata_deploy_progress(s, nodes))


async def verify_gpu_operator(ctx: Context, step: Step[VerifyGpuOperatorParams],
                              facts: Facts) -> Done:
    nodes = list(step.params.nodes)
    resource = step.params.resource
    return await wait_for(ctx, step, lambda s: gpu_operator_verdict(s, nodes, resource),
                          f"operands on {_count(nodes)}, ClusterPolicy ready, GPUs "
                          "allocatable",
                          lambda s: operator_progress(s, nodes, resource))


def _count(nodes: list[str]) -> str:
    return nodes[0] if len(nodes) == 1 else f"{len(nodes)} Kata nodes"
