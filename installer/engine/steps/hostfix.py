"""Change step: apply one host fix (or reboot and wait) through the engine's mutation point."""

from __future__ import annotations

import asyncio

from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.engine.events import Output
from installer.engine.params import HostFixParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done, Replan
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed
from installer.hosts.access import HostAccess, target
from installer.permit import Permit, require_permit
from remote.fixes import apply_change
from remote.fixes.reboot import reboot_and_wait

REBOOT_TIMEOUT = 1200.0  # reboot_and_wait's own default, said here so the wait can count down


async def _node_ready(ctx: Context, node: str) -> bool:
    k: kube.Kube | None = ctx.services.get("kube")
    if k is None:
        return True

    def ready() -> bool:
        status = k.get_json(f"/api/v1/nodes/{node}").get("status") or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in status.get("conditions") or [])

    return await asyncio.to_thread(ready)


async def host_fix(ctx: Context, step: Step[HostFixParams], facts: Facts) -> Done | Replan:
    access: HostAccess = ctx.services["hosts"]
    node = step.params.node
    if step.params.fix is None:  # the engine runs no step that only waits for a reboot
        raise StepFailed(f"{step.id}: planned only after the reboot; run again to plan it")
    change = step.params.fix.change
    (planned,) = step.changes  # consented to by the engine before this runs
    t = target(step.params.target)

    async def act(permit: Permit) -> str:
        require_permit(permit)
        if change.name == "reboot":
            waits = WaitReporter(ctx.emit, step.id, f"{node} back from the reboot: a new boot "
                                 "id over SSH, then the node Ready", REBOOT_TIMEOUT)
            waits.saw("rebooting; waiting for SSH to answer with a new boot id",
                      nodes={node: "rebooting"})

            async def node_ready() -> bool:
                ready = await _node_ready(ctx, node)
                seen = "node Ready" if ready else "host is up; node not Ready yet"
                waits.saw(seen, nodes={} if ready else {node: seen},
                          ready=(node,) if ready else ())
                return ready

            result = await reboot_and_wait(
                change, t, access.options, sudo_password=access.sudo_password,
                timeout=REBOOT_TIMEOUT, node_ready=node_ready, **access.ssh_kwargs())
            if not result.ok:
                raise StepFailed(f"{node} did not come back from the reboot: {result.error}",
                                 fix="check the host's console; run again once it is up")
            return f"rebooted in {result.seconds:.0f}s"
        result = await apply_change(change, t, access.options,
                                    sudo_password=access.sudo_password, **access.ssh_kwargs())
        for line in result.text().splitlines():
            ctx.emit(Output(path=step.id, message=line))
        if not result.ok:
            why = result.error or result.stderr.decode("utf-8", "replace").strip()[-500:]
            raise StepFailed(f"{change.name} failed on {node}: {why}",
                             fix="the host file is unchanged or fully written (edits are "
                                 "atomic); fix the cause and run again")
        return "applied"

    outcome = await ctx.change(step.id, node, planned.description, act, planned.detail)
    if change.name == "reboot" and outcome is not None:
        return Replan((node,))
    return Done(outcome or "applied")
