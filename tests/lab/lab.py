"""Bring the lab up, describe it (`lab.json`), check it, reset it to bare, and tear it down.

lab = Lab()                 # state dir: $LAB_STATE_DIR or /tmp/gpu-kata-lab
info = lab.up()             # idempotent: reuses a running lab
info.kubeconfig, info.nodes[0].internal_ip ...
lab.reset()                 # uninstall releases, drop what charts left, restore host trees
lab.down()
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import chartversions, hostsupport, procs
from .binaries import K8S_VERSION, LAB_DIR, Binaries, ensure_binaries
from .controlplane import ControlPlane
from .kube import Kube, KubeError
from .nodes import (
    NodeSpec,
    address_prefix,
    create_nodes,
    default_nodes,
    fixture_dir,
    node_object,
    repair_node_info,
    scale_nodes,
    tainted_nodes,
)

DEFAULT_STATE_DIR = "/tmp/gpu-kata-lab"
SCALE_NAMESPACE = "lab-scale"
KEEP_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", SCALE_NAMESPACE}
CHART_CRDS = (
    "clusterpolicies.nvidia.com",
    "nvidiadrivers.nvidia.com",
    "nodefeaturerules.nfd.k8s-sigs.io",
)


def state_dir_default() -> Path:
    return Path(os.environ.get("LAB_STATE_DIR") or DEFAULT_STATE_DIR)


@dataclass
class LabNode:
    name: str
    profile: str
    internal_ip: str
    host_root: str
    fixture: str
    ssh: bool = False
    ssh_port: int | None = None
    ssh_user: str | None = None
    identity_file: str | None = None
    known_hosts: str | None = None
    kubelet_version: str = ""
    taints: list[list[str]] = field(default_factory=list)  # [key, value, effect]

    def spec(self) -> NodeSpec:
        kw = {"kubelet_version": self.kubelet_version} if self.kubelet_version else {}
        return NodeSpec(self.name, self.profile, self.internal_ip, ssh=self.ssh,
                        taints=tuple((k, v, e) for k, v, e in self.taints), **kw)


@dataclass
class LabInfo:
    state_dir: str
    kubeconfig: str
    api_url: str
    kubernetes_version: str
    mode: str
    path: str  # PATH entries with the lab's helm and kubectl first
    binaries: dict[str, str]
    charts: dict[str, str]
    kwok_port: int
    nodes: list[LabNode] = field(default_factory=list)
    scale: dict | None = None
    extra_nodes: list[str] = field(default_factory=list)
    # {chart: {version: path}}: the stand-in charts at every supported version
    chart_versions: dict[str, dict[str, str]] = field(default_factory=dict)
    version: int = 1

    @property
    def json_path(self) -> Path:
        return Path(self.state_dir) / "lab.json"

    def node(self, name: str) -> LabNode:
        return next(n for n in self.nodes if n.name == name)

    def env(self) -> dict[str, str]:
        """Environment for helm/kubectl against the lab."""
        return {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "PATH": self.path + os.pathsep + os.environ.get("PATH", ""),
        }

    def save(self) -> None:
        self.json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.json_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, self.json_path)

    @classmethod
    def load(cls, state_dir: Path | str) -> LabInfo:
        data = json.loads((Path(state_dir) / "lab.json").read_text())
        data["nodes"] = [LabNode(**n) for n in data.get("nodes", [])]
        return cls(**data)


class Lab:
    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir else state_dir_default()
        self.logs = self.state_dir / "logs"
        self.run = self.state_dir / "run"

    # --- helpers ---------------------------------------------------------------------------

    def _say(self, msg: str) -> None:
        print(f"[lab] {msg}", file=sys.stderr, flush=True)

    def _pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def info(self) -> LabInfo:
        return LabInfo.load(self.state_dir)

    def _control_plane(self, info: LabInfo | None = None) -> ControlPlane | None:
        try:
            info = info or self.info()
        except (OSError, ValueError):
            return None
        b = info.binaries
        return ControlPlane(
            self.state_dir, Binaries(Path(b["kube-apiserver"]).parent, Path(b["helm"]).parent)
        )

    # --- status ----------------------------------------------------------------------------

    def status(self) -> dict:
        out: dict = {"state_dir": str(self.state_dir), "up": False}
        try:
            info = self.info()
        except (OSError, ValueError):
            out["reason"] = "no lab.json"
            return out
        cp = self._control_plane(info)
        assert cp is not None
        comps = cp.running()
        out["control_plane"] = comps
        out["processes"] = {
            name: procs.alive(procs.read_pid(self._pidfile(name)))
            for name in ("simulator", "kubelet-proxy")
        }
        out["hosts"] = hostsupport.hosts_status(self.state_dir)
        api_ok = False
        if comps and all(comps.values()):
            try:
                api_ok = Kube(info.kubeconfig, timeout=5).raw("/readyz") == (200, "ok")
            except Exception as e:
                out["api_error"] = str(e)
        out["api"] = api_ok
        out["up"] = bool(
            api_ok
            and len(comps) == 5
            and all(out["processes"].values())
            and all(out["hosts"].values())
        )
        out["mode"] = info.mode
        out["api_url"] = info.api_url
        out["kubeconfig"] = info.kubeconfig
        return out

    # --- up ----------------------------------------------------------------------------------

    def up(
        self,
        mode: str = "default",
        scale_node_count: int = 1000,
        scale_pod_count: int = 10000,
        extra_nodes: list[str] | tuple[str, ...] = (),
    ) -> LabInfo:
        """Bring the lab up (or reuse it). `extra_nodes`: "NAME=PROFILE[@KUBELET_VERSION]"
        entries adding hosts from other fixture trees (e.g. gpu-node-4=kubelet-no-gate@v1.33.5)."""
        extra_specs = extra_node_specs(list(extra_nodes))
        st = self.status()
        if not st["up"] and st.get("api") and all(st.get("hosts", {}).values()):
            self.ensure_processes()  # only the simulator or the forwarder had died
            st = self.status()
        if st["up"]:
            info = self.info()
            if (
                info.mode == mode
                and (mode != "scale" or (info.scale or {}).get("nodes") == scale_node_count)
                and sorted(info.extra_nodes) == sorted(extra_nodes)
            ):
                self._say(f"lab already up ({self.state_dir}); reusing it")
                return self._with_charts(info)
        if (self.state_dir / "lab.json").exists() or (self.state_dir / "kwok").exists():
            self._say("tearing down a previous, incomplete or different lab first")
            self.down()
        if killed := procs.kill_stale(self.state_dir):  # a crashed lab's, without pid files
            self._say(f"killed {len(killed)} stale process(es) of {self.state_dir}")
        t0 = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.run.mkdir(exist_ok=True)

        self._say("ensuring binaries (a cold build takes tens of minutes)")
        binaries = ensure_binaries(self.logs / "build.log")
        self._say(f"binaries ready in {time.monotonic() - t0:.1f}s")

        cp = ControlPlane(self.state_dir, binaries)
        cp.create()
        cp.wait_ready()
        self._say(f"control plane ready at {cp.api_url()} ({time.monotonic() - t0:.1f}s)")

        specs: list[NodeSpec] = (tainted_nodes() if mode == "tainted" else default_nodes()) \
            + extra_specs
        if mode == "scale":
            specs += scale_nodes(scale_node_count)
        hosts = hostsupport.start_hosts(self.state_dir, specs)
        nodes = []
        for spec in specs:
            h = hosts.get(spec.name)
            nodes.append(
                LabNode(
                    name=spec.name,
                    profile=spec.profile,
                    internal_ip=spec.address,
                    host_root=str(
                        h.root if h else hostsupport.host_root(self.state_dir, spec.name)
                    ),
                    fixture=str(h.fixture if h else fixture_dir(spec.profile)),
                    ssh=bool(h and h.ssh_port),
                    ssh_port=h.ssh_port if h else None,
                    ssh_user=h.ssh_user if h else None,
                    identity_file=h.identity_file if h else None,
                    known_hosts=h.known_hosts if h else None,
                    kubelet_version=spec.kubelet_version,
                    taints=[list(t) for t in spec.taints],
                )
            )
        info = LabInfo(
            state_dir=str(self.state_dir),
            kubeconfig=str(cp.kubeconfig),
            api_url=cp.api_url(),
            kubernetes_version=K8S_VERSION,
            mode=mode,
            path=os.pathsep.join([str(binaries.tools_dir), str(binaries.bin_dir)]),
            binaries=binaries.as_dict(),
            charts={c: str(LAB_DIR / "charts" / c) for c in ("kata-deploy", "gpu-operator")},
            kwok_port=cp.kwok_port(),
            nodes=nodes,
            scale={"nodes": scale_node_count, "pods": scale_pod_count, "namespace": SCALE_NAMESPACE}
            if mode == "scale"
            else None,
            extra_nodes=list(extra_nodes),
        )
        info = self._with_charts(info)
        self._say(f"{len(hosts)} host(s) ready ({time.monotonic() - t0:.1f}s)")

        kube = Kube(info.kubeconfig)
        roots = {
            n.name: Path(n.host_root) if Path(n.host_root).exists() else Path(n.fixture)
            for n in nodes
        }
        create_nodes(kube, specs, roots, info.kwok_port)
        self._start_processes(info)
        self._wait_nodes_ready(kube, len(specs))
        repaired = repair_node_info(kube, specs, roots, info.kwok_port)
        if repaired:
            self._say(f"nodeInfo published again on {', '.join(repaired)}")
        self._say(f"{len(specs)} node(s) Ready ({time.monotonic() - t0:.1f}s)")
        if mode == "scale":
            from .scale import create_pods

            n = create_pods(
                kube,
                [s.name for s in specs if s.name.startswith("scale-node-")],
                scale_pod_count,
                SCALE_NAMESPACE,
            )
            self._say(f"{n} scale pod(s) created ({time.monotonic() - t0:.1f}s)")
            self._wait_pods_running(kube, SCALE_NAMESPACE)
            self._say(f"{n} scale pod(s) Running ({time.monotonic() - t0:.1f}s)")
        self._say(f"lab up in {time.monotonic() - t0:.1f}s")
        return info

    def _with_charts(self, info: LabInfo) -> LabInfo:
        """Write the stand-in charts at every supported version (again: the templates may
        have changed since the lab came up) and record where they are."""
        info.chart_versions = chartversions.write_all(self.state_dir / "charts")
        info.save()
        return info

    def ensure_processes(self) -> list[str]:
        """Restart the simulator and the kubelet forwarder if they died; returns what restarted."""
        info = self.info()
        dead = [
            n
            for n in ("kubelet-proxy", "simulator")
            if not procs.alive(procs.read_pid(self._pidfile(n)))
        ]
        if dead:
            self._say(f"restarting {', '.join(dead)}")
            self._start_processes(info, only=dead)
        return dead

    def _start_processes(self, info: LabInfo, only: list[str] | None = None) -> None:
        # Forward kubelet traffic for the nodes with hosts (the 1,000 scale nodes have none).
        addresses = [n.internal_ip for n in info.nodes if not n.name.startswith("scale-node-")]
        if only is None or "kubelet-proxy" in only:
            procs.spawn(
                procs.python_module(
                    "tests.lab.kubeletproxy", "--target-port", str(info.kwok_port), *addresses
                ),
                self._pidfile("kubelet-proxy"),
                self.logs / "kubelet-proxy.log",
                cwd=LAB_DIR.parents[1],
            )
        if only is None or "simulator" in only:
            procs.spawn(
                procs.python_module("tests.lab.simulator", "--state-dir", str(self.state_dir)),
                self._pidfile("simulator"),
                self.logs / "simulator.log",
                cwd=LAB_DIR.parents[1],
            )

    def _wait_nodes_ready(self, kube: Kube, count: int, timeout: float | None = None) -> None:
        # KWOK marks a few hundred nodes Ready a second on 2 cores: 5,000 take over a minute
        timeout = timeout or max(60.0, count * 0.04)
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            items, _ = kube.list("/api/v1/nodes")
            ready = sum(
                1
                for n in items
                if any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (n.get("status") or {}).get("conditions") or []
                )
            )
            if ready >= count:
                return
            time.sleep(0.3)
        raise TimeoutError(f"only {ready}/{count} nodes Ready after {timeout}s")

    def _wait_pods_running(self, kube: Kube, namespace: str, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        path = f"/api/v1/namespaces/{namespace}/pods"
        while time.monotonic() < deadline:
            out = kube.get(path, fieldSelector="status.phase!=Running", limit=1)
            if not out.get("items"):
                return
            time.sleep(2)
        raise TimeoutError(f"pods in {namespace} not all Running after {timeout}s")

    # --- down ----------------------------------------------------------------------------

    def down(self) -> None:
        for name in ("simulator", "kubelet-proxy"):
            procs.stop(self._pidfile(name))
        hostsupport.stop_hosts(self.state_dir)
        cp = self._control_plane()
        if cp is None and (self.state_dir / "kwok").exists():
            cp = ControlPlane(self.state_dir, ensure_binaries(self.logs / "build.log"))
        if cp is not None:
            cp.delete()
        for sub in ("kwok", "hosts", "podlogs", "run", "ssh"):
            shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        for f in ("lab.json", "kubeconfig", "kwokctl.yaml"):
            (self.state_dir / f).unlink(missing_ok=True)

    # --- reset to bare ---------------------------------------------------------------------

    def reset(self, timeout: float = 120) -> None:
        """Back to a bare cluster: no releases, no chart leftovers, nodes and hosts as created."""
        info = self.info()
        self.ensure_processes()
        env = info.env()
        helm = info.binaries["helm"]
        out = subprocess.run(
            [helm, "list", "-A", "--deployed", "--failed", "--pending", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for rel in json.loads(out or "[]"):
            subprocess.run(
                [
                    helm,
                    "uninstall",
                    rel["name"],
                    "-n",
                    rel["namespace"],
                    "--wait",
                    "--timeout",
                    "2m",
                ],
                env=env,
                capture_output=True,
                check=False,
            )
        kube = Kube(info.kubeconfig)
        for ns in ("default",):
            kube.delete(f"/api/v1/namespaces/{ns}/pods", gracePeriodSeconds="0")
        nss, _ = kube.list("/api/v1/namespaces")
        doomed = [
            n["metadata"]["name"] for n in nss if n["metadata"]["name"] not in KEEP_NAMESPACES
        ]
        for ns in doomed:
            kube.delete(f"/api/v1/namespaces/{ns}")
        for crd in CHART_CRDS:
            kube.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")
        kube.delete("/apis/node.k8s.io/v1/runtimeclasses")
        # Wait for the namespaces (and so every pod the simulator acts for) to be gone before
        # restoring nodes and hosts, or a last operand pod could write to a host again.
        deadline = time.monotonic() + timeout
        while True:
            left, _ = kube.list("/api/v1/namespaces")
            if not [n for n in left if n["metadata"]["name"] in doomed]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespaces not gone after reset: {doomed}")
            time.sleep(0.3)
        time.sleep(0.5)  # let the simulator's watches catch up with the deletions
        # Nodes: labels and extended resources back to what `up` published; hosts as fixtures.
        for n in info.nodes:
            if n.name.startswith("scale-node-"):
                continue
            fixture = Path(n.fixture)
            hostsupport.reset_host(
                self.state_dir,
                hostsupport.HostAccess(n.name, Path(n.host_root), fixture, n.internal_ip),
            )
            obj = node_object(n.spec(), fixture)
            want = obj["metadata"]["labels"]
            cur = kube.get(f"/api/v1/nodes/{n.name}")
            labels = {k: None for k in cur["metadata"].get("labels", {}) if k not in want}
            labels.update(want)
            patch: dict = {"metadata": {"labels": labels}}
            if (cur.get("spec") or {}).get("taints") != obj["spec"].get("taints"):
                patch["spec"] = {"taints": obj["spec"].get("taints")}
            kube.patch(f"/api/v1/nodes/{n.name}", patch)
            st = cur.get("status") or {}
            extra = {k: None for k in (st.get("capacity") or {}) if k.startswith("nvidia.com/")}
            if extra:
                kube.patch(
                    f"/api/v1/nodes/{n.name}/status",
                    {"status": {"capacity": extra, "allocatable": extra}},
                )
        repair_node_info(
            kube,
            [n.spec() for n in info.nodes if not n.name.startswith("scale-node-")],
            {n.name: Path(n.fixture) for n in info.nodes},
            info.kwok_port,
        )


def extra_node_specs(entries: list[str]) -> list[NodeSpec]:
    """ "gpu-node-4=kubelet-no-gate@v1.33.5" -> a NodeSpec on the next free default address."""
    prefix = address_prefix()
    out = []
    for i, entry in enumerate(entries):
        name, _, rest = entry.partition("=")
        profile, _, version = rest.partition("@")
        if not name or not profile:
            raise ValueError(f"extra node {entry!r}: expected NAME=PROFILE[@KUBELET_VERSION]")
        fixture_dir(profile)  # fail early on an unknown profile
        kw = {"kubelet_version": version} if version else {}
        out.append(NodeSpec(name, profile, f"{prefix}.{5 + i}", **kw))
    return out


def kube_for(info: LabInfo) -> Kube:
    return Kube(info.kubeconfig)


__all__ = ["KubeError", "Lab", "LabInfo", "LabNode", "state_dir_default"]
