"""Change step: record the nodes' managed labels in the cluster before anything else changes."""

from __future__ import annotations

from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.engine.params import RecordLabelsParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.permit import Permit


async def record_labels(ctx: Context, step: Step[RecordLabelsParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    (change,) = step.changes

    async def act(permit: Permit) -> None:
        await kube.save_recorded_labels(k, permit, {n: dict(labels) for n, labels
                                                     in step.params.labels.items()})

    await ctx.change(step.id, change.target, change.description, act)
    return Done(f"recorded labels of {len(step.params.labels)} nodes")
