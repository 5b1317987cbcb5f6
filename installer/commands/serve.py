"""Who may reach the wizard when it is served to a browser (`gpu-kata-installer serve`).

The served wizard can change hosts and the cluster with the operator's SSH keys and
kubeconfig, so reaching its page is as good as holding them. It listens on loopback unless
the operator says otherwise (--allow-remote), and the server behind it (screens/serve.py)
asks these functions about every request: a page on another site must not drive the
session's websocket (browsers send any page's websocket to any address, naming the page in
`Origin`), nor may a name that an attacker's DNS points at 127.0.0.1 (the `Host` it sends),
nor another account on this machine, which reaches loopback too: each `serve` makes a token,
prints the address that carries it, and answers only a browser that brought it (as Jupyter
does). Pure, so the rules are tested without a server.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from installer.errors import Problem, UserError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """An address only this machine reaches: 127.0.0.0/8, ::1, or the name localhost."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # another name: it may resolve anywhere
        return False


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse to listen where other machines reach the wizard unless --allow-remote says so
    (UserError, exit 2)."""
    if not host:
        raise UserError("nowhere to listen", [Problem(
            "--host", "is empty", "give an address, e.g. --host 127.0.0.1")])
    if is_loopback(host) or allow_remote:
        return
    raise UserError("the wizard would be reachable from other machines", [Problem(
        "--host", f"{host} is not a loopback address, and whoever reaches the wizard can "
        "change your hosts and cluster",
        "keep the default (--host 127.0.0.1) and reach it through an SSH tunnel "
        "(ssh -L 8000:127.0.0.1:8000 this-machine), or add --allow-remote on a network "
        "you trust")])


def _hostname(authority: str) -> str:
    """The host of a `Host` header or an origin's authority: `[::1]:8000` -> `::1`."""
    if authority.startswith("["):
        return authority[1:].partition("]")[0]
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


def host_allowed(host_header: str, bound: str, allow_remote: bool) -> bool:
    """Whether a request naming `host_header` may be served. Bound to loopback, only
    loopback names: a rebinding name (evil.example resolving to 127.0.0.1) is refused."""
    if not host_header:
        return False
    if allow_remote and not is_loopback(bound):
        return True
    return is_loopback(_hostname(host_header))


def origin_allowed(origin: str | None, host_header: str) -> bool:
    """Whether the page opening the session's websocket is the server's own page: its
    `Origin` is this very `Host` (any other site's page is refused)."""
    return origin is not None and origin.lower() in (f"http://{host_header}".lower(),
                                                     f"https://{host_header}".lower())


def new_token() -> str:
    """A session token no one else can guess (256 bits), made anew by each `serve`."""
    return secrets.token_urlsafe(32)


def token_matches(given: str | None, token: str) -> bool:
    """Whether a request brought the token (in the address or its cookie), compared in
    constant time so its timing tells nothing about the token."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def cookie_name(port: int) -> str:
    """Cookies are kept per host, not per port: two `serve`s on one machine keep apart."""
    return f"gki-serve-{port}"
