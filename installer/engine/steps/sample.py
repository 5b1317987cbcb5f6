"""Verify step: run NVIDIA's CUDA vector-add sample in a Kata VM and read its verdict.

The pod is created and deleted through the engine's mutation point. It is never
force-deleted: a GPU Kata pod killed without grace can wedge VFIO until the host reboots.

Before it is applied, each Kata node's room is checked (installer.cluster.capacity): the GPU
RuntimeClass adds its overhead to the sample's own requests, and a sample no node can hold
would sit Pending with a reason ("Insufficient memory") that hides the overhead. That is a
finding naming the node, the resource, the shortfall and the fix, not a timeout.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from installer.answers.model import SAMPLE_POD
from installer.charts.devplugin import gpu_resources
from installer.charts.verify import GPU_RUNTIME_CLASS
from installer.cluster import kube
from installer.cluster.capacity import (
    Shortfall,
    format_quantity,
    parse_quantity,
    pod_requests,
    shortfalls,
)
from installer.cluster.facts import Facts
from installer.cluster.podread import read_pod
from installer.engine.events import PodLog, WarningEvent
from installer.engine.params import SampleParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed
from installer.permit import Permit

PASSED = "Test PASSED"
# The sample's label: what an uninstall finds it (and an upgrade's verification pods) by.
MANAGED_BY = {"app.kubernetes.io/managed-by": "gpu-kata-installer"}
# One small GET (the sample pod; its log once it runs) per poll: cheap enough to ask often,
# and each wait - scheduled, finished, gone - ends within one short poll of the change.
POLL_SECONDS = 0.2


def pod_name(params: SampleParams) -> str:
    """The sample's name; pinned to a node (an upgrade's verification) it carries the node's
    name, so a wave verifies its nodes side by side (a pod name has 253 characters at most)."""
    if params.node is None:
        return SAMPLE_POD
    name = f"{SAMPLE_POD}-{params.node}"
    return name if len(name) <= 253 else \
        f"{SAMPLE_POD}-{hashlib.sha256(params.node.encode()).hexdigest()[:12]}"


def manifest(params: SampleParams, resource: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "runtimeClassName": GPU_RUNTIME_CLASS,
        "restartPolicy": "OnFailure",
        "containers": [{"name": "cuda-vectoradd", "image": params.image,
                        "resources": {"limits": {resource: "1",
                                                 "memory": params.memory}}}],
    }
    if params.own:  # the answers' own verification: one run, its exit code the verdict
        spec["restartPolicy"] = "Never"
    if params.command:
        spec["containers"][0]["command"] = list(params.command)
    if params.node:  # an upgrade's verification of one cordoned node: past the scheduler
        spec["nodeName"] = params.node
    if params.tolerations:  # the Kata nodes' taints (a tainted GPU pool)
        spec["tolerations"] = [dict(t) for t in params.tolerations]
    if params.pull_secrets:  # `images.pullSecrets`: a private registry's credentials
        spec["imagePullSecrets"] = [{"name": s} for s in params.pull_secrets]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(params), "labels": dict(MANAGED_BY)},
        "spec": spec,
    }


def read_sample(k: kube.Kube, namespace: str, name: str = SAMPLE_POD) -> dict[str, Any] | None:
    """The sample pod as plain JSON (kube.Kube.get_json: no typed client), None if gone."""
    try:
        return k.get_json(f"/api/v1/namespaces/{namespace}/pods/{name}")
    except kube.ApiError as exc:
        if exc.status == 404:
            return None
        raise


async def delete_and_wait(ctx: Context, step: Step[Any], k: kube.Kube, namespace: str,
                          name: str = SAMPLE_POD) -> None:
    async def act(permit: Permit) -> None:
        await kube.delete_pod(k, permit, namespace, name)

    pod = f"{namespace}/{name}"
    await ctx.change(step.id, pod, f"delete pod {pod} (graceful)", act)
    deadline = time.monotonic() + 120
    while await asyncio.to_thread(read_sample, k, namespace, name) is not None:
        if time.monotonic() > deadline:
            raise StepFailed(f"pod {pod} did not go away within 120 s",
                             fix="check the node's kata runtime; never force-delete it")
        await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class Fit:
    """Where the sample can run: the GPU resource it will request, the target nodes that can
    hold it with the RuntimeClass overhead, and what each of the others lacks."""

    resource: str | None  # None: no target node advertises a GPU resource
    fitting: tuple[str, ...] = ()
    short: dict[str, list[Shortfall]] = field(default_factory=dict)


def fit_sample(params: SampleParams, nodes: list[dict[str, Any]],
               pods_on: Mapping[str, list[dict[str, Any]]],
               overhead: Mapping[str, Fraction]) -> Fit:
    """Which GPU resource to request and on which target nodes the sample fits. With per-model
    naming the resource is a model a fitting node advertises (the first such, in node order),
    so a node that cannot hold the sample never decides its resource. Pure."""
    targets = params.nodes  # the Kata nodes; a plan without them: every node
    fixed = params.resource
    fitting: dict[str, list[str]] = {}
    short: dict[str, list[Shortfall]] = {}
    first: str | None = None
    for node in nodes:
        name = node["metadata"]["name"]
        if targets is not None and name not in targets:
            continue
        alloc = (node.get("status") or {}).get("allocatable") or {}
        for res in gpu_resources(alloc, fixed):
            first = first or res
            own = pod_requests(manifest(params, res)["spec"], overhead={})
            lack = shortfalls(name, alloc, pods_on.get(name, []), own, overhead)
            if lack:
                short.setdefault(name, lack)
            else:
                fitting.setdefault(res, []).append(name)
    if fitting:
        res = next(iter(fitting))
        return Fit(res, tuple(fitting[res]), short)
    return Fit(first, (), short)


def _overhead(k: kube.Kube) -> dict[str, Fraction]:
    """The GPU RuntimeClass's overhead.podFixed as the cluster has it (kata-deploy's chart:
    10240Mi and 1.0 CPU; an operator may change it); none when the class is missing."""
    try:
        rc = k.get_json(f"/apis/node.k8s.io/v1/runtimeclasses/{GPU_RUNTIME_CLASS}")
    except kube.ApiError as exc:
        if exc.status == 404:
            return {}
        raise
    return {r: parse_quantity(v)
            for r, v in ((rc.get("overhead") or {}).get("podFixed") or {}).items()}


def read_fit(k: kube.Kube, params: SampleParams) -> tuple[Fit, dict[str, Fraction]]:
    """Read what fit_sample needs (runs in a thread): the nodes, the pods bound to the target
    nodes that advertise a GPU resource, the RuntimeClass overhead."""
    nodes = list(k.list_items("/api/v1/nodes"))
    targets = params.nodes
    fixed = params.resource
    pods_on = {n["metadata"]["name"]: list(k.list_items(
        "/api/v1/pods", fieldSelector=f"spec.nodeName={n['metadata']['name']}"))
        for n in nodes if (targets is None or n["metadata"]["name"] in targets)
        and gpu_resources((n.get("status") or {}).get("allocatable") or {}, fixed)}
    overhead = _overhead(k)
    return fit_sample(params, nodes, pods_on, overhead), overhead


def _fix(short: list[Shortfall]) -> str:
    """What would make room on one node, resource by resource."""
    out = []
    for s in short:
        q = functools.partial(format_quantity, s.resource)
        if s.resource == "memory":
            room = s.free - s.overhead
            if 0 < room < s.own:
                out.append(f"set sample.memory to {q(room)} or less in the answers")
            out.append(f"free {q(s.short)} of memory on {s.node} (its pods request "
                       f"{q(s.requested)} of {q(s.allocatable)})")
        elif s.resource == "cpu":
            out.append(f"free {q(s.short)} CPU on {s.node}")
        else:
            out.append(f"wait for the pods holding {s.resource} on {s.node} to finish")
    return "; or ".join(out)


def refuse(fit: Fit, overhead: Mapping[str, Fraction]) -> StepFailed:
    """The finding when no target node can hold the sample, before it is applied."""
    lines = [s.describe(GPU_RUNTIME_CLASS) for lack in fit.short.values() for s in lack]
    added = ", ".join(f"{r} {format_quantity(r, v)}" for r, v in sorted(overhead.items()))
    return StepFailed(
        "the sample fits on no Kata node: " + "; ".join(lines),
        cause=(f"every pod of RuntimeClass {GPU_RUNTIME_CLASS} carries its overhead.podFixed "
               f"({added or 'none'}) on top of its own requests; the scheduler would leave it "
               "Pending with 'Insufficient ...'" if overhead else
               "the pods already on the Kata nodes leave too little for the sample"),
        fix=_fix(next(iter(fit.short.values()))))


def _log(k: kube.Kube, namespace: str, name: str) -> str:
    try:
        return k.get_text(f"/api/v1/namespaces/{namespace}/pods/{name}/log")
    except kube.ApiError:
        return ""  # not started yet


def pending_reason(pod: dict[str, Any]) -> str:
    """Why the scheduler has not placed the pod ("Unschedulable: 0/4 nodes are available:
    ..."), empty once it has: the warning and the timeout's likeliest cause quote it."""
    r = read_pod(pod)
    if not (r.unschedulable_reason or r.unschedulable):
        return ""
    return f"{r.unschedulable_reason}: {r.unschedulable}"


def sample_seen(pod: dict[str, Any] | None) -> tuple[str, str]:
    """(the node, what the wait shows) for the sample pod as last read."""
    if pod is None:
        return "", "the pod is gone"
    r = read_pod(pod)
    state = r.reason or r.phase
    where = f" on {r.node}" if r.node else " (not scheduled yet)"
    why = f": {r.unschedulable}" if r.unschedulable else ""
    return r.node or "", f"{state}{where}{why}"


async def sample(ctx: Context, step: Step[SampleParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    p = step.params
    ns, name = p.namespace, pod_name(p)
    if await asyncio.to_thread(read_sample, k, ns, name) is not None:
        await delete_and_wait(ctx, step, k, ns, name)  # a leftover from an interrupted run

    fit, overhead = await asyncio.to_thread(read_fit, k, p)
    if fit.resource is None:
        raise StepFailed("no Kata node advertises a GPU resource ("
                         + (p.resource or "nvidia.com/<model>") + ")",
                         fix="check verify/gpu-operator's findings")
    if not fit.fitting:
        raise refuse(fit, overhead)
    for lack in fit.short.values():  # others fit: the scheduler places it there
        ctx.emit(WarningEvent(path=step.id, message="the sample cannot run on " + "; ".join(
            s.describe(GPU_RUNTIME_CLASS) for s in lack)))
    body = manifest(p, fit.resource)

    async def create(permit: Permit) -> None:
        await kube.create_pod(k, permit, ns, body)

    await ctx.change(step.id, f"{ns}/{name}", f"create pod {ns}/{name}", create,
                     {"manifest": body})
    deadline = time.monotonic() + p.timeout_seconds
    waits = WaitReporter(ctx.emit, step.id, f"pod {ns}/{name} to finish with "
                         f"'{PASSED}'", p.timeout_seconds)
    reason, lines = "", []
    try:
        while True:
            pod = await asyncio.to_thread(read_sample, k, ns, name)
            phase = ((pod.get("status") or {}).get("phase") or "Pending") if pod else "Gone"
            seen = sample_seen(pod)
            waits.saw(seen[1], nodes={seen[0]: seen[1]} if seen[0] else None)
            if phase in ("Running", "Succeeded", "Failed"):
                # Polled, not followed: a follow stream does not always end with the pod.
                text = await asyncio.to_thread(_log, k, ns, name)
                for line in text.splitlines()[len(lines):]:
                    lines.append(line)
                    ctx.emit(PodLog(path=step.id, namespace=ns, pod=name,
                                    container="cuda-vectoradd", line=line, message=line))
            if phase in ("Succeeded", "Failed", "Gone"):
                break
            if phase == "Pending" and (now := pending_reason(pod)) and now != reason:
                reason = now
                ctx.emit(WarningEvent(path=step.id, message=f"pending: {reason}"))
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"the sample did not finish within {p.timeout_seconds} s "
                    f"(phase {phase})",
                    cause="likeliest cause: " + (reason or "image pull or VM start still running"),
                    fix="see `gpu-kata-installer troubleshoot`")
            await asyncio.sleep(POLL_SECONDS)
        passed = phase == "Succeeded" and (p.own or any(PASSED in line for line in lines))
    finally:
        await delete_and_wait(ctx, step, k, ns, name)
    if not passed:
        said = (f"the verification pod ({p.image}) ended {phase}" if p.own else
                f"the sample ended {phase} without '{PASSED}'")
        raise StepFailed(said, cause="last log lines: " + " | ".join(lines[-3:]),
                         fix="see `gpu-kata-installer troubleshoot`")
    return Done(f"the verification pod ({p.image}) exited 0" if p.own else
                f"{PASSED} ({len(lines)} log lines)")
