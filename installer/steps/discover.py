"""Gather step: connect to the cluster and record what is there (read-only)."""

from __future__ import annotations

from dataclasses import replace

from installer.engine import Context
from installer.facts import Facts
from installer.plan import Step


async def discover(ctx: Context, step: Step, facts: Facts) -> Facts:
    from installer import helm, kube

    k = kube.connect(step.params.get("kubeconfig"), step.params.get("context"))
    redactor = ctx.services.get("redactor")
    if redactor is not None:
        redactor.add(k.token)
    cluster = await kube.discover(k)
    h = helm.find_helm(k.kubeconfig, k.context)
    version = await helm.helm_version(h)  # before anything else runs helm
    releases = await helm.list_releases(h)
    ctx.services.update(kube=k, helm=h)
    return replace(facts, cluster=replace(cluster, releases=tuple(releases)),
                   source=f"discovered (context {k.context}; helm {version} at {h.binary})")
