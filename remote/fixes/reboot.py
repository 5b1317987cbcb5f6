"""Fix `reboot`: reboot a host and wait until it is back (and its node Ready).

Always needs consent: a reboot stops every workload on the node. The script schedules the
reboot two seconds out and returns, so the SSH command ends cleanly instead of being cut;
`reboot_and_wait` then waits for the host to come back with a NEW boot id (a host that
never went down is not "back") and, when the caller passes a readiness check, for the
Kubernetes node to be Ready.

The wait asks first when the reboot can have happened (the scheduled delay), then often
and less and less often (`poll_delays`): a host that is back quickly is seen quickly, and
one that takes minutes is not asked over and over. A connection the run keeps to the
host is forgotten before the reboot (its sessions end with it), and so is each one a poll
made while the host was still up.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from remote.fixes.base import HostChange, ScriptBuilder
from remote.hostfacts import HostFacts
from remote.ssh import Connections, HostError, SSHOptions, run_on_hosts
from remote.targets import HostTarget

NAME = "reboot"
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
DELAY = 2  # seconds between the script's return and the reboot it schedules
FIRST_POLL = 0.5  # then doubling, up to the caller's `poll`


def plan(facts: HostFacts, host_root: str = "/", reason: str = "") -> HostChange:
    b = ScriptBuilder(NAME, host_root)
    b.raw('if ! gki_live; then printf "skipped on a host tree (%s): reboot\\n" "$ROOT"; '
          "exit 0; fi\n"
          "sync\n"
          f"nohup sh -c 'sleep {DELAY}; systemctl reboot || reboot' >/dev/null 2>&1 &\n"
          f'printf "rebooting in {DELAY} seconds\\n"',
          'printf "a reboot cannot be undone\\n"',
          shown=f"sync; (sleep {DELAY}; systemctl reboot || reboot) in the background")
    return b.change(facts.hostname, "reboot" + (f" ({reason})" if reason else ""),
                    needs_consent=True)


@dataclass
class RebootResult:
    ok: bool
    old_boot_id: str | None
    new_boot_id: str | None
    seconds: float
    error: HostError | None = None


async def boot_id(target: HostTarget, options: SSHOptions, **kw) -> tuple[str | None,
                                                                          HostError | None]:
    r = (await run_on_hosts([target], BOOT_ID, options, **kw))[target.name]
    if r.ok:
        return r.text().strip(), None
    return None, r.error or HostError("error", r.stderr.decode(errors="replace").strip())


async def reboot_and_wait(change: HostChange, target: HostTarget, options: SSHOptions, *,
                          sudo_password: str | None = None, passphrase: str | None = None,
                          timeout: float = 1200.0, poll: float = 5.0,
                          node_ready: Callable[[], Awaitable[bool] | bool] | None = None,
                          confirm_host_key: Callable | None = None,
                          connections: Connections | None = None) -> RebootResult:
    """Run the reboot change and wait until the host answers with a new boot id, then
    until `node_ready()` (if given) returns True. Never raises for host problems.

    `poll` is the longest pause between two questions (see `poll_delays`)."""
    from remote.fixes.base import apply_change

    start = time.monotonic()
    kw = {"passphrase": passphrase, "confirm_host_key": confirm_host_key,
          "connections": connections}
    old, err = await boot_id(target, options, **kw)
    if err:
        return RebootResult(False, None, None, 0.0, err)
    r = await apply_change(change, target, options, sudo_password=sudo_password, **kw)
    if connections is not None:
        connections.forget(target)
    if r.error and r.error.kind not in ("unreachable", "timeout"):
        return RebootResult(False, old, None, time.monotonic() - start, r.error)
    new = None
    last: HostError | None = None
    delays = poll_delays(poll, first=DELAY + FIRST_POLL)
    while time.monotonic() - start < timeout:
        await asyncio.sleep(next(delays))
        cur, last = await boot_id(target, options, **kw)
        if cur and cur != old:
            new = cur
            break
        if connections is not None:  # made before the host went down: it will not last
            connections.forget(target)
    if new is None:
        return RebootResult(False, old, None, time.monotonic() - start, HostError(
            "timeout", f"{target.name} did not come back with a new boot id within "
            f"{timeout:.0f}s" + (f" (last: {last})" if last else ""),
            "Check the host's console/BMC: it may be stuck in firmware or fsck."))
    delays = poll_delays(poll)
    while node_ready is not None and time.monotonic() - start < timeout:
        ok = node_ready()
        if inspect.isawaitable(ok):
            ok = await ok
        if ok:
            break
        await asyncio.sleep(next(delays))
    else:
        if node_ready is not None:
            return RebootResult(False, old, new, time.monotonic() - start, HostError(
                "timeout", f"{target.name} is back but its node is not Ready",
                "Check kubelet on the host (journalctl -u kubelet)."))
    return RebootResult(True, old, new, time.monotonic() - start)


def poll_delays(longest: float, first: float = FIRST_POLL) -> Iterator[float]:
    """Pauses between polls: `first`, then FIRST_POLL doubling up to `longest`, then
    `longest` for ever."""
    yield first
    d = FIRST_POLL
    while True:
        d = min(d * 2, longest)
        yield d
