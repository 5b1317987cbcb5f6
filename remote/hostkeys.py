"""Host key policy: known_hosts lookups, accept-new recording, and the verdicts that turn
into clear errors.

Why our own layer over asyncssh's known_hosts support: asyncssh reports any untrusted
key as "not trusted", but an operator must be told the difference between a host never
seen (verify its fingerprint, maybe accept it) and a host whose key CHANGED (possible
attack or reinstall: always refused, with the exact `ssh-keygen -R` to run).
asyncssh still does the matching (hashed names, `[host]:port`, @revoked, @cert-authority).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh

Policy = Literal["strict", "accept-new"]


def known_hosts_name(host: str, port: int | None) -> str:
    """How OpenSSH writes a host in known_hosts: `host`, or `[host]:port` off port 22."""
    return host if port in (None, 22) else f"[{host}]:{port}"


@dataclass
class KeyVerdict:
    """What happened to one host's key during a connection attempt."""

    host: str
    port: int | None
    fingerprint: str = ""
    kind: Literal["trusted", "unknown", "changed", "accepted", "pending"] = "trusted"
    known_fingerprints: tuple[str, ...] = ()
    key: asyncssh.SSHKey | None = None
    lost: Exception | None = None  # why the connection dropped, if it did


class KnownHosts:
    """One known_hosts file shared by all connections of a run. Appends are serialized
    and written in one `write()` each, so concurrent accept-new never interleaves lines."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path).expanduser() if path else Path("~/.ssh/known_hosts").expanduser()
        self._lock = threading.Lock()

    def load(self) -> asyncssh.SSHKnownHosts:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        return asyncssh.import_known_hosts(data.decode("utf-8", "replace"))

    def known_keys(self, host: str, addr: str, port: int | None) -> list[asyncssh.SSHKey]:
        p = None if port in (None, 22) else port
        trusted = self.load().match(host, addr, p)[0]
        return list(trusted)

    def record(self, host: str, port: int | None, key: asyncssh.SSHKey) -> None:
        line = (f"{known_hosts_name(host, port)} "
                f"{key.export_public_key('openssh').decode().split()[0]} "
                f"{key.export_public_key('openssh').decode().split()[1]}\n")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

    def remove_command(self, host: str, port: int | None) -> str:
        return f"ssh-keygen -R '{known_hosts_name(host, port)}' -f {self.path}"


def decide(store: KnownHosts, policy: Policy, verdict: KeyVerdict, host: str, addr: str,
           port: int | None, key: asyncssh.SSHKey, *, ask: bool) -> bool:
    """Called by asyncssh for a key that the known_hosts file does not trust.
    Records the verdict; accepts (and records) only an unknown key under accept-new.
    `ask=True` defers the accept decision to a confirm callback (verdict `pending`)."""
    verdict.fingerprint = key.get_fingerprint("sha256")
    verdict.key = key
    known = store.known_keys(host, addr, port)
    if key in known:  # recorded since this run's copy of the file was read
        verdict.kind = "trusted"
        return True
    if known:
        verdict.kind = "changed"
        verdict.known_fingerprints = tuple(k.get_fingerprint("sha256") for k in known)
        return False
    if policy != "accept-new":
        verdict.kind = "unknown"
        return False
    if ask:
        verdict.kind = "pending"
        return False
    store.record(host, port, key)
    verdict.kind = "accepted"
    return True
