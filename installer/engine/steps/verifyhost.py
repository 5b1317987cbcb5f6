"""Verify step: over SSH, the node's GPUs sit on vfio-pci and the CDI spec of the resource the
node advertises lists them (installer.charts.devplugin says which spec that is)."""

from __future__ import annotations

import asyncio
from typing import Any

from installer.charts.devplugin import check_specs, expected_classes
from installer.cluster import kube
from installer.cluster.facts import Facts, ProbeFailure
from installer.engine.params import SshTarget, VerifyHostParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.steps.probe import host_facts
from installer.errors import StepFailed
from installer.hosts.access import HostAccess, target
from remote.hostfacts import VFIO_DRIVERS, HostFacts
from remote.probe import probe_command
from remote.ssh import run_on_hosts


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


async def probe_to_verify(ctx: Context, ssh: SshTarget) -> HostFacts:
    """The host as it is now, read for a verification; a host that cannot be read fails it."""
    access: HostAccess = ctx.services["hosts"]
    t = target(ssh)
    (result,) = (await run_on_hosts([t], probe_command(), access.options, sudo=access.sudo,
                                    sudo_password=access.sudo_password,
                                    **access.ssh_kwargs())).values()
    host = host_facts(result)
    if isinstance(host, ProbeFailure):
        raise StepFailed(f"{t.name}: cannot reach the host to verify it: {host.message}",
                         fix=host.remedy)
    return host


async def verify_host(ctx: Context, step: Step[VerifyHostParams], facts: Facts) -> Done:
    t = target(step.params.target)
    host = await probe_to_verify(ctx, step.params.target)
    # vfio-pci, or nvgrace_gpu_vfio_pci for a Grace GPU: the drivers the GPU Operator's
    # sandbox validator accepts (remote.hostfacts.VFIO_DRIVERS).
    wrong = [f"{g.bdf} on {g.driver or 'no driver'}" for g in host.gpus
             if g.driver not in VFIO_DRIVERS]
    if wrong:
        raise StepFailed(f"{t.name}: GPUs not on vfio-pci: {', '.join(wrong)}",
                         cause="a host driver holds them, or the vfio manager has not run",
                         fix="apply the vfio-bind host fix (or check nvidia-vfio-manager)")
    resource = step.params.resource
    node = step.params.node
    alloc = None if resource else await asyncio.to_thread(
        _allocatable, ctx.services.get("kube"), node)
    verdict = check_specs(host, expected_classes(resource, alloc, host.gpus), t.name)
    if not verdict.ok:
        raise StepFailed(verdict.message, cause=verdict.cause, fix=verdict.fix)
    return Done(f"{len(host.gpus)} GPU(s) on vfio-pci, {verdict.message}")
