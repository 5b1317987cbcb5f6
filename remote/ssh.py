"""SSH fan-out: run one command or script on many hosts at once, under a concurrency
limit, and get one result per host - output or a typed error with a remedy.

Why this shape: the installer's questions ("probe every GPU node", "apply this fix on
node-3") are per host, and one unreachable host must never stop the others. Every failure
becomes a `HostError(kind, message, remedy)` an operator can act on; nothing raises out of
`run_on_hosts` for a host-level problem.

Secrets (key passphrase, sudo password) are parameters held in memory only: never in
SSHOptions, argv, environment of remote commands, or logs. The sudo password reaches
`sudo -S` on stdin, and the command sudo runs starts with stdin redirected from /dev/null,
so nothing it runs can read (or echo) the password.

Connecting (asyncssh) lives in `remote.sshconn`, imported by the first `run_on_hosts`: this
module is what a process needs to describe hosts and commands, and importing it costs no
asyncssh.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Callable, Sequence

from remote.sshkeep import Connections
from remote.sshtypes import (
    Command,
    ConfirmHostKey,
    ErrorKind,
    HostError,
    HostResult,
    ResultCallback,
    Script,
    SSHOptions,
    build_command,
)
from remote.targets import HostTarget, validate_user

# The types a caller describes a run with live in remote.sshtypes (shared with sshconn);
# they are imported from here by the rest of the code.
__all__ = [
    "Command",
    "ConfirmHostKey",
    "Connections",
    "ErrorKind",
    "HostError",
    "HostResult",
    "ResultCallback",
    "SSHOptions",
    "Script",
    "build_command",
    "run_on_hosts",
]

log = logging.getLogger(__name__)

async def run_on_hosts(
    targets: Sequence[HostTarget],
    command_or_script: Command | Callable[[HostTarget], Command],
    options: SSHOptions,
    *,
    limit: int = 50,
    sudo: bool = False,
    sudo_password: str | None = None,
    passphrase: str | None = None,
    on_result: ResultCallback | None = None,
    confirm_host_key: ConfirmHostKey | None = None,
    input: bytes | None = None,
    connections: Connections | None = None,
) -> dict[str, HostResult]:
    """Run a command (str, sent as is) or a Script on every target, at most `limit` at a
    time. Returns {target.name: HostResult}; `on_result` is called as each host finishes
    (it may be a coroutine function). `command_or_script` may be a function of the target
    for per-host scripts.

    `sudo=True` runs it as root: password-less sudo is tried first (`sudo -n true`), and
    `sudo_password`, if given, is used only when needed. `confirm_host_key(host,
    fingerprint) -> bool` (sync or async) decides unknown keys under policy accept-new.

    With `connections` (a run's Connections), each host's connection is kept open for the
    run's later calls and reused by them (remote.sshkeep)."""
    if options.user is not None:
        validate_user(options.user)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError("target names must be unique (results are keyed by name)")
    if passphrase is None and options.passphrase_env:
        passphrase = os.environ.get(options.passphrase_env)
    from remote import sshconn  # asyncssh: imported when a run first reaches a host

    if connections is None:
        run = sshconn.start(options, passphrase, confirm_host_key)
    else:
        run = connections.run((options, passphrase, confirm_host_key),
                              lambda: sshconn.start(options, passphrase, confirm_host_key))
    if isinstance(run, HostError):
        out = {t.name: HostResult(t.name, t.address, error=run) for t in targets}
        for r in out.values():
            await _callback(on_result, r)
        return out
    sem = asyncio.Semaphore(max(1, limit))

    async def one(t: HostTarget) -> HostResult:
        async with sem:
            cmd = command_or_script(t) if callable(command_or_script) else command_or_script
            r = await sshconn.run_one(run, t, cmd, sudo, sudo_password, input, connections)
        await _callback(on_result, r)
        return r

    try:
        results = await asyncio.gather(*(one(t) for t in targets))
    finally:
        if connections is None:  # kept connections (and their jump host) outlive the call
            run.close()
    return {r.name: r for r in results}


async def _callback(cb: ResultCallback | None, r: HostResult) -> None:
    if cb is None:
        return
    try:
        out = cb(r)
        if inspect.isawaitable(out):
            await out
    except Exception:
        log.exception("on_result callback failed for %s", r.name)
