"""Change-chain step: wait until a node whose role changed serves in its new role, before its
uncordon (installer.engine.rolechange).

Traditional: the node advertises nvidia.com/gpu, no Kata GPU resource is left on it, and
over SSH no GPU sits on a vfio driver. Kata: the kata runtime label and the Kata resource,
then the host verify every Kata node gets (GPUs on vfio-pci, the CDI spec).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from installer.cluster import kube
from installer.cluster.facts import KATA_RUNTIME_LABEL, Facts
from installer.engine.params import VerifyHostParams, VerifyRoleParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.steps.verifyhost import probe_to_verify, verify_host
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed
from remote.hostfacts import VFIO_DRIVERS

POLL_SECONDS = 2.0
CONTAINER_RESOURCE = "nvidia.com/gpu"


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def kata_resources(allocatable: dict[str, Any], resource: str | None) -> dict[str, int]:
    """The Kata GPU resources the node advertises (> 0): `resource`, or every per-model
    nvidia.com/ name when it is None."""
    return {k: _count(v) for k, v in allocatable.items()
            if (k == resource if resource else
                k.startswith("nvidia.com/") and k != CONTAINER_RESOURCE) and _count(v) > 0}


def cluster_missing(node: dict[str, Any], params: VerifyRoleParams) -> str:
    """What the node object still lacks for its new role ("" when nothing)."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    alloc = (node.get("status") or {}).get("allocatable") or {}
    kata = kata_resources(alloc, params.resource)
    if params.role == "traditional":
        if kata:
            return "still advertises " + ", ".join(f"{k}={v}" for k, v in kata.items())
        if _count(alloc.get(CONTAINER_RESOURCE, 0)) <= 0:
            return f"does not advertise {CONTAINER_RESOURCE} yet"
        return ""
    if labels.get(KATA_RUNTIME_LABEL) != "true":
        return f"no {KATA_RUNTIME_LABEL}=true label yet (kata-deploy)"
    if not kata:
        return f"does not advertise {params.resource or 'a per-model nvidia.com/ resource'} yet"
    return ""


async def _on_vfio(ctx: Context, path: str, params: VerifyRoleParams) -> list[str]:
    host = await probe_to_verify(ctx, path, params.target)
    return [f"{d.bdf} on {d.driver}" for d in host.gpus + host.nvswitches
            if d.driver in VFIO_DRIVERS]


async def verify_role(ctx: Context, step: Step[VerifyRoleParams], facts: Facts) -> Done:
    k: kube.Kube = ctx.services["kube"]
    p = step.params
    waits = WaitReporter(ctx.emit, step.id, f"{p.node} serving as {p.role}", p.timeout_seconds)
    deadline = time.monotonic() + p.timeout_seconds
    while True:
        obj = await asyncio.to_thread(k.get_json, f"/api/v1/nodes/{p.node}")
        missing = cluster_missing(obj, p)
        if not missing and p.role == "traditional":
            held = await _on_vfio(ctx, step.id, p)
            missing = f"GPUs still on vfio: {', '.join(held)}" if held else ""
        if not missing:
            break
        if time.monotonic() >= deadline:
            raise StepFailed(f"{p.node} is not serving as {p.role}: {missing}; left cordoned",
                             fix="see the GPU Operator's pods on the node (gpu-kata-installer "
                                 "troubleshoot), then run again")
        waits.saw(missing, nodes={p.node: missing})
        await asyncio.sleep(POLL_SECONDS)
    if p.role == "kata":
        done = await verify_host(ctx, Step(step.id, "verify", step.title, VerifyHostParams(
            p.node, p.resource, p.target)), facts)
        return Done(f"{p.node} serves as kata: {done.message}")
    return Done(f"{p.node} serves as traditional: no GPU on vfio, "
                f"{CONTAINER_RESOURCE} advertised")
