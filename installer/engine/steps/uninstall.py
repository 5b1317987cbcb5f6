"""Executors of the uninstall plan (installer.engine.uninstall)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from functools import partial

from installer.answers.model import SAMPLE_POD
from installer.charts import helm
from installer.cluster import kube
from installer.cluster.facts import KATA_RUNTIME_LABEL, Facts
from installer.engine.events import Output
from installer.engine.params import (
    DeleteCrdsParams,
    DeleteSampleParams,
    DeleteStateParams,
    HelmUninstallParams,
    PatchLabelsParams,
    RemoveHostAccessParams,
    VerifyUninstalledParams,
)
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.steps.sample import MANAGED_BY, delete_and_wait
from installer.engine.uninstall import label_restore
from installer.errors import StepFailed
from installer.hosts.podaccess import MANAGED_BY as POD_MANAGED_BY
from installer.hosts.podaccess import PodAccess, leftovers
from installer.permit import Permit

POLL_SECONDS = 2.0
NAMESPACE_GONE_SECONDS = 120.0  # the namespace controller empties it first


async def helm_uninstall(ctx: Context, step: Step[HelmUninstallParams], facts: Facts) -> Done:
    h: helm.Helm = ctx.services["helm"]
    (change,) = step.changes

    def on_line(stream: str, line: str) -> None:
        ctx.emit(Output(path=step.id, message=line, stream=stream))

    async def act(permit: Permit) -> str:
        return await helm.uninstall(h, permit, list(step.params.command[1:]), on_line)

    await ctx.change(step.id, change.target, change.description, act)
    return Done(f"{step.params.namespace}/{step.params.release} removed")


def _samples(k: kube.Kube, namespace: str) -> list[str]:
    """The sample pod and the upgrade's per-node verification pods an interrupted run left
    (named cuda-vectoradd-kata-<node>, labelled as the installer's)."""
    return sorted(name for p in k.list_items(f"/api/v1/namespaces/{namespace}/pods",
                                             labelSelector=",".join(
                                                 f"{k}={v}" for k, v in MANAGED_BY.items()))
                  if (name := p["metadata"]["name"]) == SAMPLE_POD
                  or name.startswith(f"{SAMPLE_POD}-"))


async def delete_sample(ctx: Context, step: Step[DeleteSampleParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    ns = step.params.namespace
    names = await asyncio.to_thread(_samples, k, ns)
    if not names:
        return Done("no sample pod")
    for name in names:
        await delete_and_wait(ctx, step, k, ns, name)
    return Done("deleted " + ", ".join(f"{ns}/{n}" for n in names))


async def delete_crds(ctx: Context, step: Step[DeleteCrdsParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    for change in step.changes:
        async def act(permit: Permit, name: str = change.target) -> None:
            await kube.delete_crd(k, permit, name)

        await ctx.change(step.id, change.target, change.description, act)
    return Done("CRDs removed")


async def patch_labels(ctx: Context, step: Step[PatchLabelsParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    (change,) = step.changes

    async def act(permit: Permit) -> None:
        await kube.patch_node_labels(k, permit, step.params.node, dict(step.params.labels))

    await ctx.change(step.id, change.target, change.description, act, change.detail)
    return Done("labels restored")


async def delete_state(ctx: Context, step: Step[DeleteStateParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    (change,) = step.changes

    async def act(permit: Permit) -> None:
        await kube.delete_state(k, permit)

    await ctx.change(step.id, change.target, change.description, act)
    return Done("record removed")


def _label_drift(k: kube.Kube, recorded: Mapping[str, Mapping[str, str]] | None) -> list[str]:
    drift = []
    for node in k.list_items("/api/v1/nodes"):
        meta = node["metadata"]
        labels = meta.get("labels") or {}
        want = None if recorded is None else recorded.get(meta["name"], {})
        left = sorted(label_restore(labels, None if want is None else dict(want)))
        if KATA_RUNTIME_LABEL in labels and KATA_RUNTIME_LABEL not in (want or {}):
            left.append(KATA_RUNTIME_LABEL)
        if left:
            drift.append(f"{meta['name']}: {', '.join(left)}")
    return drift


async def verify_uninstalled(ctx: Context, step: Step[VerifyUninstalledParams], facts: Facts
                             ) -> Done:
    k: kube.Kube = ctx.services["kube"]
    deadline = time.monotonic() + step.params.timeout_seconds
    while drift := await asyncio.to_thread(_label_drift, k, step.params.recorded):
        if time.monotonic() > deadline:
            raise StepFailed(f"labels not back to their recorded state: {'; '.join(drift)}",
                             cause="kata-deploy's cleanup pods remove its label; they may "
                                   "still be running or failed",
                             fix="check the kata-system namespace; run uninstall again")
        await asyncio.sleep(POLL_SECONDS)
    return Done("nodes carry the labels they had before install")


async def remove_host_access(ctx: Context, step: Step[RemoveHostAccessParams], facts: Facts
                             ) -> Done:
    """Nothing of pod mode stays: the installer's own namespace goes (its pods with it); in
    an operator's namespace only the installer's labelled host-access pods go."""
    k: kube.Kube = ctx.services["kube"]
    ns = step.params.namespace
    try:
        found = await asyncio.to_thread(k.get_json, f"/api/v1/namespaces/{ns}")
    except kube.ApiError as exc:
        if exc.status != 404:
            raise
        return Done(f"namespace {ns} is not there: nothing to remove")
    labels = (found.get("metadata") or {}).get("labels") or {}
    if labels.get(POD_MANAGED_BY[0]) == POD_MANAGED_BY[1]:
        await ctx.change(step.id, ns, f"delete namespace {ns} (the installer's)",
                         partial(kube.delete_namespace, k, name=ns))
        deadline = time.monotonic() + NAMESPACE_GONE_SECONDS
        while time.monotonic() < deadline:
            try:
                await asyncio.to_thread(k.get_json, f"/api/v1/namespaces/{ns}")
            except kube.ApiError as exc:
                if exc.status == 404:
                    return Done(f"namespace {ns} deleted")
                raise
            await asyncio.sleep(POLL_SECONDS)
        return Done(f"namespace {ns} is being deleted (still Terminating after "
                    f"{NAMESPACE_GONE_SECONDS:.0f}s: `kubectl get namespace {ns}`)")
    left = await asyncio.to_thread(leftovers, k, ns)
    pods = PodAccess(k, ctx.services["pod_settings"], ctx.change, step.id)
    for name in left:
        await pods.remove(name, "left by an interrupted run")
    return Done(f"namespace {ns} is the operator's: kept; {len(left)} host-access pod(s) "
                "removed")
