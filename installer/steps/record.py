"""Change step: record the nodes' managed labels in the cluster before anything else changes."""

from __future__ import annotations

from installer import kube
from installer.engine import Context
from installer.facts import Facts
from installer.permit import Permit
from installer.plan import Step


async def record_labels(ctx: Context, step: Step, facts: Facts) -> str:
    k: kube.Kube = ctx.services["kube"]
    (change,) = step.changes

    async def act(permit: Permit) -> None:
        await kube.save_recorded_labels(k, permit, step.params["labels"])

    await ctx.change(step.id, change.target, change.description, act)
    return f"recorded labels of {len(step.params['labels'])} nodes"
