"""The simulated hosts behind the nodes: a writable tree per host and a real sshd for it.

The sshd machinery is `tests.lab.hosts` (SimHost: one OpenSSH sshd per host on its own loopback
address, chrooted into the host's tree). `lab up` exits after starting everything, so each sshd
is tracked by pid file (`<state>/run/sshd-<name>.pid`) and stopped by pid, not by a SimHost
object. Set LAB_NO_SSH=1 (or run without `tests.lab.hosts`) to get trees without sshd.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .nodes import NodeSpec, fixture_dir

SSH_PORT = 22


@dataclass
class HostAccess:
    name: str
    root: Path
    fixture: Path
    address: str = ""
    ssh_port: int | None = None
    ssh_user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None


def hosts_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "hosts"


def host_root(state_dir: Path, name: str) -> Path:
    return hosts_dir(state_dir) / name / "root"


def _pidfile(state_dir: Path, name: str) -> Path:
    return Path(state_dir) / "run" / f"sshd-{name}.pid"


def known_hosts_path(state_dir: Path) -> Path:
    return Path(state_dir) / "ssh" / "known_hosts"


def copy_tree(fixture: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(fixture, root, symlinks=True)


def _hosts_module():
    if os.environ.get("LAB_NO_SSH") == "1":
        return None
    try:
        from . import hosts
    except ImportError:
        return None
    return hosts


def ssh_available() -> bool:
    return _hosts_module() is not None


def _sim_host(hm, state_dir: Path, name: str, address: str, fixture: Path):
    keys = hm.LabKeys(hosts_dir(state_dir) / "lab")
    return hm.SimHost(name, address, SSH_PORT, fixture, hosts_dir(state_dir), keys=keys)


def _set_hostname(root: Path, name: str) -> None:
    """A kubelet registers its node under the host's name: make the host agree with its node."""
    for rel in ("etc/hostname", "proc/sys/kernel/hostname"):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(name + "\n")


def _start(hm, state_dir: Path, sims: list, fresh: bool = True) -> None:
    def build(h) -> None:
        h.build(fresh=fresh)
        _set_hostname(h.root, h.name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(build, sims))
    for h in sims:
        h.spawn()
        _pidfile(state_dir, h.name).parent.mkdir(parents=True, exist_ok=True)
        _pidfile(state_dir, h.name).write_text(f"{h._proc.pid}\n")
    for h in sims:
        h.wait_ready(30)


def start_hosts(state_dir: Path, specs: list[NodeSpec]) -> dict[str, HostAccess]:
    """A writable tree (copied from its fixture) for every spec with ssh=True, each served by
    its own sshd on the spec's address:22 when `tests.lab.hosts` is available."""
    wanted = [s for s in specs if s.ssh]
    hm = _hosts_module()
    out: dict[str, HostAccess] = {}
    if hm is None:
        for spec in wanted:
            fixture = fixture_dir(spec.profile)
            copy_tree(fixture, host_root(state_dir, spec.name))
            out[spec.name] = HostAccess(
                spec.name, host_root(state_dir, spec.name), fixture, spec.address
            )
        return out
    hm.ensure()
    sims = [_sim_host(hm, state_dir, s.name, s.address, fixture_dir(s.profile)) for s in wanted]
    _start(hm, state_dir, sims)
    kh = known_hosts_path(state_dir)
    kh.parent.mkdir(parents=True, exist_ok=True)
    kh.write_text("".join(h.known_hosts_line() + "\n" for h in sims))
    for h in sims:
        out[h.name] = HostAccess(
            h.name,
            h.root,
            Path(h.tree),
            h.address,
            SSH_PORT,
            hm.LAB_USER,
            str(h.keys.identity),
            str(kh),
        )
    return out


def stop_hosts(state_dir: Path) -> None:
    run = Path(state_dir) / "run"
    for pidfile in sorted(run.glob("sshd-*.pid")) if run.is_dir() else []:
        procs.stop(pidfile, timeout=5)


def kill_host(state_dir: Path, name: str) -> bool:
    """SIGKILL one host's sshd, as a crash would: its namespace goes with it, so every session
    (and every command a session was running) dies mid-way. For fault tests; True if it ran."""
    pid = procs.read_pid(_pidfile(state_dir, name))
    if not procs.alive(pid):
        return False
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    procs.stop(_pidfile(state_dir, name), timeout=5)  # reaps it and removes the pid file
    return True


def start_host(state_dir: Path, access: HostAccess) -> None:
    """Start a killed host's sshd again on its root as it is now (not reset to its fixture);
    nothing to do if it runs (a second sshd could not bind, and would own the pid file)."""
    hm = _hosts_module()
    if hm is None:
        raise RuntimeError("the lab runs without sshd (LAB_NO_SSH=1)")
    if procs.alive(procs.read_pid(_pidfile(state_dir, access.name))):
        return
    _start(hm, state_dir, [_sim_host(hm, state_dir, access.name, access.address,
                                     access.fixture)], fresh=False)


def hosts_status(state_dir: Path) -> dict[str, bool]:
    """sshd liveness per host (empty when the lab runs without sshd)."""
    run = Path(state_dir) / "run"
    return {
        p.name[len("sshd-") : -len(".pid")]: procs.alive(procs.read_pid(p))
        for p in (sorted(run.glob("sshd-*.pid")) if run.is_dir() else [])
    }


def reset_host(state_dir: Path, access: HostAccess) -> None:
    """The host as its fixture again; its sshd (if any) restarted on the fresh root, since a
    running sshd's chroot still points at the replaced directory."""
    pidfile = _pidfile(state_dir, access.name)
    hm = _hosts_module()
    if hm is None or not pidfile.exists():
        copy_tree(access.fixture, access.root)
        return
    procs.stop(pidfile, timeout=5)
    _start(hm, state_dir, [_sim_host(hm, state_dir, access.name, access.address, access.fixture)])
