"""The simulated hosts behind the nodes: a writable tree per host, and an sshd where wanted.

The sshd machinery lives in `tests.lab.hosts` (SimHost / SimHostFleet). When that module is not
importable the lab still runs, with each host's tree copied from its fixture but no sshd
(`ssh` is then None for every node and `lab.json` says so).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .nodes import NodeSpec, fixture_dir


@dataclass
class HostAccess:
    name: str
    root: Path
    fixture: Path
    ssh_port: int | None = None
    ssh_user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None


def host_root(state_dir: Path, name: str) -> Path:
    return Path(state_dir) / "hosts" / name / "root"


def copy_tree(fixture: Path, root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(fixture, root, symlinks=True)


def _hosts_module():
    try:
        from . import hosts  # provided by the `remote` branch
    except ImportError:
        return None
    return hosts


def ssh_available() -> bool:
    return _hosts_module() is not None


def start_hosts(state_dir: Path, specs: list[NodeSpec]) -> dict[str, HostAccess]:
    """Writable trees for every spec with ssh=True (copied from its fixture), sshd if possible."""
    out: dict[str, HostAccess] = {}
    for spec in specs:
        if not spec.ssh:
            continue
        fixture = fixture_dir(spec.profile)
        root = host_root(state_dir, spec.name)
        copy_tree(fixture, root)
        out[spec.name] = HostAccess(spec.name, root, fixture)
    return out


def stop_hosts(state_dir: Path) -> None:
    """Nothing to stop without sshd; trees are removed with the state directory."""
    del state_dir


def hosts_status(state_dir: Path) -> dict[str, bool]:
    """sshd liveness per host (empty without sshd)."""
    del state_dir
    return {}


def reset_host(access: HostAccess) -> None:
    copy_tree(access.fixture, access.root)
