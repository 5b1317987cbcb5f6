"""Change step: set each node's workload label through the engine's mutation point."""

from __future__ import annotations

from installer import kube
from installer.engine import Context, Done
from installer.facts import Facts
from installer.params import LabelParams
from installer.permit import Permit
from installer.plan import Step


async def label(ctx: Context, step: Step[LabelParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    for change in step.changes:
        node, key, value = change.detail["node"], change.detail["key"], change.detail["to"]

        async def act(permit: Permit, node: str = node, key: str = key,
                      value: str = value) -> None:
            await kube.patch_node_labels(k, permit, node, {key: value})

        await ctx.change(step.id, change.target, change.description, act, change.detail)
    return Done(f"{step.params.node}: {step.params.key}={step.params.value}")
