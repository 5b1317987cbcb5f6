"""Executors of the upgrade plan (installer.engine.upgrade): what kata-deploy and the operands
run node by node, a chart's held upgrade, a wave of nodes, and the rollback.

A failure anywhere in a chart's upgrade or a wave rolls back before the run stops (helm
rollback to the recorded revisions, the nodes' labels, uncordon), and the error says which
stage failed on which node. Nothing here force-deletes a pod: Kata GPU pods leave through
the Eviction API (installer.cluster.drain), DaemonSet pods through a graceful delete.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from installer.charts import helm
from installer.charts.devplugin import gpu_resources
from installer.cluster import drain, kube
from installer.cluster.facts import KATA_RUNTIME_LABEL, Facts
from installer.engine.events import Output, WarningEvent
from installer.engine.params import (
    OperandImagesParams,
    RollbackParams,
    UpgradeHelmParams,
    WaveParams,
)
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.steps.install import install
from installer.engine.steps.sample import sample
from installer.engine.uninstall import label_restore
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed
from installer.permit import Permit

POLL_SECONDS = 1.0
VALIDATOR = "nvidia-sandbox-validator"  # runs from the operator's own image, tagged its version


def _images(spec: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(c.get("image", "") for c in
                        (spec.get("initContainers") or []) + (spec.get("containers") or [])))


def _daemonset_of(pod: dict[str, Any]) -> str | None:
    ref = drain.controller_of(pod) or {}
    return f"{pod['metadata'].get('namespace')}/{ref.get('name')}" \
        if ref.get("kind") == "DaemonSet" else None


def read_operands(k: kube.Kube, namespaces: tuple[str, ...]
                  ) -> tuple[dict[str, dict[str, tuple[str, ...]]], dict[str, tuple[str, ...]]]:
    """(node -> {DaemonSet: its pod's images there}, DaemonSet -> its template's images) in
    these namespaces: what an upgrade reads to tell the nodes already rolled."""
    pods: dict[str, dict[str, tuple[str, ...]]] = {}
    templates: dict[str, tuple[str, ...]] = {}
    for ns in namespaces:
        for ds in k.list_items(f"/apis/apps/v1/namespaces/{ns}/daemonsets"):
            templates[f"{ns}/{ds['metadata']['name']}"] = _images(
                ds["spec"]["template"].get("spec") or {})
        for pod in k.list_items(f"/api/v1/namespaces/{ns}/pods"):
            owner, node = _daemonset_of(pod), (pod.get("spec") or {}).get("nodeName")
            if owner and node and not pod["metadata"].get("deletionTimestamp"):
                pods.setdefault(node, {})[owner] = _images(pod["spec"])
    return pods, templates


def read_cordoned(k: kube.Kube) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the cordoned nodes, those of them an upgrade cordoned - its annotation says so)."""
    nodes = [n for n in k.list_items("/api/v1/nodes") if (n.get("spec") or {}).get("unschedulable")]
    ours = [n for n in nodes if drain.cordoned_by_us(n)]
    return (tuple(n["metadata"]["name"] for n in nodes),
            tuple(n["metadata"]["name"] for n in ours))


async def operand_images(ctx: Context, step: Step[OperandImagesParams], facts: Facts) -> Facts:
    k: kube.Kube = ctx.services["kube"]
    pods, templates = await asyncio.to_thread(read_operands, k, step.params.namespaces)
    cordoned, ours = await asyncio.to_thread(read_cordoned, k)
    return replace(facts, cluster=replace(facts.cluster, operand_images=pods,
                                          operand_templates=templates, cordoned=cordoned,
                                          cordoned_by_upgrade=ours))


# --- rollback -------------------------------------------------------------------------------


async def _revision(h: helm.Helm, release: str, namespace: str, target: str | None) -> int:
    """The newest revision whose chart is not at `target` (a resumed upgrade's way back)."""
    for rev in reversed(await helm.history(h, release, namespace)):
        if target is None or helm.split_chart(rev.chart)[1] != target:
            return rev.revision
    raise StepFailed(f"no revision of {namespace}/{release} before {target} to roll back to",
                     fix=f"see `helm history {release} -n {namespace}`")


async def roll_back(ctx: Context, path: str, p: RollbackParams) -> list[str]:
    """Every part of the rollback is tried; what could not be done is returned, said."""
    h: helm.Helm = ctx.services["helm"]
    k: kube.Kube = ctx.services["kube"]
    failed: list[str] = []

    def on_line(stream: str, line: str) -> None:
        ctx.emit(Output(path=path, message=line, stream=stream))

    for r in p.releases:
        try:
            revision = r.revision or await _revision(h, r.release, r.namespace, r.target)

            async def act(permit: Permit, r: Any = r, revision: int = revision) -> str:
                return await helm.rollback(h, permit, r.release, r.namespace, revision,
                                           on_line)

            await ctx.change(path, f"{r.namespace}/{r.release}",
                             f"helm rollback {r.release} to revision {revision}", act)
        except StepFailed as exc:
            failed.append(f"{r.namespace}/{r.release}: {exc}")
    for node, before in p.labels.items():
        try:
            found = await asyncio.to_thread(k.get_json, f"/api/v1/nodes/{node}")
            patch = label_restore(found["metadata"].get("labels") or {}, dict(before))
            if patch:
                async def relabel(permit: Permit, node: str = node,
                                  patch: dict[str, str | None] = patch) -> None:
                    await kube.patch_node_labels(k, permit, node, patch)

                await ctx.change(path, node, f"restore {node}'s labels", relabel,
                                 {"node": node, "labels": patch})
        except kube.ApiError as exc:
            failed.append(f"{node} labels: {exc}")
    for node in p.nodes:
        try:
            found = await asyncio.to_thread(k.get_json, f"/api/v1/nodes/{node}")
            if not drain.cordoned_by_us(found):
                continue  # not cordoned by the upgrade: not ours to uncordon

            async def release(permit: Permit, node: str = node) -> None:
                await drain.uncordon(k, permit, node)

            await ctx.change(path, node, f"uncordon {node}", release)
        except kube.ApiError as exc:
            failed.append(f"uncordon {node}: {exc}")
    return failed


async def rollback(ctx: Context, step: Step[RollbackParams], facts: Facts) -> Done:
    """The plan's rollback step run on its own (the engine skips it: its changes wait on a
    failure); a wave or chart step calls roll_back itself."""
    failed = await roll_back(ctx, step.id, step.params)
    if failed:
        raise StepFailed("rollback incomplete: " + "; ".join(failed))
    return Done("rolled back")


async def _stop(ctx: Context, path: str, where: str, exc: Exception,
                p: RollbackParams | None) -> StepFailed:
    said = str(exc)
    ctx.emit(WarningEvent(path=path, message=f"{where} failed: {said}; rolling back"))
    if p is None:
        return StepFailed(f"{where} failed: {said}", fix="run upgrade again")
    failed = await roll_back(ctx, path, p)
    back = ("rolled back: " + ", ".join(f"{r.release} to "
                                         f"{r.version or 'its previous revision'}"
                                         for r in p.releases)
            + f"; labels restored and {', '.join(p.nodes) or 'no node'} uncordoned")
    if failed:
        back = "rollback INCOMPLETE: " + "; ".join(failed)
    return StepFailed(f"{where} failed: {said}; {back}",
                      cause=getattr(exc, "cause", "") or "",
                      fix="fix the cause named above, then run upgrade again")


async def upgrade_helm(ctx: Context, step: Step[UpgradeHelmParams], facts: Facts) -> Done:
    try:
        return await install(ctx, replace(step, params=step.params.helm), facts)  # type: ignore[arg-type]
    except (StepFailed, kube.ApiError) as exc:
        raise await _stop(ctx, step.id, f"{step.params.helm.release} upgrade", exc,
                          step.params.rollback) from None


# --- a wave ---------------------------------------------------------------------------------


def _tag_is(image: str, version: str | None) -> bool:
    return version is None or image.rsplit(":", 1)[-1].removeprefix("v") == \
        version.removeprefix("v")


def _templates_new(k: kube.Kube, p: WaveParams) -> str:
    """What still keeps the DaemonSets from the new versions ("" once they are there):
    kata-deploy's from helm at once, the operands' when the new operator has reconciled."""
    _, templates = read_operands(k, (p.kata_namespace, p.operator_namespace))
    kd = [i for ds, images in templates.items() if ds.startswith(f"{p.kata_namespace}/")
          for i in images if "kata-deploy" in i]
    validator = templates.get(f"{p.operator_namespace}/{VALIDATOR}", ())
    if not kd or not all(_tag_is(i, p.kata_version) for i in kd):
        return f"kata-deploy's DaemonSet at {p.kata_version}"
    if not validator or not any(_tag_is(i, p.operator_version) for i in validator):
        return f"the operator to set its operands to {p.operator_version}"
    return ""


def _node_state(k: kube.Kube, node: str, p: WaveParams, resource: str | None,
                expected: frozenset[str]) -> str:
    """What the node still lacks after its pods were replaced ("" when it has it all):
    a pod of each DaemonSet in `expected` (those that ran there), on its current template,
    running; kata-deploy's label; the GPUs advertised."""
    pods, templates = read_operands(k, (p.kata_namespace, p.operator_namespace))
    on = pods.get(node, {})
    missing = sorted(ds for ds in expected - set(on) if ds in templates)  # still wanted
    if missing:
        return "new pods of: " + ", ".join(missing)
    stale = sorted(ds for ds, images in on.items() if images != templates.get(ds, images))
    if stale:
        return "old pods: " + ", ".join(stale)
    starting = sorted(f"{x['metadata']['namespace']}/{x['metadata']['name']}"
                      for x in drain.pods_on(k, node) if _daemonset_of(x)
                      and x["metadata"]["namespace"] in (p.kata_namespace, p.operator_namespace)
                      and (x.get("status") or {}).get("phase") != "Running")
    if starting:
        return "starting: " + ", ".join(starting[:3])
    obj = k.get_json(f"/api/v1/nodes/{node}")
    if (obj["metadata"].get("labels") or {}).get(KATA_RUNTIME_LABEL) != "true":
        return f"kata-deploy to label it {KATA_RUNTIME_LABEL}=true"
    if not gpu_resources((obj.get("status") or {}).get("allocatable") or {}, resource):
        return "its GPUs to be advertised again"
    return ""


async def _until(ctx: Context, path: str, what: str, timeout: float, check: Any) -> None:
    waits = WaitReporter(ctx.emit, path, what, timeout)
    deadline = time.monotonic() + timeout
    while (left := await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout:g} s waiting for {left}")
        waits.saw(left)
        await asyncio.sleep(POLL_SECONDS)


async def _roll(ctx: Context, path: str, k: kube.Kube, node: str, p: WaveParams,
                resource: str | None) -> None:
    pods = [x for x in await asyncio.to_thread(drain.pods_on, k, node) if _daemonset_of(x)
            and x["metadata"]["namespace"] in (p.kata_namespace, p.operator_namespace)]
    for pod in pods:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]

        async def delete(permit: Permit, ns: str = ns, name: str = name) -> None:
            await kube.delete_pod(k, permit, ns, name)

        await ctx.change(path, f"{ns}/{name}", f"delete pod {ns}/{name} on {node} (graceful; "
                         "its DaemonSet starts the new version)", delete)
    if ctx.dry_run:
        return
    expected = frozenset(ds for x in pods if (ds := _daemonset_of(x)))
    await _until(ctx, path, f"{node}'s new kata-deploy and operand pods", p.roll_timeout_seconds,
                 lambda: _node_state(k, node, p, resource, expected))


async def _drain(ctx: Context, path: str, k: kube.Kube, node: str, p: WaveParams) -> None:
    planned = drain.drain_plan(await asyncio.to_thread(drain.pods_on, k, node),
                               drain.is_kata_gpu_pod)
    if planned.blocked:
        raise StepFailed(f"pods no controller would recreate: {', '.join(planned.unmanaged)}",
                         fix="move or delete them yourself (evicting them loses them), then "
                             "run upgrade again")

    async def evict(permit: Permit) -> None:
        try:
            await drain.evict_and_wait(k, permit, node, planned.evict, p.drain_timeout_seconds,
                                       lambda s: ctx.emit(WarningEvent(path=path, message=s)))
        except drain.DrainTimeout as exc:
            raise StepFailed(str(exc), fix="let the PodDisruptionBudget allow it, or raise "
                             "rollout.drainTimeoutSeconds") from None

    await ctx.change(path, node, f"drain {node}: evict " + (", ".join(planned.evict) or
                     "nothing (no Kata GPU pod)"), evict, {"evict": list(planned.evict)})


class _NodeFailed(StepFailed):
    """One node of a wave failed: the stage names it."""


async def _each(nodes: tuple[str, ...], act: Any) -> None:
    """`act(node)` for every node at once; every one finishes, then the first failure (in
    the wave's order) is raised, naming its node."""
    results = await asyncio.gather(*(act(n) for n in nodes), return_exceptions=True)
    for node, result in zip(nodes, results, strict=True):
        if isinstance(result, StepFailed):
            raise _NodeFailed(f"{node}: {result}", cause=result.cause, fix=result.fix)
        if isinstance(result, BaseException):
            raise result


async def wave(ctx: Context, step: Step[WaveParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    p = step.params
    resource = p.verify.resource if p.verify else None
    stage, where = "waiting for the new DaemonSets", ", ".join(p.nodes)
    try:
        await _until(ctx, step.id, "the new DaemonSet templates", p.roll_timeout_seconds,
                     lambda: _templates_new(k, p))
        for node in p.nodes:
            stage, where = "cordon", node

            async def hold(permit: Permit, node: str = node) -> None:
                await drain.cordon(k, permit, node, "upgrade")

            await ctx.change(step.id, node, f"cordon {node}", hold)
        # The wave's nodes are drained, rolled and verified side by side: a wave of N
        # nodes takes about one node's time, not N (bench/upgrade.py).
        stage, where = "drain", ", ".join(p.nodes)
        await _each(p.nodes, lambda n: _drain(ctx, step.id, k, n, p))
        stage = "replacing the pods"
        await _each(p.nodes, lambda n: _roll(ctx, step.id, k, n, p, resource))
        if p.verify is not None:
            verify = p.verify
            stage = "verification"
            await _each(p.nodes, lambda n: sample(ctx, Step(
                step.id, "change", f"verify {n}", replace(verify, nodes=(n,), node=n)), facts))
        for node in p.nodes:
            stage, where = "uncordon", node
            if node in p.keep_cordoned:
                continue

            async def release(permit: Permit, node: str = node) -> None:
                await drain.uncordon(k, permit, node)

            await ctx.change(step.id, node, f"uncordon {node}", release)
    except (StepFailed, kube.ApiError) as exc:
        raise await _stop(ctx, step.id, f"wave {p.wave}: {stage} on {where}", exc,
                          p.rollback) from None
    return Done(f"{', '.join(p.nodes)} upgraded and verified")
