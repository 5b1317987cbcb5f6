"""Who to connect to, and the validation every user-supplied string gets before it can
reach SSH or a remote shell.

Why validate rather than only quote: node names, addresses and users travel to places
where quoting does not apply (the SSH protocol's user field, ssh_config host patterns,
file names, log lines). Anything that passes these rules is also safe inside a shell
word; paths and script arguments are in addition always `shlex.quote`d when they reach a
remote command (see remote.ssh.Script).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# All matched with fullmatch (a `$` would let a final newline through) and ASCII.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?", re.ASCII)
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.ASCII)
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?", re.ASCII)
_SCOPE_ID = re.compile(r"[A-Za-z0-9_.-]{1,15}", re.ASCII)  # an interface name (IFNAMSIZ) or index


class InvalidTarget(ValueError):
    """A name, address, user, port or path that the installer refuses to use."""


def validate_name(name: str) -> str:
    """Node names: Kubernetes node names are DNS subdomains, so anything else (spaces,
    `;`, `$`, quotes, newlines) is refused rather than carried around."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidTarget(f"invalid node name {name!r}: use letters, digits, '.', '-', '_'")
    return name


def validate_address(addr: str) -> str:
    """An IPv4/IPv6 literal or a DNS name (or ssh_config alias made of the same
    characters). Never starts with '-', never contains shell or ssh_config metacharacters."""
    if not isinstance(addr, str) or not addr or len(addr) > 253:
        raise InvalidTarget(f"invalid address {addr!r}")
    if ip_literal(addr.strip("[]")) is not None:
        return addr.strip("[]")
    if not _HOSTNAME.fullmatch(addr):
        raise InvalidTarget(f"invalid address {addr!r}: not an IP address or host name")
    return addr


def ip_literal(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address `addr` is, or None when it is no IP literal. Why not ipaddress alone: it
    takes any characters but '%' in an IPv6 scope id (`fe80::1%$(reboot)`, a newline), and
    the address travels to ssh, ssh_config and log lines; a scope id must be an interface
    name or index, in ASCII, or InvalidTarget is raised."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return None
    scope = getattr(ip, "scope_id", None)
    if scope is not None and not _SCOPE_ID.fullmatch(scope):
        raise InvalidTarget(f"invalid address {addr!r}: the IPv6 scope id {scope!r} is not an "
                            "interface name (letters, digits, '.', '-', '_')")
    return ip


def validate_user(user: str) -> str:
    """POSIX-portable user names (what useradd accepts by default)."""
    if not isinstance(user, str) or not _USER.fullmatch(user):
        raise InvalidTarget(f"invalid user name {user!r}")
    return user


def validate_port(port: int) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InvalidTarget(f"invalid port {port!r}")
    return port


def validate_host_root(path: str) -> str:
    """A host root for the probe and fixes: absolute, no NUL or newline. Other characters
    (spaces, `;`, `$(...)`) are allowed and always passed as a quoted argument."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path or "\n" in path:
        raise InvalidTarget(f"invalid host root {path!r}: must be an absolute path")
    return path


@dataclass(frozen=True)
class HostTarget:
    """One host to reach. `port`/`user` None means: from SSHOptions, then ~/.ssh/config,
    then the SSH defaults."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None

    def validate(self) -> HostTarget:
        validate_name(self.name)
        validate_address(self.address)
        if self.port is not None:
            validate_port(self.port)
        if self.user is not None:
            validate_user(self.user)
        return self


@dataclass(frozen=True)
class JumpHost:
    address: str
    port: int | None = None
    user: str | None = None

    @classmethod
    def parse(cls, spec: str) -> JumpHost:
        """`[user@]host[:port]` (IPv6 as `[addr]:port`)."""
        user = None
        if "@" in spec:
            user, spec = spec.rsplit("@", 1)
            validate_user(user)
        port = None
        if spec.startswith("["):
            host, _, rest = spec[1:].partition("]")
            if rest.startswith(":"):
                port = _port(rest[1:])
        elif spec.count(":") == 1:
            host, p = spec.split(":")
            port = _port(p)
        else:
            host = spec
        return cls(validate_address(host), port, user)


def _port(s: str) -> int:
    if not (s.isascii() and s.isdigit()):
        raise InvalidTarget(f"invalid port {s!r}")
    return validate_port(int(s))
