"""Run a command in a pod's container through the API server (pods/exec), with stdin, and get
its stdout, stderr and exit status: how pod mode reaches a host without SSH.

The wire protocol is the API server's own (k8s.io/apimachinery/pkg/util/httpstream/wsstream,
remotecommand): a WebSocket whose binary messages start with the channel byte - 0 stdin,
1 stdout, 2 stderr, 3 the error channel (a Status, JSON, at the end: Success, or Failure
with an ExitCode cause), 4 resize. `v5.channel.k8s.io` adds channel 255, "close": the client
sends [255, 0] to end stdin (Kubernetes 1.30+); `v4.channel.k8s.io` cannot end stdin, so
callers send input that ends itself (installer.hosts.podaccess wraps its script so the shell
exits after it).

Why our own channel layer and not the kubernetes package's `stream` helper: that helper
signs the upgrade with its Configuration, which knows neither the impersonation headers
nor the token file read again while a run lasts (installer.cluster.kubeauth adds both for
every other request); an exec that ran as a different user than the reads, or with a
rotated-out token, would be a second, weaker credential path. It also loads the typed
client (BENCHMARKS.md section 3). Here the upgrade carries the same `Endpoint.auth()`
headers (an exec plugin's renewed token included) and the same TLS trust as the pool;
websocket-client (the kubernetes package's own dependency) does only the framing.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from installer.cluster.apierrors import ApiError, ApiUnreachable
from installer.cluster.kube import Kube
from installer.errors import Problem, UserError

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)  # the first the server also speaks is chosen
_CHUNK = 32 * 1024  # stdin per message, as kubectl's writer sends it


@dataclass(frozen=True)
class ExecResult:
    """What the command did. `exit_status` None: it did not finish with an exit code (the
    container could not run it, the stream broke, the time ran out) - `failure` says why."""

    exit_status: int | None
    stdout: bytes = b""
    stderr: bytes = b""
    failure: str = ""
    protocol: str = ""
    timed_out: bool = False


def exec_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/exec"


def exec_query(command: Sequence[str], container: str, stdin: bool) -> str:
    """The query kubectl sends: one `command` per argv element, no tty."""
    pairs = [("command", c) for c in command]
    pairs += [("container", container)] if container else []
    pairs += [("stdin", "true")] if stdin else []
    pairs += [("stdout", "true"), ("stderr", "true")]
    return urlencode(pairs)


def exit_status_of(status: dict[str, Any]) -> tuple[int | None, str]:
    """(exit code, failure) from the error channel's Status: Success is 0; a Failure with
    reason NonZeroExitCode carries the code as an ExitCode cause; any other Failure (the
    command was not found, the container is gone) has no code and its message."""
    if status.get("status") == "Success":
        return 0, ""
    causes = (status.get("details") or {}).get("causes") or []
    if status.get("reason") == "NonZeroExitCode":
        for cause in causes:
            if cause.get("reason") == "ExitCode":
                try:
                    return int(cause.get("message", "")), ""
                except ValueError:
                    break
    return None, str(status.get("message") or "the command failed (no message)")


def _tls_context(pool: urllib3.PoolManager) -> ssl.SSLContext:
    """The trust the pool's requests use (kubeauth built it from the kubeconfig): its CA,
    client certificate and whether to verify at all."""
    kw = pool.connection_pool_kw
    verify = kw.get("cert_reqs") != ssl.CERT_NONE
    tls = ssl.create_default_context() if verify else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        if kw.get("ca_certs") or kw.get("ca_cert_data"):
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            tls.load_verify_locations(cafile=kw.get("ca_certs"), cadata=kw.get("ca_cert_data"))
        tls.check_hostname = kw.get("assert_hostname") is not False
    else:
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    if kw.get("cert_file"):
        tls.load_cert_chain(kw["cert_file"], kw.get("key_file"))
    return tls


def _proxy_options(pool: urllib3.PoolManager, server: str) -> dict[str, Any]:
    """websocket-client's proxy options for the proxy the pool goes through (kubeauth's pool
    already applied proxy-url, HTTPS_PROXY and NO_PROXY)."""
    if type(pool).__name__ == "SOCKSProxyManager":
        raise UserError("pod mode cannot reach the API server through a SOCKS proxy",
                        [Problem("cluster.context", f"the context reaches {server} through a "
                                 "SOCKS proxy (proxy-url)", "use an HTTP proxy for this "
                                 "context, or hostAccess: ssh")])
    proxy = getattr(pool, "proxy", None)
    if not isinstance(pool, urllib3.ProxyManager) or proxy is None:
        return {}
    out: dict[str, Any] = {"http_proxy_host": proxy.host, "http_proxy_port": proxy.port,
                           "proxy_type": "http"}
    if proxy.auth:
        user, _, password = proxy.auth.partition(":")
        out["http_proxy_auth"] = (user, password)
    return out


class PodExec:
    """One exec session, synchronous (run in a worker thread). `abort()` from another thread
    ends it at once: the engine's interruption must not wait for a hung command."""

    def __init__(self, kube: Kube, namespace: str, pod: str, command: Sequence[str],
                 container: str = "") -> None:
        self.kube, self.namespace, self.pod = kube, namespace, pod
        self.command, self.container = list(command), container
        self._ws: Any = None
        self._aborted = threading.Event()

    def _connect(self, timeout: float) -> Any:
        import websocket  # the kubernetes package's dependency; only pod mode needs it

        endpoint = self.kube.endpoint
        path = exec_path(self.namespace, self.pod)
        url = endpoint.server.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        url += path + "?" + exec_query(self.command, self.container, stdin=True)
        headers = [f"{k}: {v}" for k, v in self.kube.auth_headers().items()]
        ws = websocket.WebSocket(sslopt={"context": _tls_context(endpoint.pool), **(
            {"server_hostname": sn} if (sn := endpoint.pool.connection_pool_kw.get(
                "server_hostname")) else {})}, skip_utf8_validation=True)
        try:
            ws.connect(url, header=headers, subprotocols=list(PROTOCOLS), timeout=timeout,
                       **_proxy_options(endpoint.pool, endpoint.server))
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code == 401:
                endpoint.refused()
            body = exc.resp_body.decode("utf-8", "replace") if isinstance(
                exc.resp_body, bytes) else str(exc.resp_body or "")
            # The upgrade is a GET, authorized as `create pods/exec`: said as that verb.
            raise ApiError(exc.status_code, _reason(exc.status_code), body, "POST", path,
                           context=self.kube.context, server=endpoint.server) from None
        except (OSError, websocket.WebSocketException) as exc:
            raise ApiUnreachable(endpoint.server, f"exec in pod {self.namespace}/{self.pod}: "
                                 f"{exc or type(exc).__name__}",
                                 bad_certificate="CERTIFICATE_VERIFY_FAILED" in str(exc)
                                 ) from None
        if ws.getsubprotocol() not in PROTOCOLS:
            ws.close()
            raise ApiUnreachable(endpoint.server, f"the API server answered the exec with "
                                 f"subprotocol {ws.getsubprotocol()!r}, not one of "
                                 f"{', '.join(PROTOCOLS)} (Kubernetes 1.29 or later speaks v5)")
        return ws

    def run(self, stdin: bytes, timeout: float) -> ExecResult:
        import websocket

        deadline = time.monotonic() + timeout
        ws = self._ws = self._connect(min(timeout, 15.0))
        protocol = ws.getsubprotocol()
        out: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray(),
                                     ERROR: bytearray()}
        try:
            for i in range(0, len(stdin), _CHUNK):
                ws.send_binary(bytes([STDIN]) + stdin[i:i + _CHUNK])
            if protocol == V5:
                ws.send_binary(bytes([CLOSE, STDIN]))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._result(out, protocol, timed_out=True)
                ws.settimeout(left)
                try:
                    opcode, data = ws.recv_data(control_frame=False)
                except websocket.WebSocketConnectionClosedException:
                    break
                except (TimeoutError, websocket.WebSocketTimeoutException):
                    return self._result(out, protocol, timed_out=True)
                except (OSError, websocket.WebSocketException) as exc:
                    if self._aborted.is_set():
                        return self._result(out, protocol, failure="interrupted")
                    return self._result(out, protocol, failure=f"the stream broke: {exc}")
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if data and data[0] in out:
                    out[data[0]] += data[1:]
        finally:
            ws.close(timeout=1)
        return self._result(out, protocol)

    def _result(self, out: dict[int, bytearray], protocol: str, *, timed_out: bool = False,
                failure: str = "") -> ExecResult:
        stdout, stderr = bytes(out[STDOUT]), bytes(out[STDERR])
        if timed_out or failure:
            return ExecResult(None, stdout, stderr, failure or "the command did not finish "
                              "in time", protocol, timed_out)
        if not out[ERROR]:
            return ExecResult(None, stdout, stderr, "the stream ended without the command's "
                              "exit status", protocol)
        try:
            status = json.loads(bytes(out[ERROR]))
        except ValueError:  # v1-v3 servers sent plain text; v4+ a Status
            return ExecResult(None, stdout, stderr, bytes(out[ERROR]).decode(
                "utf-8", "replace").strip(), protocol)
        code, failure = exit_status_of(status if isinstance(status, dict) else {})
        return ExecResult(code, stdout, stderr, failure, protocol)

    def abort(self) -> None:
        self._aborted.set()
        if self._ws is not None:
            self._ws.abort()


def _reason(status: int) -> str:
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(
        status, "")


async def exec_in_pod(kube: Kube, namespace: str, pod: str, command: Sequence[str],
                      stdin: bytes = b"", *, container: str = "", timeout: float = 300.0
                      ) -> ExecResult:
    """Run `command` in the pod with `stdin`, in a worker thread; cancelling the caller
    (an interruption) aborts the stream, so the thread ends too."""
    session = PodExec(kube, namespace, pod, command, container)
    task = asyncio.ensure_future(asyncio.to_thread(session.run, stdin, timeout))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        session.abort()
        await asyncio.wait([task], timeout=5)
        raise
