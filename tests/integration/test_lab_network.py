"""Nothing the lab started listens outside 127.0.0.0/8 (read from /proc, per process)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from pathlib import Path

import pytest

from tests.lab import procs

pytestmark = pytest.mark.lab


def _descendants(pids: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.add(p)
        todo += children.get(p, [])
    return out


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                out.add(target[8:-1])
    except OSError:
        pass
    return out


def _addr(hexaddr: str, v6: bool) -> str:
    ip, port = hexaddr.split(":")
    raw = bytes.fromhex(ip)
    if v6:
        raw = b"".join(
            struct.pack("<I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, 16, 4)
        )
        return f"[{socket.inet_ntop(socket.AF_INET6, raw)}]:{int(port, 16)}"
    return f"{socket.inet_ntoa(struct.pack('<I', int(ip, 16)))}:{int(port, 16)}"


def _connected() -> dict[str, str]:
    """inode -> remote address of every TCP socket with a peer (any state but LISTEN)."""
    out = {}
    for name, v6 in (("tcp", False), ("tcp6", True)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A":
                out[f[9]] = _addr(f[2], v6)
    return out


def _listening() -> dict[str, str]:
    """inode -> address of every listening TCP socket and bound UDP socket on the machine."""
    out = {}
    for name, v6, udp in (
        ("tcp", False, False),
        ("tcp6", True, False),
        ("udp", False, True),
        ("udp6", True, True),
    ):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            state, inode = f[3], f[9]
            if (not udp and state == "0A") or (udp and state == "07"):
                out[inode] = _addr(f[1], v6)
    return out


def lab_pids(lab) -> set[int]:
    cp = lab.lab._control_plane()
    pids = set(cp.pids().values()) if cp else set()
    for name in ("simulator", "kubelet-proxy"):
        pid = procs.read_pid(lab.lab._pidfile(name))
        if pid:
            pids.add(pid)
    run = Path(lab.info.state_dir)
    for pidfile in run.rglob("*.pid"):
        pid = procs.read_pid(pidfile)
        if pid and procs.alive(pid):
            pids.add(pid)
    return _descendants(pids)


def _loopback(addr: str) -> bool:
    host = addr.rsplit(":", 1)[0].strip("[]")
    return ipaddress.ip_address(host).is_loopback


def test_lab_listens_only_on_loopback(lab):
    pids = lab_pids(lab)
    assert len(pids) >= 7  # 5 control-plane processes, simulator, kubelet forwarder (+ sshd)
    listening = _listening()
    seen = {}
    for pid in pids:
        for inode in _socket_inodes(pid):
            if inode in listening:
                seen[listening[inode]] = pid
    assert seen, "found no listening sockets of the lab's processes"
    outside = {a: p for a, p in seen.items() if not _loopback(a)}
    assert not outside, f"lab processes listening outside loopback: {outside}"
    # the API server is among them, on the address lab.json names
    port = lab.api_url.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}" in seen


def test_lab_talks_only_to_loopback(lab):
    """Every TCP connection the lab's processes hold goes to a loopback address (the API server,
    etcd, the KWOK controller, sshd sessions)."""
    connected = _connected()
    peers = {}
    for pid in lab_pids(lab):
        for inode in _socket_inodes(pid):
            if inode in connected and not connected[inode].startswith("0.0.0.0:"):
                peers[connected[inode]] = pid
    assert peers, "found no connections of the lab's processes"
    outside = {a: p for a, p in peers.items() if not _loopback(a)}
    assert not outside, f"lab processes connected outside loopback: {outside}"
