"""Gather steps on the cluster (read-only): discover what is there, and look for GPU pods on
the nodes the plan would relabel."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from installer.engine import Context
from installer.facts import Facts, ReleaseFacts, with_gpu_pods
from installer.plan import Step

if TYPE_CHECKING:
    from installer.kube import Kube


def _connect(ctx: Context, step: Step) -> Kube:
    """A client from the step's kubeconfig and context, its token masked in every output."""
    from installer import kube

    k = kube.connect(step.params.get("kubeconfig"), step.params.get("context"))
    redactor = ctx.services.get("redactor")
    if redactor is not None:
        k.mask_tokens(redactor.add)
    return k


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Stop a helm task whose result no longer matters (run_helm ends helm's process group)
    and drop its outcome: the caller is raising a problem that is said first."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def discover(ctx: Context, step: Step, facts: Facts) -> Facts:
    """The cluster's nodes, classes and policy from the API server, its releases from helm.

    `helm list` starts first and runs beside the API reads: a child process of its own, it
    overlaps the kubernetes client's import and the requests instead of following them."""
    from installer import helm, kube
    from installer.kubeconfig import kubeconfig_path

    async def helm_releases() -> tuple[helm.Helm, str, list[ReleaseFacts]]:
        h = helm.find_helm(kubeconfig_path(step.params.get("kubeconfig")),
                           step.params.get("context"))
        # Side by side: each helm start costs 0.1-0.35 s, and `helm list` only reads, so it
        # may run before the version is known. A helm it cannot drive is still refused
        # first: its version's error wins over whatever its listing did.
        listing = asyncio.create_task(helm.list_releases(h))
        try:
            version = await helm.helm_version(h)
        except BaseException:
            await _cancel(listing)
            raise
        return h, version, await listing

    releases = asyncio.create_task(helm_releases())
    try:
        # In a thread: the loop keeps serving helm while the client is imported and built.
        k = await asyncio.to_thread(_connect, ctx, step)
        cluster = await kube.discover(k)
    except BaseException:  # a bad kubeconfig or an unreachable cluster is said first
        await _cancel(releases)
        raise
    h, version, found = await releases  # helm's problems: said after the cluster's
    ctx.services.update(kube=k, helm=h)
    return replace(facts, cluster=replace(cluster, releases=tuple(found)),
                   source=f"discovered (context {k.context}; helm {version} at {h.binary})")


async def gpu_pods(ctx: Context, step: Step, facts: Facts) -> Facts:
    """GPU pods on the nodes to relabel, so the plan can warn before it disrupts them.

    Uses the run's client when discovery made one; a wizard dry-run starts from facts it
    discovered earlier, so it connects here."""
    from installer import kube

    k = ctx.services.get("kube") or _connect(ctx, step)
    ctx.services["kube"] = k
    return with_gpu_pods(facts, await kube.find_gpu_pods(k, list(step.params["nodes"])))
