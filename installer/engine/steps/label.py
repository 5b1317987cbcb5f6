"""Change step: set each node's workload label through the engine's mutation point."""

from __future__ import annotations

from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.engine.params import LabelParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.permit import Permit


async def label(ctx: Context, step: Step[LabelParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    for change in step.changes:
        node, key, value = change.detail["node"], change.detail["key"], change.detail["to"]

        async def act(permit: Permit, node: str = node, key: str = key,
                      value: str = value) -> None:
            await kube.patch_node_labels(k, permit, node, {key: value})

        await ctx.change(step.id, change.target, change.description, act, change.detail)
    return Done(f"{step.params.node}: {step.params.key}={step.params.value}")
