"""Change steps around a host's reboot: cordon, drain, uncordon (installer.cluster.drain).

Whether this run cordoned a node is written on the node itself (installer.cluster.drain's
mark): a node the operator had cordoned before the run stays cordoned, and a run resumed
after an interruption still uncordons the node it cordoned.
"""

from __future__ import annotations

import asyncio
from typing import Any

from installer.cluster import drain, kube
from installer.cluster.facts import Facts
from installer.engine.params import CordonParams, DrainParams, UncordonParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed
from installer.permit import Permit


def _node(k: kube.Kube, node: str) -> dict[str, Any]:
    return k.get_json(f"/api/v1/nodes/{node}")


async def cordon(ctx: Context, step: Step[CordonParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    node = step.params.node
    obj = await asyncio.to_thread(_node, k, node)
    if (obj.get("spec") or {}).get("unschedulable"):
        return Done(f"{node} was already cordoned by an interrupted run"
                    if drain.cordoned_by_us(obj) else
                    f"{node} was cordoned before the run: it stays cordoned")
    (planned,) = step.changes

    async def act(permit: Permit) -> None:
        await drain.cordon(k, permit, node, step.params.why or "reboot")

    await ctx.change(step.id, node, planned.description, act, planned.detail)
    return Done(f"{node} cordoned")


async def drain_node(ctx: Context, step: Step[DrainParams], facts: Facts) -> Done:
    """Evict the node's pods; a pod no controller owns stops the drain before the reboot."""
    k: kube.Kube = ctx.services["kube"]
    node = step.params.node
    select = kube.holds_nvidia if step.params.only == "nvidia" else (lambda _pod: True)
    plan = drain.drain_plan(await asyncio.to_thread(drain.pods_on, k, node), select)
    held = "its role not changed" if step.params.only else "not rebooted"
    if plan.blocked:
        raise StepFailed(f"{node} cannot be drained: no controller would recreate "
                         f"{', '.join(plan.unmanaged)} - evicting it loses it for good; "
                         + held,
                         fix="move or delete that pod yourself, then run again")
    if not plan.evict:
        return Done(f"{node}: no pods to evict")
    (planned,) = step.changes
    waits = WaitReporter(ctx.emit, step.id, f"the pods on {node} to leave",
                         step.params.timeout_seconds)

    async def act(permit: Permit) -> None:
        try:
            await drain.evict_and_wait(k, permit, node, plan.evict,
                                       step.params.timeout_seconds,
                                       lambda seen: waits.saw(seen, nodes={node: seen}))
        except drain.DrainTimeout as exc:
            raise StepFailed(f"{exc}; {held}, left cordoned",
                             fix="see why the pods stay (a PodDisruptionBudget?), or raise "
                                 "rollout.drainTimeoutSeconds; then run again") from exc

    await ctx.change(step.id, node, f"drain {node} (evict pods {', '.join(plan.evict)}; "
                     "PDBs honoured)", act, {**planned.detail, "evict": list(plan.evict)})
    return Done(f"{node}: evicted {len(plan.evict)} pod(s)")


async def uncordon(ctx: Context, step: Step[UncordonParams], facts: Facts) -> Done:
    """Only a node this run cordoned (its mark says so); its reboot step already waited
    for it to be Ready."""
    k: kube.Kube = ctx.services["kube"]
    node = step.params.node
    obj = await asyncio.to_thread(_node, k, node)
    if not drain.cordoned_by_us(obj):
        return Done(f"{node}: left as it was" + (
            " (cordoned before the run)" if (obj.get("spec") or {}).get("unschedulable")
            else ""))
    (planned,) = step.changes

    async def act(permit: Permit) -> None:
        await drain.uncordon(k, permit, node)

    await ctx.change(step.id, node, planned.description, act, planned.detail)
    return Done(f"{node} uncordoned")
