"""Gather steps on the cluster (read-only): discover what is there, and look for GPU pods on
the nodes the plan would relabel."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from installer.cluster.facts import ClusterFacts, Facts, ReleaseFacts, with_gpu_pods

if TYPE_CHECKING:  # the wizard discovers without the engine and its planner (discover_cluster)
    from installer.charts.helm import Helm
    from installer.cluster.kube import Kube, NodesSeen
    from installer.engine.params import DiscoverParams, GpuPodsParams
    from installer.engine.plan import Step
    from installer.engine.runner import Context
    from installer.redact import Redactor


@dataclass(frozen=True)
class Discovered:
    """What discovery found, and the clients it found it with (the run goes on with them)."""

    cluster: ClusterFacts
    source: str
    kube: Kube
    helm: Helm


def _connect(kubeconfig: str | None, context: str | None, redactor: Redactor | None) -> Kube:
    """A client from the kubeconfig and context, its token masked in every output."""
    from installer.cluster import kube

    k = kube.connect(kubeconfig, context)
    if redactor is not None:
        k.mask_tokens(redactor.add)
    return k


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Stop a helm task whose result no longer matters (run_helm ends helm's process group)
    and drop its outcome: the caller is raising a problem that is said first."""
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


async def discover_cluster(kubeconfig: str | None, context: str | None,
                           redactor: Redactor | None = None, *, partial: bool = False,
                           managed: Collection[str] = (),
                           on_nodes: NodesSeen | None = None) -> Discovered:
    """The cluster's nodes, classes and policy from the API server, its releases from helm
    (the values of those `helm.manages`; `managed`: the answers' release names).

    A read the API server refuses (RBAC, an API the cluster does not serve) stops an install
    here, every such read named at once, before anything is planned; with `partial`
    (troubleshooting) it is kept in the facts' `unread` instead, to be reported with them.
    `on_nodes`: told the nodes read so far, page by page, before the whole list is in
    (installer.cluster.kube._discover_sync).

    `helm list` starts first and runs beside the API reads: a child process of its own, it
    overlaps the client's set-up and the requests instead of following them."""
    from installer.charts import helm
    from installer.cluster import kube
    from installer.cluster.apierrors import ReadError, Refused, reads_refused
    from installer.cluster.kubeconfig import helm_kubeconfig, kubeconfig_files

    async def listed(h: helm.Helm) -> tuple[list[ReleaseFacts], tuple[ReadError, ...]]:
        try:
            return await helm.list_releases(h, managed), ()
        except Refused as exc:
            return [], (exc.read,)

    async def helm_releases() -> tuple[helm.Helm, str,
                                       tuple[list[ReleaseFacts], tuple[ReadError, ...]]]:
        h = helm.find_helm(helm_kubeconfig(kubeconfig_files(kubeconfig)), context)
        # Side by side: each helm start is a slow process start, and `helm list` only reads, so it
        # may run before the version is known. A helm it cannot drive is still refused
        # first: its version's error wins over whatever its listing did.
        listing = asyncio.create_task(listed(h))
        try:
            version = await helm.helm_version(h)
        except BaseException:
            await _cancel(listing)
            raise
        return h, version, await listing

    releases = asyncio.create_task(helm_releases())
    try:
        # In a thread: the loop keeps serving helm while the client is built.
        k = await asyncio.to_thread(_connect, kubeconfig, context, redactor)
        cluster = await kube.discover(k, on_nodes)
    except BaseException:  # a bad kubeconfig or an unreachable cluster is said first
        await _cancel(releases)
        raise
    h, version, (found, refused) = await releases  # helm's problems: after the cluster's
    unread = (*cluster.unread, *refused)
    if unread and not partial:
        raise reads_refused(k.context, k.server, unread)
    return Discovered(replace(cluster, releases=tuple(found), unread=unread),
                      f"discovered (context {k.context}; helm {version} at {h.binary})", k, h)


async def discover(ctx: Context, step: Step[DiscoverParams], facts: Facts, *,
                   partial: bool = False) -> Facts:
    """The discover step: discover_cluster with the step's kubeconfig and context; the run's
    later steps use its clients. `partial`: see discover_cluster (troubleshoot's run)."""
    found = await discover_cluster(step.params.kubeconfig, step.params.context,
                                   ctx.services.get("redactor"), partial=partial,
                                   managed=ctx.services.get("managed_releases", ()))
    ctx.services.update(kube=found.kube, helm=found.helm)
    return replace(facts, cluster=found.cluster, source=found.source)


async def gpu_pods(ctx: Context, step: Step[GpuPodsParams], facts: Facts, *, partial: bool = False
                   ) -> Facts:
    """GPU pods on the nodes to relabel, so the plan can warn before it disrupts them.

    Uses the run's client when discovery made one; a wizard dry-run starts from facts it
    discovered earlier, so it connects here. `partial` (troubleshooting): a pod list the
    context may not make is kept in `unread`, and the nodes count as looked at."""
    from installer.cluster import kube

    k = ctx.services.get("kube") or _connect(step.params.kubeconfig, step.params.context,
                                             ctx.services.get("redactor"))
    ctx.services["kube"] = k
    nodes = list(step.params.nodes)
    try:
        return with_gpu_pods(facts, await kube.find_gpu_pods(k, nodes))
    except kube.ApiError as exc:
        if not partial:
            raise
        looked = with_gpu_pods(facts, dict.fromkeys(nodes, ()))
        return replace(looked, cluster=replace(
            looked.cluster, unread=(*looked.cluster.unread, exc.read)))
