"""Verify step: run NVIDIA's CUDA vector-add sample in a Kata VM and read its verdict.

The pod is created and deleted through the engine's mutation point. It is never
force-deleted: a GPU Kata pod killed without grace can wedge VFIO until the host reboots.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from installer import kube
from installer.engine import Context
from installer.errors import StepFailed
from installer.events import PodLog, WarningEvent
from installer.facts import Facts
from installer.permit import Permit
from installer.plan import Step
from installer.podread import read_pod
from installer.verify import GPU_RUNTIME_CLASS

NAME = "cuda-vectoradd-kata"
PASSED = "Test PASSED"
# One small GET (the sample pod; its log once it runs) per poll: cheap enough to ask often,
# and each wait - scheduled, finished, gone - ends within 0.2 s of the change, not 0.5 s.
POLL_SECONDS = 0.2


def manifest(params: dict[str, Any], resource: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "runtimeClassName": GPU_RUNTIME_CLASS,
        "restartPolicy": "OnFailure",
        "containers": [{"name": "cuda-vectoradd", "image": params["image"],
                        "resources": {"limits": {resource: "1",
                                                 "memory": params["memory"]}}}],
    }
    if params.get("tolerations"):  # the Kata nodes' taints (a tainted GPU pool)
        spec["tolerations"] = params["tolerations"]
    if params.get("pullSecrets"):  # `images.pullSecrets`: a private registry's credentials
        spec["imagePullSecrets"] = [{"name": s} for s in params["pullSecrets"]]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": NAME, "labels": {"app.kubernetes.io/managed-by":
                                              "gpu-kata-installer"}},
        "spec": spec,
    }


def read_sample(k: kube.Kube, namespace: str) -> dict[str, Any] | None:
    """The sample pod as plain JSON (kube.Kube.get_json: no typed client), None if gone."""
    try:
        return k.get_json(f"/api/v1/namespaces/{namespace}/pods/{NAME}")
    except kube.ApiError as exc:
        if exc.status == 404:
            return None
        raise


async def delete_and_wait(ctx: Context, step: Step, k: kube.Kube, namespace: str) -> None:
    async def act(permit: Permit) -> None:
        await kube.delete_pod(k, permit, namespace, NAME)

    await ctx.change(step.id, f"{namespace}/{NAME}", f"delete pod {namespace}/{NAME} (graceful)",
                     act)
    deadline = time.monotonic() + 120
    while await asyncio.to_thread(read_sample, k, namespace) is not None:
        if time.monotonic() > deadline:
            raise StepFailed(f"pod {namespace}/{NAME} did not go away within 120 s",
                             fix="check the node's kata runtime; never force-delete it")
        await asyncio.sleep(POLL_SECONDS)


def _gpu_resource(k: kube.Kube, params: dict[str, Any]) -> str:
    """The resource to request: pgpu, or with per-model naming the first model on a node."""
    if params["resource"] != "per-model":
        return params["resource"]
    for node in k.list_items("/api/v1/nodes"):
        for name, value in ((node.get("status") or {}).get("allocatable") or {}).items():
            if name.startswith("nvidia.com/") and name != "nvidia.com/gpu" and value != "0":
                return name
    raise StepFailed("no node advertises a per-model GPU resource (nvidia.com/<model>)",
                     fix="check verify/gpu-operator's findings")


def _log(k: kube.Kube, namespace: str) -> str:
    try:
        return k.get_text(f"/api/v1/namespaces/{namespace}/pods/{NAME}/log")
    except kube.ApiError:
        return ""  # not started yet


def pending_reason(pod: dict[str, Any]) -> str:
    """Why the scheduler has not placed the pod ("Unschedulable: 0/4 nodes are available:
    ..."), empty once it has: the warning and the timeout's likeliest cause quote it."""
    r = read_pod(pod)
    if not (r.unschedulable_reason or r.unschedulable):
        return ""
    return f"{r.unschedulable_reason}: {r.unschedulable}"


async def sample(ctx: Context, step: Step, facts: Facts) -> str:
    k: kube.Kube = ctx.services["kube"]
    ns = step.params["namespace"]
    if await asyncio.to_thread(read_sample, k, ns) is not None:
        await delete_and_wait(ctx, step, k, ns)  # a leftover from an interrupted run

    body = manifest(step.params, await asyncio.to_thread(_gpu_resource, k, step.params))

    async def create(permit: Permit) -> None:
        await kube.create_pod(k, permit, ns, body)

    await ctx.change(step.id, f"{ns}/{NAME}", f"create pod {ns}/{NAME}", create,
                     {"manifest": body})
    deadline = time.monotonic() + step.params["timeoutSeconds"]
    reason, lines = "", []
    try:
        while True:
            pod = await asyncio.to_thread(read_sample, k, ns)
            phase = ((pod.get("status") or {}).get("phase") or "Pending") if pod else "Gone"
            if phase in ("Running", "Succeeded", "Failed"):
                # Polled, not followed: a follow stream does not always end with the pod.
                text = await asyncio.to_thread(_log, k, ns)
                for line in text.splitlines()[len(lines):]:
                    lines.append(line)
                    ctx.emit(PodLog(path=step.id, namespace=ns, pod=NAME,
                                    container="cuda-vectoradd", line=line, message=line))
            if phase in ("Succeeded", "Failed", "Gone"):
                break
            if phase == "Pending" and (now := pending_reason(pod)) and now != reason:
                reason = now
                ctx.emit(WarningEvent(path=step.id, message=f"pending: {reason}"))
            if time.monotonic() > deadline:
                raise StepFailed(
                    f"the sample did not finish within {step.params['timeoutSeconds']} s "
                    f"(phase {phase})",
                    cause="likeliest cause: " + (reason or "image pull or VM start still running"),
                    fix="see `gpu-kata-installer troubleshoot`")
            await asyncio.sleep(POLL_SECONDS)
        passed = phase == "Succeeded" and any(PASSED in line for line in lines)
    finally:
        await delete_and_wait(ctx, step, k, ns)
    if not passed:
        raise StepFailed(f"the sample ended {phase} without '{PASSED}'",
                         cause="last log lines: " + " | ".join(lines[-3:]),
                         fix="see `gpu-kata-installer troubleshoot`")
    return f"{PASSED} ({len(lines)} log lines)"
