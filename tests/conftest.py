"""Session fixtures shared by the test tiers.

`lab` brings the lab up once per test session (reusing one that is already up) and tears it
down at the end unless LAB_KEEP=1 or it was already up before the session. `lab_bare` resets
the cluster to bare (no releases, no chart leftovers, host trees as in their fixtures) before
the test that asks for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lab import hostsupport
from tests.lab.controlplane import ControlPlane
from tests.lab.kube import Kube
from tests.lab.lab import Lab, LabInfo, LabNode

# Host fixture trees hold sysfs-style symlink cycles (device -> iommu_group -> devices ->
# device); collecting inside them never ends. Neither they nor the charts hold tests.
collect_ignore = ["fixtures", "lab/charts", "lab/simbin"]


class LabHandle:
    """What a test needs from the lab: paths, nodes, and small helpers."""

    def __init__(self, lab: Lab, info: LabInfo) -> None:
        self.lab = lab
        self.info = info
        self.kubeconfig = Path(info.kubeconfig)
        self.api_url = info.api_url
        self.nodes: list[LabNode] = info.nodes
        self.charts = {k: Path(v) for k, v in info.charts.items()}
        self.env = info.env()
        self._kube: Kube | None = None

    def node(self, name: str) -> LabNode:
        return self.info.node(name)

    @property
    def kube(self) -> Kube:
        if self._kube is None:
            self._kube = Kube(self.kubeconfig)
        return self._kube

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.info.binaries[tool], *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def kubectl(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("kubectl", *args, **kw)

    def helm(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run("helm", *args, **kw)

    def apply(self, obj: dict) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def reset(self) -> None:
        self.lab.reset()

    def control_plane(self) -> ControlPlane:
        cp = self.lab._control_plane(self.info)
        assert cp is not None
        return cp

    @contextlib.contextmanager
    def paused(self, component: str) -> Iterator[None]:
        """SIGSTOP a control-plane process for the block (kwok-controller: no pod starts)."""
        pid = self.control_plane().pids()[component]
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def kill_sshd(self, name: str) -> bool:
        """SIGKILL node `name`'s sshd and every session in it (a fault test's crash)."""
        return hostsupport.kill_host(self.lab.state_dir, name)

    def start_sshd(self, name: str) -> None:
        """Start node `name`'s sshd again, its host files as they are now."""
        n = self.node(name)
        hostsupport.start_host(self.lab.state_dir, hostsupport.HostAccess(
            n.name, Path(n.host_root), Path(n.fixture), n.internal_ip))

    def wait_for(
        self, what: str, fn: Callable[[], object], timeout: float = 60, interval: float = 0.5
    ):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = fn()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    lab = Lab()
    was_up = lab.status().get("up", False)
    info = lab.up()
    yield LabHandle(lab, info)
    if not was_up and os.environ.get("LAB_KEEP") != "1":
        lab.down()


@pytest.fixture
def lab_bare(lab: LabHandle) -> LabHandle:
    lab.reset()
    return lab
