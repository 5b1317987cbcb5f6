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
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from remote.targets import HostTarget, validate_user

if TYPE_CHECKING:
    from remote.hostkeys import Policy

log = logging.getLogger(__name__)

ErrorKind = Literal["invalid-target", "unreachable", "timeout", "host-key-unknown",
                    "host-key-changed", "auth", "identity", "sudo", "jump-host", "error"]


@dataclass(frozen=True)
class SSHOptions:
    """How to connect. None means "from ~/.ssh/config, else the SSH default".

    `passphrase_env` names an environment variable holding the identity's passphrase (the
    value is read at connect time and not kept); a prompted passphrase is passed to
    `run_on_hosts(passphrase=...)` instead. `config_file=""` disables ssh_config."""

    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    passphrase_env: str | None = None
    use_agent: bool = True
    jump_host: str | None = None
    known_hosts: str | None = None
    host_key_policy: Policy = "strict"
    config_file: str | None = None
    connect_timeout: float = 15.0
    command_timeout: float = 300.0
    keepalive: float = 15.0
    keepalive_count: int = 3


@dataclass(frozen=True)
class HostError:
    kind: ErrorKind
    message: str
    remedy: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class HostResult:
    name: str
    address: str
    exit_status: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    error: HostError | None = None
    duration: float = 0.0
    host_key_fingerprint: str | None = None
    accepted_new_key: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Script:
    """A POSIX sh script plus arguments. It travels as `sh -c <body> gki <args...>` with
    every piece shell-quoted, so arguments (paths, names) are data, never code."""

    body: str
    args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        return ["sh", "-c", self.body, "gki", *self.args]


Command = str | Script
ResultCallback = Callable[[HostResult], object]
ConfirmHostKey = Callable[[str, str], bool | Awaitable[bool]]

def build_command(cmd: Command, *, sudo: bool, sudo_password: bool) -> str:
    """The exec string sent over SSH (pure, so tests can assert on quoting)."""
    argv = cmd.argv() if isinstance(cmd, Script) else ["sh", "-c", cmd]
    # `exec`: the login shell that sshd starts replaces itself instead of forking once more.
    if not sudo:
        return cmd if isinstance(cmd, str) else "exec " + shlex.join(argv)
    if sudo_password:
        # -S: password from stdin; -k: ignore cached credentials so sudo always consumes
        # the line we send; -p '': no prompt text. The command then detaches stdin.
        argv[2] = "exec </dev/null\n" + argv[2]
        return "exec " + shlex.join(["sudo", "-S", "-k", "-p", "", "--", *argv])
    return "exec " + shlex.join(["sudo", "-n", "--", *argv])


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
) -> dict[str, HostResult]:
    """Run a command (str, sent as is) or a Script on every target, at most `limit` at a
    time. Returns {target.name: HostResult}; `on_result` is called as each host finishes
    (it may be a coroutine function). `command_or_script` may be a function of the target
    for per-host scripts.

    `sudo=True` runs it as root: password-less sudo is tried first (`sudo -n true`), and
    `sudo_password`, if given, is used only when needed. `confirm_host_key(host,
    fingerprint) -> bool` (sync or async) decides unknown keys under policy accept-new."""
    if options.user is not None:
        validate_user(options.user)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError("target names must be unique (results are keyed by name)")
    if passphrase is None and options.passphrase_env:
        passphrase = os.environ.get(options.passphrase_env)
    from remote import sshconn  # asyncssh: imported when a run first reaches a host

    run = sshconn.start(options, passphrase, confirm_host_key)
    if isinstance(run, HostError):
        out = {t.name: HostResult(t.name, t.address, error=run) for t in targets}
        for r in out.values():
            await _callback(on_result, r)
        return out
    sem = asyncio.Semaphore(max(1, limit))

    async def one(t: HostTarget) -> HostResult:
        async with sem:
            cmd = command_or_script(t) if callable(command_or_script) else command_or_script
            r = await sshconn.run_one(run, t, cmd, sudo, sudo_password, input)
        await _callback(on_result, r)
        return r

    try:
        results = await asyncio.gather(*(one(t) for t in targets))
    finally:
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
