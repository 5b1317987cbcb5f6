"""Change step: apply one host fix (or reboot and wait) through the engine's mutation point."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.engine.events import Output
from installer.engine.params import HostFixParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done, Replan
from installer.engine.steps.hostrun import run_one
from installer.engine.waits import WaitReporter
from installer.errors import StepFailed
from installer.hosts.access import HostAccess, target
from installer.permit import Permit, require_permit
from remote.fixes.reboot import DELAY, FIRST_POLL, poll_delays, reboot_and_wait
from remote.ssh import Script

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


async def _pod_reboot(ctx: Context, step: Step[HostFixParams], waits: WaitReporter,
                      node_ready: Callable[[], Awaitable[bool]]) -> str:
    """A reboot through the node's host-access pod: the new boot is seen where the cluster
    sees it (the kubelet reports the host's boot id as the node's `nodeInfo.bootID`), and
    the pod - whose background process schedules the reboot - is removed only after it."""
    k: kube.Kube = ctx.services["kube"]
    node, fix = step.params.node, step.params.fix
    assert fix is not None
    started = time.monotonic()

    def boot_id() -> str:
        info = (k.get_json(f"/api/v1/nodes/{node}").get("status") or {}).get("nodeInfo") or {}
        return str(info.get("bootID") or "")

    old = await asyncio.to_thread(boot_id)

    async def back() -> None:
        delays = poll_delays(5.0, first=DELAY + FIRST_POLL)
        while await asyncio.to_thread(boot_id) == old:
            if time.monotonic() - started > REBOOT_TIMEOUT:
                raise StepFailed(f"{node} did not report a new boot id within "
                                 f"{REBOOT_TIMEOUT:.0f}s", fix="check the host's console; "
                                 "run again once it is up")
            await asyncio.sleep(next(delays))
        delays = poll_delays(5.0)
        while not await node_ready():
            if time.monotonic() - started > REBOOT_TIMEOUT:
                raise StepFailed(f"{node} is back but its node is not Ready",
                                 fix="check kubelet on the host (journalctl -u kubelet)")
            await asyncio.sleep(next(delays))

    result = await run_one(ctx, step.id, step.params.target, Script(fix.change.apply_script),
                           sudo=True, until=back)
    if not result.ok:
        raise StepFailed(f"{node}: the reboot was not started: {result.error or result.text()}",
                         fix="fix the cause and run again")
    return f"rebooted in {time.monotonic() - started:.0f}s"


async def host_fix(ctx: Context, step: Step[HostFixParams], facts: Facts) -> Done | Replan:
    access: HostAccess = ctx.services["hosts"]
    node = step.params.node
    if step.params.fix is None:  # the engine runs no step that only waits for a reboot
        raise StepFailed(f"{step.id}: planned only after the reboot; run again to plan it")
    change = step.params.fix.change
    planned = step.changes[0]  # consented to by the engine before this runs; then its pod
    via_pod = step.params.target.pod is not None

    async def act(permit: Permit) -> str:
        require_permit(permit)
        if change.name == "reboot":
            how = "the node's boot id" if via_pod else "a new boot id over SSH"
            waits = WaitReporter(ctx.emit, step.id, f"{node} back from the reboot: {how}, "
                                 "then the node Ready", REBOOT_TIMEOUT)
            waits.saw("rebooting; waiting for the host to come back with a new boot id",
                      nodes={node: "rebooting"})

            async def node_ready() -> bool:
                ready = await _node_ready(ctx, node)
                seen = "node Ready" if ready else "host is up; node not Ready yet"
                waits.saw(seen, nodes={} if ready else {node: seen},
                          ready=(node,) if ready else ())
                return ready

            if via_pod:
                return await _pod_reboot(ctx, step, waits, node_ready)
            result = await reboot_and_wait(
                change, target(step.params.target), access.options,
                sudo_password=access.sudo_password, timeout=REBOOT_TIMEOUT,
                node_ready=node_ready, **access.ssh_kwargs())
            if not result.ok:
                raise StepFailed(f"{node} did not come back from the reboot: {result.error}",
                                 fix="check the host's console; run again once it is up")
            return f"rebooted in {result.seconds:.0f}s"
        result = await run_one(ctx, step.id, step.params.target, Script(change.apply_script),
                               sudo=True)
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
