"""The lab's control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
the KWOK controller, started by `kwokctl --runtime binary` from the locally built binaries.

Every `--*-binary` is set to a local path (one left unset silently becomes a download URL), and
`bindAddress: 127.0.0.1` keeps every listener on loopback. Two more settings keep the lab
inside loopback: the API server reaches "kubelets" (the KWOK controller) only by a node's
InternalIP (`--kubelet-preferred-address-types=InternalIP`; with the default it resolves the
node's Hostname through DNS first), and the KWOK controller's own options are spelled out in
full because kwokctl does not default a user-supplied KwokConfiguration (see README).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import yaml

from . import hostexec
from .binaries import Binaries
from .procs import alive, read_pid, spawn

LAB_DIR = Path(__file__).resolve().parent
STAGES = LAB_DIR / "kwok" / "stages.yaml"
CLUSTER = "lab"
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)
# Pod IPs KWOK hands out are only strings in pod status; a large range fits 10,000 pods.
POD_CIDR = "10.64.0.0/12"


def _port_free(port: int) -> bool:
    """Can a server listen on 127.0.0.1:port (with SO_REUSEADDR, as Go's servers do)?"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class ControlPlane:
    def __init__(self, state_dir: Path, binaries: Binaries, name: str = CLUSTER) -> None:
        self.state_dir = Path(state_dir)
        self.binaries = binaries
        self.name = name
        self.workdir = self.state_dir / "kwok"
        self.cluster_dir = self.workdir / "clusters" / name
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.config_path = self.state_dir / "kwokctl.yaml"
        self.log = self.state_dir / "logs" / "kwokctl.log"

    # --- configuration -----------------------------------------------------------------

    def config_documents(self) -> list[dict]:
        b = self.binaries
        kwokctl = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": {
                "runtime": "binary",
                "bindAddress": "127.0.0.1",
                "kubeApiserverBinary": str(b["kube-apiserver"]),
                "kubeControllerManagerBinary": str(b["kube-controller-manager"]),
                "kubeSchedulerBinary": str(b["kube-scheduler"]),
                "kwokControllerBinary": str(b["kwok"]),
                "etcdBinary": str(b["etcd"]),
                "kubectlBinary": str(b["kubectl"]),
                "cacheDir": str(self.workdir / "cache"),
                "enableCRDs": ["Logs", "ClusterLogs", "Exec"],
                "disableQPSLimits": True,
            },
            "componentsPatches": [
                {
                    "name": "kube-apiserver",
                    "extraArgs": [
                        {"key": "kubelet-preferred-address-types", "value": "InternalIP"},
                        {"key": "max-requests-inflight", "value": "800"},
                        {"key": "max-mutating-requests-inflight", "value": "400"},
                    ],
                },
                {"name": "etcd", "extraArgs": [{"key": "unsafe-no-fsync", "value": "true"}]},
                # Pod exec runs on this machine: only the lab's host-entering `chroot` is
                # on the KWOK controller's PATH (tests/lab/hostexec.py).
                {"name": "kwok-controller",
                 "extraEnvs": [{"name": "PATH", "value": str(hostexec.BIN_DIR)}]},
            ],
        }
        kwok = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokConfiguration",
            "options": {
                "cidr": POD_CIDR,
                "enableDebuggingHandlers": True,
                "enableContentionProfiling": False,
                "enableProfilingHandler": False,
                "podPlayStageParallelism": 16,
                "nodePlayStageParallelism": 8,
                "nodeLeaseParallelism": 8,
                "podsOnNodeSyncParallelism": 4,
                "enablePodsOnNodeSyncListPager": True,
                "enablePodsOnNodeSyncStreamWatch": False,
                "nodeLeaseDurationSeconds": 40,
            },
        }
        stages = [d for d in yaml.safe_load_all(STAGES.read_text()) if d]
        return [kwokctl, kwok, *stages]

    def write_config(self) -> Path:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump_all(self.config_documents(), sort_keys=False))
        return self.config_path

    def _env(self) -> dict[str, str]:
        return {**os.environ, "KWOK_WORKDIR": str(self.workdir), "PATH": self.binaries.path_env}

    def _kwokctl(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            log.write(f"\n$ kwokctl --name {self.name} {' '.join(args)}\n".encode())
            log.flush()
            return subprocess.run(
                [str(self.binaries["kwokctl"]), "--name", self.name, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                timeout=timeout,
                check=False,
            )

    # --- lifecycle -----------------------------------------------------------------------

    def create(self, wait: str = "90s") -> None:
        if self.cluster_dir.exists():
            self.delete()
        self.kubeconfig.unlink(missing_ok=True)
        self.write_config()
        rc = self._kwokctl(
            "--config",
            str(self.config_path),
            "create",
            "cluster",
            "--kubeconfig",
            str(self.kubeconfig),
            "--wait",
            wait,
        ).returncode
        if rc != 0:
            raise RuntimeError(
                f"kwokctl create cluster failed (rc={rc}); see {self.log} and "
                f"{self.cluster_dir / 'logs'}"
            )

    def delete(self) -> None:
        pids = self.pids()  # read first: kwokctl removes the pid files, stopped or not
        if self.cluster_dir.exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._kwokctl("delete", "cluster", "--kubeconfig", str(self.kubeconfig), timeout=60)
        for pid in pids.values():  # whatever kwokctl left behind (an API server that lost etcd)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.cluster_dir, ignore_errors=True)

    # --- facts ---------------------------------------------------------------------------

    def pids(self) -> dict[str, int]:
        out = {}
        for comp in COMPONENTS:
            pid = read_pid(self.cluster_dir / "pids" / f"{comp}.pid")
            if pid:
                out[comp] = pid
        return out

    def running(self) -> dict[str, bool]:
        return {comp: alive(pid) for comp, pid in self.pids().items()}

    def _component_args(self, comp: str) -> list[str]:
        conf = next(yaml.safe_load_all((self.cluster_dir / "kwok.yaml").read_text()))
        for c in conf.get("components") or []:
            if c.get("name") == comp:
                return list(c.get("args") or [])
        return []

    def restart(self, comp: str, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
        """Kill one component (SIGKILL: a crash) and start it again with the arguments
        kwokctl gave it, under the same pid file, for fault tests (an API server restart)."""
        pidfile = self.cluster_dir / "pids" / f"{comp}.pid"
        conf = next(yaml.safe_load_all((self.cluster_dir / "kwok.yaml").read_text()))
        c = next(c for c in conf.get("components") or [] if c.get("name") == comp)
        pid = read_pid(pidfile)
        if pid and alive(pid):
            os.kill(pid, sig)
        # The leader of a multithreaded process is a zombie before its other threads exit
        # and its sockets close: wait for the ports, or the new one cannot listen.
        deadline = time.monotonic() + timeout
        while (alive(pid) or not all(_port_free(p["port"]) for p in c.get("ports") or [])) \
                and time.monotonic() < deadline:
            if pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        env = {**os.environ, **{e["name"]: e.get("value", "") for e in c.get("envs") or []}}
        spawn([c["binary"], *c.get("args", [])], pidfile, self.cluster_dir / "logs" / f"{comp}.log",
              env=env, cwd=c.get("workDir"))

    def kwok_port(self) -> int:
        """The KWOK controller's port: every node's kubelet endpoint, served on 127.0.0.1."""
        for arg in self._component_args("kwok-controller"):
            if arg.startswith("--node-port="):
                return int(arg.split("=", 1)[1])
        raise RuntimeError("kwok-controller port not found in kwokctl's saved configuration")

    def api_url(self) -> str:
        conf = yaml.safe_load(self.kubeconfig.read_text())
        return conf["clusters"][0]["cluster"]["server"]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            p = subprocess.run(
                [
                    str(self.binaries["kubectl"]),
                    "--kubeconfig",
                    str(self.kubeconfig),
                    "get",
                    "--raw",
                    "/readyz",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if p.returncode == 0 and p.stdout.strip() == "ok":
                return
            last = p.stderr.strip() or p.stdout.strip()
            time.sleep(0.5)
        raise TimeoutError(f"API server not ready: {last}")

    def version(self) -> dict:
        p = subprocess.run(
            [
                str(self.binaries["kubectl"]),
                "--kubeconfig",
                str(self.kubeconfig),
                "get",
                "--raw",
                "/version",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(p.stdout)
