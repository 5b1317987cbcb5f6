"""Host fixes and reboots on N simulated hosts in waves, against one host and one at a time.

    sudo .venv/bin/python bench/waves.py              # N=50 at maxUnavailable 50 and 10
    sudo .venv/bin/python bench/waves.py --quick      # N=4, to see it run

Each measurement starts fresh simulated hosts (tests/lab/hosts.py, a real sshd each) from
the gpu-host-driver tree: each needs its host NVIDIA driver blacklisted, the IOMMU on the
kernel command line, a reboot (simulated: the host's sessions drop and it boots the new
command line) and, after the re-probe, its GPUs bound to vfio-pci. The engine runs the
real plan (build_plan) with the real probe, host checks and host-fix executors over SSH;
no cluster runs here, so the cordon, drain and uncordon steps talk to an in-process
stand-in of the API server (nodes always Ready, no pods) and the chart, label and verify
steps after the chains are no-ops: what is timed is the host part of an install. Printed:
wall time for 1 host, for N hosts at each wave size, and one host at a time (the guide's
way: maxUnavailable 1) - measured over --sequential hosts and scaled to N, unless
--sequential is N. With each run: the load average before it, the SSH connections each host
accepted (its sshd's log), and the CPU the run cost this process (the client) and the
simulated hosts (their sshd and every session, read from /proc). Not a test: the numbers
depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installer.answers.model import load_answers
from installer.cluster.facts import ClusterFacts, Facts, NodeFacts
from installer.engine import params as p
from installer.engine.events import ChangeEvent, Recorder, RunFinished
from installer.engine.runner import Context, Done, Engine
from installer.engine.runtime import run_services
from installer.engine.steps import default_executors
from installer.redact import Redactor
from tests.lab import hosts

ROOT = Path(__file__).resolve().parents[1]
STUBBED = (p.ClusterChecksParams, p.RecordLabelsParams, p.LabelParams, p.HelmParams,
           p.VerifyKataDeployParams, p.VerifyGpuOperatorParams, p.VerifyHostParams,
           p.SampleParams)


class ApiStandIn:
    """Nodes that are always Ready and hold no pods: the cordon/drain/uncordon steps run
    their real code against it."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}

    def _node(self, name: str) -> dict[str, Any]:
        return self.nodes.setdefault(name, {
            "metadata": {"name": name, "annotations": {}}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}})

    def get_json(self, path: str, **_q: str) -> dict[str, Any]:
        return self._node(path.rsplit("/", 1)[1])

    def list_items(self, path: str, **_q: str) -> list[dict[str, Any]]:
        return []

    def send_json(self, method: str, path: str, body: dict[str, Any], *_a: Any) -> Any:
        node = self._node(path.rsplit("/", 1)[1])
        if "spec" in body:
            node["spec"]["unschedulable"] = body["spec"]["unschedulable"]
        for k, v in (body.get("metadata") or {}).get("annotations", {}).items():
            if v is None:
                node["metadata"]["annotations"].pop(k, None)
            else:
                node["metadata"]["annotations"][k] = v
        return {}


class Yes:
    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        return True


async def _noop(ctx: Context, step: Any, facts: Facts) -> Done:
    return Done("not timed here")


def answers_for(fleet: hosts.SimHostFleet, known_hosts: Path, max_unavailable: int,
                work: Path) -> Any:
    data = {
        "apiVersion": "gpu-kata-installer.io/v1alpha1", "kind": "Answers",
        "ssh": {"user": hosts.LAB_USER, "identityFile": str(fleet.keys.identity),
                "knownHosts": str(known_hosts), "useAgent": False, "configFile": None,
                "sudo": {"mode": "passwordless"}, "concurrency": max(50, len(fleet))},
        "nodes": {"default": "traditional", "items": [
            {"name": h.name, "choice": "kata", "address": h.address} for h in fleet]},
        "hostFixes": {k: "apply" for k in ("iommu", "nouveauBlacklist", "vfioBind",
                                           "kubeletFeatureGate", "reboot")},
        "kataDeploy": {"chart": {"path": str(ROOT)}, "version": "3.29.0"},
        "gpuOperator": {"chart": {"path": str(ROOT)}, "version": "v26.3.1"},
        "rollout": {"maxUnavailable": max_unavailable},
        "sample": {"run": False},
    }
    path = work / f"answers-{len(fleet)}-{max_unavailable}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_answers(path)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants, live or reaped."""
    total = 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in stat[11:15]) / os.sysconf("SC_CLK_TCK")
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_tree_cpu(int(k)) for k in kids)


def hosts_cpu(fleet: hosts.SimHostFleet) -> float:
    return sum(_tree_cpu(h._proc.pid) for h in fleet if h._proc is not None)


def one_run(n: int, max_unavailable: int, state: Path, first: str, boot: float = 0.0
            ) -> tuple[float, int, str]:
    """(seconds, hosts rebooted, how the run finished) on n fresh hosts; prints what the
    run cost besides. `boot`: how long each host takes to come back from its reboot."""
    fleet = hosts.SimHostFleet(n, hosts.FIXTURES / "gpu-host-driver", state_dir=state,
                               first_address=first, prefix="w")
    try:
        fleet.start()
        for h in fleet:  # read by the lab's reboot (tests/lab/simbin/labsim.py)
            (h.root / ".lab/boot-seconds").write_text(f"{boot}\n")
        with tempfile.TemporaryDirectory(prefix="gki-waves-") as tmp:
            work = Path(tmp)
            kh = fleet.write_known_hosts(work / "known_hosts")
            answers = answers_for(fleet, kh, max_unavailable, work)
            cluster = ClusterFacts(nodes=tuple(
                NodeFacts(h.name, address=h.address, kubelet_version="v1.33.4",
                          container_runtime="containerd://2.0.5", ready=True)
                for h in fleet), recorded_labels={})
            services = run_services(answers, Redactor())
            services["kube"] = ApiStandIn()
            rec = Recorder()
            ctx = Context(dry_run=False, sinks=[rec], decider=Yes(), services=services)
            executors = {**default_executors(), **dict.fromkeys(STUBBED, _noop)}
            load = os.getloadavg()[0]
            cpu, host_cpu, t = time.process_time(), hosts_cpu(fleet), time.monotonic()
            code = asyncio.run(Engine(answers, ctx, executors).run(
                replace(Facts(cluster=cluster), source="bench")))
            elapsed = time.monotonic() - t
            cpu = time.process_time() - cpu
            time.sleep(0.5)  # the hosts' last sessions end
            host_cpu = hosts_cpu(fleet) - host_cpu
            logins = sum(h.log_path.read_text(errors="replace").count("Accepted publickey")
                         for h in fleet)
            print(f"    load {load:.1f}; SSH connections per host {logins / n:.1f}; CPU: "
                  f"client {cpu * 1000 / n:.0f} ms/host, simulated hosts "
                  f"{host_cpu * 1000 / n:.0f} ms/host ({host_cpu:.1f}s)")
    finally:
        fleet.stop()
        hosts.cleanup_state(state)
    rebooted = sum(1 for e in rec.of(ChangeEvent) if e.applied and e.detail.get("fix") == "reboot")
    finished = rec.of(RunFinished)[-1]
    return elapsed, rebooted, f"exit {code}: {finished.message.splitlines()[0]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="hosts (default 50)")
    ap.add_argument("--waves", default="50,10", help="wave sizes for N hosts (default 50,10)")
    ap.add_argument("--sequential", type=int, default=5,
                    help="hosts measured one at a time, scaled to N (default 5; N: all)")
    ap.add_argument("--quick", action="store_true", help="N=4, waves 4,2, sequential 2")
    ap.add_argument("--state", default="/var/tmp/gki-bench-waves")
    ap.add_argument("--first-address", default="127.0.53.101")
    ap.add_argument("--boot-seconds", type=float, default=0.0,
                    help="how long a host takes to come back from its reboot (default 0: the "
                         "lab's at once; a server with GPUs takes minutes)")
    a = ap.parse_args()
    if a.quick:
        a.n, a.waves, a.sequential = 4, "4,2", 2
    sizes = [int(x) for x in a.waves.split(",") if x]
    hosts.ensure()
    state = Path(a.state)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; a reboot takes "
          f"{a.boot_seconds:g} s to come back")

    def measure(label: str, n: int, size: int) -> float:
        elapsed, rebooted, how = one_run(n, size, state, a.first_address, a.boot_seconds)
        print(f"{label:44} {elapsed:7.1f}s  ({rebooted}/{n} rebooted; {how})")
        if rebooted != n:
            raise SystemExit(f"not every host was rebooted: {how}")
        return elapsed

    t1 = measure("1 host", 1, 1)
    results = {size: measure(f"{a.n} hosts, maxUnavailable={size}", a.n, size)
               for size in sizes}
    m = min(a.sequential, a.n)
    ts = measure(f"{m} hosts one at a time (maxUnavailable=1)", m, 1)
    seq = ts * a.n / m
    print(f"one at a time (the guide's way), {a.n} hosts: {seq:.1f}s"
          + ("" if m == a.n else f" (scaled from {m} hosts)"))
    for size, tn in results.items():
        print(f"maxUnavailable={size}: {tn / t1:.2f}x one host's time, "
              f"{seq / tn:.1f}x faster than one at a time")
    best = min(results.values())
    print(f"goal: {a.n} hosts <= 1.5x one host's wall time at some wave size: "
          f"{best / t1:.2f}x -> {'met' if best <= 1.5 * t1 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
