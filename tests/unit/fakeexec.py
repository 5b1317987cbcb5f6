"""A fake API server's pods/exec on 127.0.0.1: the WebSocket upgrade and the channel protocol
(v4/v5: first byte the channel, the exit status as a Status on channel 3) as the real API
server frames them, with a Python function standing in for the command. The unit tier's
stand-in; the lab's real API server (KWOK's exec) proves the same path end to end."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# What the command does: (argv, stdin) -> (stdout, stderr, exit code or a failure message).
Behaviour = Callable[[list[str], bytes], tuple[bytes, bytes, int | str]]


def status(code: int | str) -> dict:
    """The Status the API server sends on channel 3 (remotecommand's v4 error writer)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    if isinstance(code, str):
        return {"metadata": {}, "status": "Failure", "message": code,
                "reason": "InternalError"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: exit status {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def frame(payload: bytes, opcode: int = 2) -> bytes:
    """A server frame: FIN, unmasked (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def _read_exact(f, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data


def read_frame(f) -> tuple[int, bytes]:
    """A client frame (masked, as clients must send them)."""
    b0, b1 = _read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", _read_exact(f, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", _read_exact(f, 8))
    mask = _read_exact(f, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = _read_exact(f, n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


@dataclass
class FakeExecServer:
    behaviour: Behaviour
    protocols: tuple[str, ...] = ("v5.channel.k8s.io", "v4.channel.k8s.io")
    refuse: tuple[int, dict] | None = None  # (HTTP status, Status body) instead of 101
    hang: bool = False  # never answer after stdin (for timeouts and aborts)
    requests: list[dict] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            line = f.readline().decode()
            headers: dict[str, list[str]] = {}
            while (h := f.readline().decode().rstrip("\r\n")):
                k, _, v = h.partition(":")
                headers.setdefault(k.strip().lower(), []).append(v.strip())
            target = urlsplit(line.split()[1])
            self.requests.append({"path": target.path, "query": parse_qs(target.query),
                                  "headers": headers})
            if self.refuse is not None:
                code, body = self.refuse
                data = json.dumps(body).encode()
                conn.sendall(f"HTTP/1.1 {code} Refused\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                return
            offered = [p.strip() for v in headers.get("sec-websocket-protocol", [])
                       for p in v.split(",")]
            chosen = next((p for p in self.protocols if p in offered), "")
            accept = base64.b64encode(hashlib.sha1(
                headers["sec-websocket-key"][0].encode() + _GUID).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n"
                          + (f"Sec-WebSocket-Protocol: {chosen}\r\n" if chosen else "")
                          + "\r\n").encode())
            for ch in (1, 2, 3):  # the real server opens each channel with an empty message
                conn.sendall(frame(bytes([ch])))
            stdin = b""
            try:
                while True:
                    op, data = read_frame(f)
                    if op == 8:
                        return
                    if data[:1] == b"\0":
                        stdin += data[1:]
                    if chosen.startswith("v5") and data == b"\xff\0":
                        break  # stdin closed
                    if not chosen.startswith("v5") and stdin.endswith(b"exit $?\n"):
                        break  # v4 cannot close stdin: the input ends itself
            except EOFError:
                return
            if self.hang:
                f.read()  # until the client goes away
                return
            argv = self.requests[-1]["query"].get("command", [])
            out, err, code = self.behaviour(argv, stdin)
            for i in range(0, len(out), 1000):  # in pieces, as a process writes them
                conn.sendall(frame(b"\1" + out[i:i + 1000]))
            if err:
                conn.sendall(frame(b"\2" + err))
            conn.sendall(frame(b"\3" + json.dumps(status(code)).encode()))
            conn.sendall(frame(struct.pack("!H", 1000), opcode=8))
