"""What an SSH run is described with: options, commands, results and errors.

A module of its own so that both halves of the SSH code share it without importing each
other: `remote.ssh` (the fan-out, importable without asyncssh) and `remote.sshconn` (one
connection, with asyncssh).
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from remote.hostkeys import Policy

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
