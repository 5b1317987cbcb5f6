"""What a test needs from a running lab, and a lab of a test's own beside the session's."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.lab import hostsupport, procs
from tests.lab.controlplane import ControlPlane
from tests.lab.kube import Kube
from tests.lab.lab import Lab, LabInfo, LabNode


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
        """SIGSTOP a control-plane process (kwok-controller: no pod starts) or the
        simulator (nothing it writes appears) for the block."""
        pid = (procs.read_pid(self.lab._pidfile(component)) if component == "simulator"
               else self.control_plane().pids()[component])
        assert pid, f"{component} is not running"
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


@contextlib.contextmanager
def own_lab(state_dir: Path | str, prefix: str, **up: object) -> Iterator[LabHandle]:
    """A second lab for one test module (`Lab.up(**up)`: a mode, extra nodes), on its own
    state dir and loopback /24 - each host's sshd owns address:22, so it cannot share the
    session lab's - torn down after."""
    old = os.environ.get("LAB_ADDRESS_PREFIX")
    os.environ["LAB_ADDRESS_PREFIX"] = prefix
    lab = Lab(state_dir)
    try:
        yield LabHandle(lab, lab.up(**up))  # type: ignore[arg-type]
    finally:
        lab.down()
        if old is None:
            os.environ.pop("LAB_ADDRESS_PREFIX", None)
        else:
            os.environ["LAB_ADDRESS_PREFIX"] = old
