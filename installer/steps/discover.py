"""Gather step: connect to the cluster and record what is there (read-only)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace

from installer.engine import Context
from installer.facts import Facts, ReleaseFacts
from installer.plan import Step


async def discover(ctx: Context, step: Step, facts: Facts) -> Facts:
    """The cluster's nodes, classes and policy from the API server, its releases from helm.

    `helm list` starts first and runs beside the API reads: a child process of its own, it
    overlaps the kubernetes client's import and the requests instead of following them."""
    from installer import helm, kube
    from installer.kubeconfig import kubeconfig_path

    async def helm_releases() -> tuple[helm.Helm, str, list[ReleaseFacts]]:
        h = helm.find_helm(kubeconfig_path(step.params.get("kubeconfig")),
                           step.params.get("context"))
        version = await helm.helm_version(h)  # a helm it cannot drive is refused first
        return h, version, await helm.list_releases(h)

    releases = asyncio.create_task(helm_releases())
    try:
        # In a thread: the loop keeps serving helm while the client is imported and built.
        k = await asyncio.to_thread(kube.connect, step.params.get("kubeconfig"),
                                    step.params.get("context"))
        redactor = ctx.services.get("redactor")
        if redactor is not None:
            redactor.add(k.token)
        cluster = await kube.discover(k)
    except BaseException:  # a bad kubeconfig or an unreachable cluster is said first
        releases.cancel()
        with contextlib.suppress(BaseException):
            await releases
        raise
    h, version, found = await releases  # helm's problems: said after the cluster's
    ctx.services.update(kube=k, helm=h)
    return replace(facts, cluster=replace(cluster, releases=tuple(found)),
                   source=f"discovered (context {k.context}; helm {version} at {h.binary})")
