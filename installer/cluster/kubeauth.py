"""How to reach and authenticate to a kubeconfig context's API server: TLS, credentials, proxy.

Every context goes through the kubernetes package's own loader (`KubeConfigLoader`), so the
installer reads a kubeconfig the way the client library does - exec credential plugins and
their renewal, auth providers, basic auth, inline or file certificates, insecure-skip-tls-
verify, tls-server-name, proxy-url, HTTPS_PROXY/NO_PROXY - instead of a second reader of
its own that would drift from it. It is fed the document installer.cluster.kubeconfig has already
read, merged as kubectl merges KUBECONFIG's files, type-checked, and whose file references it
has made absolute (so the loader's idea of a base path and its KUBE_CONFIG_DEFAULT_LOCATION,
read from the environment when it is imported, play no part).

What that loader lacks and client-go (kubectl) has is added here, as client-go does it:
impersonation (`as`, `as-groups`, `as-uid`, `as-user-extra`: the client ignores them, and the
installer would act with the caller's own, maybe larger, rights) and a token file read again
while a run lasts (a projected ServiceAccount token is rotated under a long run; the client
reads it once). The result is one `Endpoint`; installer.cluster.kube sends every request through it.

Why the import is here, in a function: `kubernetes` is expensive to import (BENCHMARKS.md
section 3); `--help` and the wizard's first frame (whose context list comes from
installer.cluster.kubeconfig) never reach this module's `endpoint`, so they never pay it.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3

from installer.cluster.kubeconfig import WHERE, Kubeconfig
from installer.errors import Problem, UserError

if TYPE_CHECKING:
    from kubernetes.client import Configuration

FIX_ENTRIES = "fix the context's cluster, user or credentials entries"


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Endpoint:
    """A context's API server as requests see it."""

    server: str  # base URL, no trailing slash
    pool: urllib3.PoolManager  # its TLS (and proxy) settings
    # Credential and impersonation headers, asked per request (tokens expire, token files
    # are rewritten); a header may repeat (Impersonate-Group), hence not a plain dict.
    auth: Callable[[], Mapping[str, str]]
    # The server answered 401: what was read from a token file is read again next time.
    refused: Callable[[], None] = _nothing


def endpoint(config: Kubeconfig, context: str) -> Endpoint:
    """The endpoint of `context` in the kubeconfig (installer.cluster.kubeconfig has checked its
    types and made its file references absolute). Raises UserError naming the file, the
    context and the fix."""
    path = config.source
    cluster, user = _entries(path, config.data, context)
    _check_references(path, context, cluster, user)
    impersonation = _impersonation(path, context, user)
    conf = _configuration(path, context, config.data)
    _check_tls(path, context, conf)
    pool = _pool(conf)
    token_file = TokenFile(str(user["tokenFile"])) if user.get("tokenFile") else None

    def auth() -> urllib3.HTTPHeaderDict:
        headers = urllib3.HTTPHeaderDict()
        # The loader's bearer token or basic auth; an exec plugin's token is renewed here
        # when it expires (the client's refresh hook runs inside auth_settings).
        for setting in conf.auth_settings().values():
            if setting["in"] == "header" and setting["value"]:
                headers[setting["key"]] = setting["value"]
        if token_file is not None and (token := token_file.token()):
            # client-go: the last value read from tokenFile takes precedence over `token`.
            headers["authorization"] = f"Bearer {token}"
        for name, value in impersonation:
            headers.add(name, value)
        return headers

    return Endpoint(conf.host.rstrip("/"), pool, auth,
                    token_file.reset if token_file is not None else _nothing)


def _named(data: dict[str, Any], kind: str, name: Any) -> dict[str, Any] | None:
    for item in data.get(kind) or []:
        if isinstance(item, dict) and item.get("name") == name:
            found = item.get(kind[:-1])
            return found if isinstance(found, dict) else {}
    return None


def _unusable(path: str, context: str, problem: str, fix: str = FIX_ENTRIES) -> UserError:
    return UserError(f"kubeconfig {path}: cannot use context '{context}'",
                     [Problem(WHERE, problem, fix)])


def _entries(path: str, data: dict[str, Any], context: str
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The context's cluster and user, said plainly when missing (the loader would say
    "Expected key cluster in kube-config/contexts[name=...]")."""
    ctx = _named(data, "contexts", context) or {}
    cluster = _named(data, "clusters", ctx.get("cluster"))
    if cluster is None:
        raise _unusable(path, context, f"its cluster '{ctx.get('cluster')}' is not in the file")
    if not cluster.get("server"):
        raise _unusable(path, context, f"cluster '{ctx.get('cluster')}' has no server address")
    user = _named(data, "users", ctx.get("user")) if ctx.get("user") else {}
    if user is None:
        raise _unusable(path, context, f"its user '{ctx.get('user')}' is not in the file")
    return cluster, user


def _check_references(path: str, context: str, cluster: dict[str, Any],
                      user: dict[str, Any]) -> None:
    """The files the context names exist, its inline certificates are base64, and a client
    certificate comes with its key: the loader would say "File does not exist", decode
    invalid base64 leniently into garbage, or leave a half pair to fail at the handshake."""
    for entry, key in ((cluster, "certificate-authority"), (user, "client-certificate"),
                       (user, "client-key"), (user, "tokenFile")):
        data = entry.get(f"{key}-data")
        if data:
            try:
                base64.b64decode(str(data), validate=True)
            except (binascii.Error, ValueError):
                raise _unusable(path, context, f"{key}-data is not valid base64") from None
        elif entry.get(key) and not Path(str(entry[key])).is_file() and not (
                key == "tokenFile" and user.get("token")):  # client-go: `token` until it exists
            raise _unusable(path, context, f"the file {entry[key]} it names does not exist",
                            "fix the path in the kubeconfig, or write the file there")
    has_cert = bool(user.get("client-certificate-data") or user.get("client-certificate"))
    has_key = bool(user.get("client-key-data") or user.get("client-key"))
    if has_cert != has_key:
        raise _unusable(path, context, "its user has a client certificate without a key, "
                        "or a key without a certificate")


def _impersonation(path: str, context: str, user: dict[str, Any]) -> list[tuple[str, str]]:
    """The impersonation headers of the user's `as`, `as-groups`, `as-uid`, `as-user-extra`
    (types checked by installer.cluster.kubeconfig), as client-go sends them
    (k8s.io/client-go/transport/round_trippers.go, impersonatingRoundTripper): one
    Impersonate-Group per group, one Impersonate-Extra-<key> per value, the key escaped."""
    who = str(user.get("as") or "")
    groups = list(user.get("as-groups") or [])
    uid = str(user.get("as-uid") or "")
    extra: dict[str, list[str]] = dict(user.get("as-user-extra") or {})
    if not who and (groups or uid or extra):
        # k8s.io/client-go/tools/clientcmd/validation.go refuses it ("requesting uid, groups
        # or user-extra ... without impersonating a user"); so does the API server.
        raise _unusable(path, context, "its user sets as-groups, as-uid or as-user-extra "
                        "without `as` (kubectl refuses it too: they need a user to impersonate)",
                        "add `as: USER` to the user entry, or remove as-groups, as-uid and "
                        "as-user-extra")
    if not who:
        return []
    headers = [("Impersonate-User", who)]
    headers += [("Impersonate-Group", str(g)) for g in groups]
    if uid:
        headers.append(("Impersonate-Uid", uid))
    for key, values in extra.items():
        headers += [("Impersonate-Extra-" + _header_key_escape(str(key)), str(v))
                    for v in values or []]
    return headers


# RFC 7230's token characters, minus '%' (it is the escape): client-go's legalHeaderKeyBytes.
_HEADER_KEY = frozenset(b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        b"abcdefghijklmnopqrstuvwxyz")


def _header_key_escape(key: str) -> str:
    """An extra's key in a header name: bytes a header name cannot hold percent-encoded, as
    client-go's headerKeyEscape does (the API server unescapes them)."""
    return "".join(chr(b) if b in _HEADER_KEY else f"%{b:02X}" for b in key.encode())


def _configuration(path: str, context: str, data: dict[str, Any]) -> Configuration:
    """The kubernetes client's Configuration for `context`, filled by its own loader."""
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    conf = Configuration()
    try:
        KubeConfigLoader(_without_nulls(data), active_context=context).load_and_set(conf)
    except (ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        raise _unusable(path, context, str(exc).splitlines()[0] if str(exc)
                        else type(exc).__name__) from None
    return conf


def _without_nulls(value: Any) -> Any:
    """A copy with `key: null` dropped: client-go reads it as an absent key, the loader
    refuses it ("Expected key insecure-skip-tls-verify")."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _check_tls(path: str, context: str, conf: Configuration) -> None:
    """Load the CA and the client certificate now, so a broken one is said at connect (naming
    the file and the context) and not as an unreachable server on the first request."""
    if not conf.host.startswith("https:"):
        return
    try:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if conf.verify_ssl and conf.ssl_ca_cert:
            tls.load_verify_locations(conf.ssl_ca_cert)
        if conf.cert_file and conf.key_file:
            tls.load_cert_chain(conf.cert_file, conf.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise _unusable(path, context, f"its certificates or key cannot be loaded "
                        f"({getattr(exc, 'reason', None) or exc})") from None


# Connection attempts only: a request the server may have acted on is never sent twice.
_RETRIES = urllib3.Retry(total=2, connect=2, read=0, redirect=0, status=0, other=0,
                         raise_on_status=False)


def _pool(conf: Configuration) -> urllib3.PoolManager:
    """The client's own pool for the Configuration (its TLS fields, proxy-url or the
    environment's proxy and NO_PROXY, SOCKS), with the installer's retries and size."""
    from kubernetes.client.rest import RESTClientObject

    conf.retries = _RETRIES
    conf.connection_pool_maxsize = 8
    if not conf.verify_ssl:  # insecure-skip-tls-verify: true, said once by the checks
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return RESTClientObject(conf).pool_manager


class TokenFile:
    """A bearer token file read again while a run lasts, as client-go's cached file token
    source does (k8s.io/client-go/transport/token_source.go: re-read at most once a minute,
    the last good value kept when a read fails, and - round_trippers.go - read again after
    the server answers 401). Also read again as soon as the file changes (a stat per request,
    microseconds), so a token rotated mid-run is sent from the next request on."""

    PERIOD = 60.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._token = ""
        self._read_at = -math.inf
        self._stamp: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def _current_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)  # follows the symlink a projected volume swaps
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def token(self) -> str:
        with self._lock:
            now, stamp = time.monotonic(), self._current_stamp()
            if now - self._read_at < self.PERIOD and stamp == self._stamp:
                return self._token
            try:
                text = Path(self.path).read_text().strip()
            except (OSError, UnicodeDecodeError):
                text = ""
            if text:  # an empty or unreadable file keeps the last token (client-go too)
                self._token, self._read_at, self._stamp = text, now, stamp
            return self._token

    def reset(self) -> None:
        """The server refused the token: read the file again before the next request."""
        with self._lock:
            self._read_at = -math.inf
            self._stamp = None
