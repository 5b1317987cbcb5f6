"""How to reach and authenticate to a kubeconfig context's API server: TLS, credentials, proxy.

Why not always the kubernetes client's loader: importing it costs 0.2-0.35 s of CPU on 2 cores
(it pulls in OAuth, Google auth, pydantic), and every wizard start and headless run paid that
before its first request - a third of the Nodes screen's first render at 1,000 nodes
(bench/scale.py). The usual kubeconfigs - a client certificate or a bearer token, the
cluster's CA, no proxy - are read here with the standard library and urllib3 (which the
client uses too). Everything else - exec credential plugins, auth providers, basic auth,
impersonation, a proxy - goes to the kubernetes client's loader, which knows them all; both
ways give one `Endpoint`, and `installer.cluster.kube` sends every request through it.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3

from installer.cluster.kubeconfig import WHERE, Kubeconfig
from installer.errors import Problem, UserError

FIX_ENTRIES = "fix the context's cluster, user or credentials entries"

# What the fast path understands; any other key sends the context to the client's loader.
_CLUSTER_KEYS = {"server", "certificate-authority", "certificate-authority-data",
                 "insecure-skip-tls-verify", "tls-server-name", "extensions",
                 "disable-compression"}
_USER_KEYS = {"client-certificate", "client-certificate-data", "client-key", "client-key-data",
              "token", "tokenFile", "extensions"}


@dataclass(frozen=True)
class Endpoint:
    """A context's API server as requests see it."""

    server: str  # base URL, no trailing slash
    pool: urllib3.PoolManager  # its TLS (and proxy) settings
    auth: Callable[[], dict[str, str]]  # credential headers, asked per request (tokens expire)


def endpoint(config: Kubeconfig, context: str) -> Endpoint:
    """The endpoint of `context` in the kubeconfig (installer.cluster.kubeconfig has checked its
    types and made its file references absolute). Raises UserError naming the file, the
    context and the fix."""
    path = config.source
    cluster, user = _entries(path, config.data, context)
    if _plain(cluster, user):
        return _plain_endpoint(path, context, cluster, user)
    return _client_endpoint(path, context)


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


def _plain(cluster: dict[str, Any], user: dict[str, Any]) -> bool:
    """True when the fast path reads everything this context says."""
    if set(cluster) - _CLUSTER_KEYS or set(user) - _USER_KEYS:
        return False
    return not _proxied(str(cluster["server"]))


def _proxied(server: str) -> bool:
    """Whether HTTPS_PROXY, ALL_PROXY... (read as the client reads them) apply to `server`.
    Why the early return: urllib.request costs 30 ms to import, and most runs set none."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return False
    import urllib.request

    parts = urlsplit(server)
    proxies = urllib.request.getproxies()
    if parts.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def _file(path: str, context: str, name: str) -> Path:
    """A file the kubeconfig names (installer.cluster.kubeconfig resolved it against its folder)."""
    found = Path(name)
    if not found.is_file():
        raise _unusable(path, context, f"the file {found} it names does not exist",
                        "fix the path in the kubeconfig, or write the file there")
    return found


def _decoded(path: str, context: str, key: str, value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise _unusable(path, context, f"{key} is not valid base64") from None


def _pem(path: str, context: str, entry: dict[str, Any], key: str) -> bytes | None:
    """`key-data` (inline, base64) or `key` (a file) of an entry, as bytes."""
    if entry.get(f"{key}-data"):
        return _decoded(path, context, f"{key}-data", entry[f"{key}-data"])
    if entry.get(key):
        return _file(path, context, str(entry[key])).read_bytes()
    return None


def _tls(path: str, context: str, cluster: dict[str, Any], user: dict[str, Any]
         ) -> ssl.SSLContext:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if _insecure(cluster):
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
        else:
            ca = _pem(path, context, cluster, "certificate-authority")
            if ca is None:
                tls.load_default_certs()
            else:
                tls.load_verify_locations(cadata=ca.decode("ascii", "replace"))
        cert = _pem(path, context, user, "client-certificate")
        key = _pem(path, context, user, "client-key")
        if (cert is None) != (key is None):
            raise _unusable(path, context, "its user has a client certificate without a key, "
                            "or a key without a certificate")
        if cert is not None and key is not None:
            # load_cert_chain reads files only: a private folder, gone once it is read.
            with tempfile.TemporaryDirectory(prefix="gki-tls-") as tmp:
                Path(tmp, "cert.pem").write_bytes(cert)
                Path(tmp, "key.pem").write_bytes(key)
                tls.load_cert_chain(Path(tmp, "cert.pem"), Path(tmp, "key.pem"))
    except ssl.SSLError as exc:
        raise _unusable(path, context, f"its certificates or key cannot be loaded "
                        f"({exc.reason or exc})") from None
    return tls


def _insecure(cluster: dict[str, Any]) -> bool:
    """insecure-skip-tls-verify, a YAML boolean (installer.cluster.kubeconfig refuses anything else:
    read by truthiness, the string "false" would turn verification off)."""
    return cluster.get("insecure-skip-tls-verify") is True


# Connection attempts only: a request the server may have acted on is never sent twice.
_RETRIES = urllib3.Retry(total=2, connect=2, read=0, redirect=0, status=0, other=0,
                         raise_on_status=False)


def _plain_endpoint(path: str, context: str, cluster: dict[str, Any], user: dict[str, Any]
                    ) -> Endpoint:
    server = str(cluster["server"]).rstrip("/")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _file(path, context, str(user["tokenFile"])).read_text().strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    options: dict[str, Any] = {"maxsize": 8, "retries": _RETRIES}
    if server.startswith("https:"):
        options["ssl_context"] = _tls(path, context, cluster, user)
        if _insecure(cluster):
            options["cert_reqs"] = "CERT_NONE"
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if cluster.get("tls-server-name"):
            options["server_hostname"] = str(cluster["tls-server-name"])
    return Endpoint(server, urllib3.PoolManager(**options), lambda: headers)


def _client_endpoint(path: str, context: str) -> Endpoint:
    """The kubernetes client's loader, for what the fast path does not read (it runs exec
    plugins, refreshes their tokens, and knows auth providers and proxies)."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    try:
        api = config.new_client_from_config(config_file=path, context=context)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        raise _unusable(path, context, str(exc).splitlines()[0] if str(exc)
                        else type(exc).__name__) from None
    conf = api.configuration

    def auth() -> dict[str, str]:  # a token from an exec plugin is renewed when it expires
        return {s["key"]: s["value"] for s in conf.auth_settings().values()
                if s["in"] == "header" and s["value"]}

    return Endpoint(conf.host.rstrip("/"), api.rest_client.pool_manager, auth)
