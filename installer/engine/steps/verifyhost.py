"""Verify step: on the host (over SSH or through its host-access pod), the node's GPUs
sit on vfio-pci and the CDI spec of the resource the node advertises
lists them (installer.charts.devplugin says which spec that is)."""

from __future__ import annotations

import asyncio
from typing import Any

from installer.charts.devplugin import check_specs, expected_classes
from installer.cluster import kube
from installer.cluster.facts import Facts, ProbeFailure
from installer.engine.params import SshTarget, VerifyHostParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.steps.hostrun import run_one
from installer.engine.steps.probe import host_facts
from installer.errors import StepFailed
from installer.hosts.access import HostAccess
from remote.hostfacts import VFIO_DRIVERS, HostFacts
from remote.probe import probe_command


def _allocatable(k: kube.Kube | None, node: str) -> dict[str, Any] | None:
    """The node's allocatable as the API server has it now; None when it cannot be read (the
    host's GPU models then name the specs)."""
    if k is None:
        return None
    try:
        return dict((k.get_json(f"/api/v1/nodes/{node}").get("status") or {})
                    .get("allocatable") or {})
    except kube.ApiError:
        return None


async def probe_to_verify(ctx: Context, path: str, t: SshTarget) -> HostFacts:
    """The host as it is now, read for a verification; a host that cannot be read fails it."""
    access: HostAccess = ctx.services["hosts"]
    host = host_facts(await run_one(ctx, path, t, probe_command(), sudo=access.sudo))
    if isinstance(host, ProbeFailure):
        raise StepFailed(f"{t.node}: cannot reach the host to verify it: {host.message}",
                         fix=host.remedy)
    return host


async def verify_host(ctx: Context, step: Step[VerifyHostParams], facts: Facts) -> Done:
    node = step.params.node
    host = await probe_to_verify(ctx, step.id, step.params.target)
    # vfio-pci, or nvgrace_gpu_vfio_pci for a Grace GPU: the drivers the GPU Operator's
    # sandbox validator accepts (remote.hostfacts.VFIO_DRIVERS).
    wrong = [f"{g.bdf} on {g.driver or 'no driver'}" for g in host.gpus
             if g.driver not in VFIO_DRIVERS]
    if wrong:
        raise StepFailed(f"{node}: GPUs not on vfio-pci: {', '.join(wrong)}",
                         cause="a host driver holds them, or the vfio manager has not run",
                         fix="apply the vfio-bind host fix (or check nvidia-vfio-manager)")
    resource = step.params.resource
    alloc = None if resource else await asyncio.to_thread(
        _allocatable, ctx.services.get("kube"), node)
    verdict = check_specs(host, expected_classes(resource, alloc, host.gpus), node)
    if not verdict.ok:
        raise StepFailed(verdict.message, cause=verdict.cause, fix=verdict.fix)
    return Done(f"{len(host.gpus)} GPU(s) on vfio-pci, {verdict.message}")
