"""Verify step: over SSH, the node's GPUs sit on vfio-pci and the CDI spec exists."""

from __future__ import annotations

from installer.engine import Context
from installer.errors import StepFailed
from installer.facts import Facts
from installer.hostaccess import HostAccess, target
from installer.hostplan import ProbeFailure
from installer.plan import Step
from installer.steps.probe import host_facts
from remote.hostfacts import VFIO_DRIVERS
from remote.probe import probe_command
from remote.ssh import run_on_hosts

CDI_SPEC = "var/run/cdi/nvidia.com-pgpu.yaml"


async def verify_host(ctx: Context, step: Step, facts: Facts) -> str:
    access: HostAccess = ctx.services["hosts"]
    t = target(step.params["target"])
    (result,) = (await run_on_hosts([t], probe_command(), access.options, sudo=access.sudo,
                                    sudo_password=access.sudo_password,
                                    **access.ssh_kwargs())).values()
    host = host_facts(result)
    if isinstance(host, ProbeFailure):
        raise StepFailed(f"{t.name}: cannot reach the host to verify it: {host.message}",
                         fix=host.remedy)
    # vfio-pci, or nvgrace_gpu_vfio_pci for a Grace GPU: the drivers the GPU Operator's
    # sandbox validator accepts (remote.hostfacts.VFIO_DRIVERS).
    wrong = [f"{g.bdf} on {g.driver or 'no driver'}" for g in host.gpus
             if g.driver not in VFIO_DRIVERS]
    if wrong:
        raise StepFailed(f"{t.name}: GPUs not on vfio-pci: {', '.join(wrong)}",
                         cause="a host driver holds them, or the vfio manager has not run",
                         fix="apply the vfio-bind host fix (or check nvidia-vfio-manager)")
    specs = [s for s in host.cdi_specs if s.endswith("nvidia.com-pgpu.yaml")]
    if not specs:
        raise StepFailed(f"{t.name}: no CDI spec /{CDI_SPEC}",
                         cause="the Kata sandbox device plugin has not written it",
                         fix="check the nvidia-kata-sandbox-device-plugin pod on the node")
    return f"{len(host.gpus)} GPU(s) on vfio-pci, CDI spec present"
