"""Gather steps on the cluster (read-only): discover what is there, and look for GPU pods on
the nodes the plan would relabel."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from installer.engine import Context
from installer.facts import Facts, with_gpu_pods
from installer.plan import Step

if TYPE_CHECKING:
    from installer.kube import Kube


def _connect(ctx: Context, step: Step) -> Kube:
    """A client from the step's kubeconfig and context, its token masked in every output.
    A run that will not need the typed API says so in services (`warm_typed_api`)."""
    from installer import kube

    k = kube.connect(step.params.get("kubeconfig"), step.params.get("context"),
                     warm=ctx.services.get("warm_typed_api", True))
    redactor = ctx.services.get("redactor")
    if redactor is not None:
        redactor.add(k.token)
    return k


async def discover(ctx: Context, step: Step, facts: Facts) -> Facts:
    from installer import helm, kube

    k = _connect(ctx, step)
    h = helm.find_helm(k.kubeconfig, k.context)
    # helm is another process: it lists the releases while this one reads the API. If the
    # API cannot be read, that failure (credentials, address) is the one to report.
    listing = asyncio.ensure_future(helm.list_releases(h))
    try:
        cluster = await kube.discover(k)
    except BaseException:
        listing.cancel()  # run_helm ends helm's process group
        raise
    releases = await listing
    ctx.services.update(kube=k, helm=h)
    return replace(facts, cluster=replace(cluster, releases=tuple(releases)),
                   source=f"discovered (context {k.context})")


async def gpu_pods(ctx: Context, step: Step, facts: Facts) -> Facts:
    """GPU pods on the nodes to relabel, so the plan can warn before it disrupts them.

    Uses the run's client when discovery made one; a wizard dry-run starts from facts it
    discovered earlier, so it connects here."""
    from installer import kube

    k = ctx.services.get("kube") or _connect(ctx, step)
    ctx.services["kube"] = k
    return with_gpu_pods(facts, await kube.find_gpu_pods(k, list(step.params["nodes"])))
