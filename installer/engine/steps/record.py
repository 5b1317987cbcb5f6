"""Change step: record the nodes' managed labels in the cluster before anything else changes."""

from __future__ import annotations

from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.engine.plan import Step
from installer.engine.runner import Context
from installer.permit import Permit


async def record_labels(ctx: Context, step: Step, facts: Facts) -> str:
    k: kube.Kube = ctx.services["kube"]
    (change,) = step.changes

    async def act(permit: Permit) -> None:
        await kube.save_recorded_labels(k, permit, step.params["labels"])

    await ctx.change(step.id, change.target, change.description, act)
    return f"recorded labels of {len(step.params['labels'])} nodes"
