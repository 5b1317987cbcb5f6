"""Rolling upgrade of N Kata GPU nodes in waves, against the naive `helm upgrade` of both charts.

    sudo .venv/bin/python bench/upgrade.py              # N=6 at maxUnavailable 1, 3, 6
    sudo .venv/bin/python bench/upgrade.py --quick      # N=3 at maxUnavailable 1, 3 (CI)

One lab with N gpu-vfio-ready nodes (the default lab's two plus N-2 extra nodes); the GPU
node whose host is not prepared is left out of both sides as bench/e2e.py leaves it. Every
run starts from a fresh install of kata-deploy 3.30.0 + GPU Operator v26.3.3 by the
installer (not timed) and a Kata GPU workload: one Deployment per Kata node, its one pod
pinned there. Then, timed:
- the installer: `python -m installer upgrade --answers FILE --yes --json` to 4.1.0 + v26.7.0
  at rollout.maxUnavailable = each wave size; from its events: the waves, one node's roll
  (its cordon to its uncordon), the pods the plan evicted;
- the peer: `helm upgrade` of both charts to the same versions with the same values (read
  from the installer's own dry-run plan) and the charts' default RollingUpdate, no drain;
  timed until every kata-deploy and operand DaemonSet is on the new templates with all its
  pods updated and ready.
A watcher lists the workload's and the DaemonSets' pods twice a second throughout: a Kata
pod lost without eviction is one that went away, failed or restarted and was not evicted by
the plan; a pod "ran through a swap" when its node's kata-deploy or operand pods were
replaced while it was Running there. Printed per run: wall time, waves, one node's roll,
wall / ((waves + 1) x one node's roll at maxUnavailable=1), and those pod counts. Not a
test: the numbers depend on the machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from compiled import compile_product
from e2e import excluded_nodes, kata_nodes, prepare, run_installer
from watching import Watching

from tests.lab.answers import lab_answers
from tests.lab.kube import Kube
from tests.lab.lab import Lab, LabInfo

ROOT = Path(__file__).resolve().parents[1]
OLD = ("3.30.0", "v26.3.3")
NEW = ("4.1.0", "v26.7.0")
NAMESPACES = ("kata-system", "gpu-operator")
WORKLOAD_LABEL = "bench-upgrade"
VALIDATOR = "nvidia-sandbox-validator"  # the operand whose image carries the operator's tag
POLL = 0.5
RATIO_GOAL = 1.25  # "about" (N / wave + 1) x one node's


def extra_nodes(n: int) -> list[str]:
    """gpu-vfio-ready nodes beyond the default lab's two, to reach n Kata nodes."""
    return [f"gpu-node-{4 + i}=gpu-vfio-ready" for i in range(max(0, n - 2))]


def answers(info: LabInfo, versions: tuple[str, str], max_unavailable: int = 1) -> dict:
    kata = set(kata_nodes(info))
    data = lab_answers(info, sample_timeout=240, chart_timeout="3m", versions=versions,
                       choices={n.name: "kata" if n.name in kata else "leave"
                                for n in info.nodes})
    if versions == NEW:
        data["gpuOperator"]["resourceNaming"] = "pgpu"  # the workload asks for nvidia.com/pgpu
        data["rollout"] = {"maxUnavailable": max_unavailable}
    return data


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path


def workload(node: str) -> dict:
    """One Kata GPU pod pinned to `node` under a Deployment (it comes back after a drain)."""
    name = f"kata-gpu-{node}"
    labels = {"app": name, WORKLOAD_LABEL: "true"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "runtimeClassName": "kata-qemu-nvidia-gpu",
                     "nodeSelector": {"kubernetes.io/hostname": node},
                     "containers": [{"name": "app", "image": "nvcr.io/nvidia/k8s/cuda-sample:sleep",
                                     "resources": {"limits": {"nvidia.com/pgpu": "1",
                                                              "memory": "4Gi"}}}]}}}}


def workload_pods(kube: Kube) -> list[dict]:
    items, _ = kube.list("/api/v1/namespaces/default/pods", labelSelector=f"{WORKLOAD_LABEL}=true")
    return items


def running_per_node(kube: Kube, nodes: list[str]) -> dict[str, int]:
    out = dict.fromkeys(nodes, 0)
    for p in workload_pods(kube):
        node = p["spec"].get("nodeName")
        if node in out and p["status"].get("phase") == "Running" \
                and not p["metadata"].get("deletionTimestamp"):
            out[node] += 1
    return out


def wait_workload(kube: Kube, nodes: list[str], timeout: float) -> float:
    """Seconds until every Kata node runs exactly its one workload pod again."""
    t = time.monotonic()
    while (time.monotonic() - t) < timeout:
        if all(v == 1 for v in running_per_node(kube, nodes).values()):
            return time.monotonic() - t
        time.sleep(POLL)
    raise SystemExit(f"the workload is not whole after {timeout:.0f}s: "
                     f"{running_per_node(kube, nodes)}")


def start_workload(info: LabInfo, kube: Kube) -> None:
    for node in kata_nodes(info):
        kube.create("/apis/apps/v1/namespaces/default/deployments", workload(node))
    wait_workload(kube, kata_nodes(info), 180)


def runtime_daemonset(name: str) -> bool:
    """kata-deploy (the runtime on the host) and the operator's operands (vfio binding, the
    device plugin, the validator, CC): what a running Kata GPU pod depends on. Node Feature
    Discovery's worker, also in the operator's namespace, only labels nodes."""
    return name == "kata-deploy" or name.startswith("nvidia-")


@dataclass
class Watch(Watching):
    """The workload's pods and each node's DaemonSet pods, listed every POLL seconds."""

    kube: Kube
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> what it was
    swapped: set[str] = field(default_factory=set)  # uids Running through a DaemonSet swap
    swaps: list[str] = field(default_factory=list)  # what was swapped where, as it happened
    stop: threading.Event = field(default_factory=threading.Event)
    error: str = ""

    def _ds_pods(self) -> dict[str, dict[str, str]]:
        """node -> {pod uid: its DaemonSet}."""
        out: dict[str, dict[str, str]] = {}
        for ns in NAMESPACES:
            items, _ = self.kube.list(f"/api/v1/namespaces/{ns}/pods")
            for p in items:
                owner = next((o["name"] for o in p["metadata"].get("ownerReferences") or []
                              if o.get("kind") == "DaemonSet"), None)
                node = p["spec"].get("nodeName")
                if node and owner:
                    out.setdefault(node, {})[p["metadata"]["uid"]] = owner
        return out

    def _running(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for p in workload_pods(self.kube):
            uid = p["metadata"]["uid"]
            restarts = sum(c.get("restartCount", 0)
                           for c in p["status"].get("containerStatuses") or [])
            was = self.seen.setdefault(uid, {"name": f"default/{p['metadata']['name']}",
                                             "restarts": restarts, "phases": set()})
            was["phases"].add(p["status"].get("phase"))
            was["restarted"] = restarts > was["restarts"]
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"):
                out.setdefault(p["spec"].get("nodeName"), set()).add(uid)
        return out

    def watch(self) -> None:
        ds, running = self._ds_pods(), self._running()
        while not self.stop.wait(POLL):
            ds2, running2 = self._ds_pods(), self._running()
            for node in set(ds) | set(ds2):
                a, b = ds.get(node, {}), ds.get(node, {}) | ds2.get(node, {})
                changed = {b[uid] for uid in set(a) ^ set(ds2.get(node, {}))
                           if runtime_daemonset(b[uid])}
                under = running.get(node, set()) & running2.get(node, set())
                if changed and under:
                    self.swapped |= under
                    self.swaps.append(f"{node}: {', '.join(sorted(changed))} under "
                                      f"{len(under)} Running Kata pod(s)")
            ds, running = ds2, running2


    def verdict(self, evicted: set[str]) -> dict[str, int]:
        """Counts over the run: pods evicted by the plan, pods lost without eviction (gone,
        failed or restarted), pods that ran through a swap of their node's DaemonSet pods."""
        if self.error:
            raise SystemExit(f"the watcher failed: {self.error}")
        now = {p["metadata"]["uid"] for p in workload_pods(self.kube)
               if not p["metadata"].get("deletionTimestamp")}
        lost = {uid for uid, w in self.seen.items()
                if w["name"] not in evicted and (uid not in now or w.get("restarted")
                                                 or "Failed" in w["phases"])}
        return {"evicted": len({w["name"] for w in self.seen.values()} & evicted),
                "lost": len(lost), "swapped": len(self.swapped)}


def daemonsets_new(kube: Kube) -> str:
    """What keeps the DaemonSets from done ("" when done): kata-deploy's and the operands'
    templates at the new versions, every DaemonSet's pods updated and ready."""
    dss = [d for ns in NAMESPACES
           for d in kube.list(f"/apis/apps/v1/namespaces/{ns}/daemonsets")[0]]
    by_name = {d["metadata"]["name"]: d for d in dss}
    for name, tag in (("kata-deploy", NEW[0]), (VALIDATOR, NEW[1])):
        d = by_name.get(name)
        images = [c["image"] for c in (d["spec"]["template"]["spec"]["containers"] if d else [])]
        if not images or not any(i.endswith(f":{tag}") for i in images):
            return f"{name}'s template at {tag}"
    for d in dss:
        st, name = d.get("status") or {}, d["metadata"]["name"]
        want = st.get("desiredNumberScheduled", 0)
        if st.get("observedGeneration") != d["metadata"].get("generation") or \
                st.get("updatedNumberScheduled", 0) != want or st.get("numberReady", 0) != want:
            return f"{name}: {st.get('updatedNumberScheduled', 0)}/{want} updated, " \
                   f"{st.get('numberReady', 0)} ready"
    return ""


def wait_daemonsets(kube: Kube, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := daemonsets_new(kube)):
        if time.monotonic() > deadline:
            raise SystemExit(f"the DaemonSets are not new after {timeout:.0f}s: {left}")
        time.sleep(POLL)


def events_of(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            out.append(e)
    return out


def node_rolls(events: list[dict]) -> list[float]:
    """Seconds from each node's cordon to its uncordon in the upgrade's waves."""
    cordoned: dict[str, float] = {}
    rolls = []
    for e in events:
        if e.get("kind") != "change" or not str(e.get("path", "")).startswith("upgrade/wave-"):
            continue
        msg, node = str(e.get("message", "")), str(e.get("target", ""))
        if msg == f"cordon {node}":
            cordoned[node] = e["at"]
        elif msg == f"uncordon {node}" and node in cordoned:
            rolls.append(e["at"] - cordoned.pop(node))
    return rolls


def wave_stages(events: list[dict]) -> dict[str, float]:
    """Seconds the waves spent, summed over waves: waiting for the new templates (the wave's
    start to its first cordon), cordon and drain (to its last drain), replacing the pods (to
    its first verification pod), verification (to its last uncordon)."""
    marks: dict[str, dict[str, float]] = {}
    for e in events:
        path = str(e.get("path", ""))
        if not path.startswith("upgrade/wave-"):
            continue
        m, msg = marks.setdefault(path, {}), str(e.get("message", ""))
        if e.get("kind") == "step-started":
            m["start"] = e["at"]
        elif e.get("kind") == "change" and msg.startswith("cordon "):
            m.setdefault("cordon", e["at"])
        elif e.get("kind") == "change" and msg.startswith("drain "):
            m["drained"] = e["at"]
        elif e.get("kind") == "change" and msg.startswith("create pod "):
            m.setdefault("verify", e["at"])
        elif e.get("kind") == "change" and msg.startswith("uncordon "):
            m["end"] = e["at"]
    out = dict.fromkeys(("templates", "drain", "pods", "verify"), 0.0)
    for m in marks.values():
        if {"start", "cordon", "drained", "verify", "end"} <= set(m):
            out["templates"] += m["cordon"] - m["start"]
            out["drain"] += m["drained"] - m["cordon"]
            out["pods"] += m["verify"] - m["drained"]
            out["verify"] += m["end"] - m["verify"]
    return out


def evicted_by_plan(events: list[dict]) -> set[str]:
    return {name for e in events if e.get("kind") == "change"
            for name in (e.get("detail") or {}).get("evict") or []}


def installer_env(info: LabInfo, work: Path) -> dict[str, str]:
    return {**info.env(), "XDG_STATE_HOME": str(work / "state"),
            "GPU_KATA_HELM": info.binaries["helm"]}


def installed(lab: Lab, info: LabInfo, kube: Kube, work: Path) -> None:
    """The old pair installed by the installer on a bare lab, the workload running (not timed)."""
    kube.delete("/apis/apps/v1/namespaces/default/deployments",
                labelSelector=f"{WORKLOAD_LABEL}=true")
    prepare(lab, info)
    run_installer(info, write(work / "old.yaml", answers(info, OLD)), work)
    start_workload(info, kube)


@dataclass
class Result:
    label: str
    wall: float
    waves: int = 0
    rolls: list[float] = field(default_factory=list)
    pods: dict[str, int] = field(default_factory=dict)
    whole_after: float = 0.0  # the workload whole again, seconds after the wall time
    swaps: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)


def run_upgrade(lab: Lab, info: LabInfo, kube: Kube, work: Path, size: int) -> Result:
    installed(lab, info, kube, work)
    path = write(work / f"new-{size}.yaml", answers(info, NEW, size))
    with Watch(kube) as watch:
        t = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "installer", "upgrade", "--answers", str(path),
                            "--yes", "--json"], cwd=ROOT, env=installer_env(info, work),
                           capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        wall = time.monotonic() - t
        if r.returncode != 0:
            raise SystemExit(f"the upgrade failed (exit {r.returncode}):\n{r.stdout[-4000:]}\n"
                             f"{r.stderr[-2000:]}")
        whole = wait_workload(kube, kata_nodes(info), 180)
    events = events_of(r.stdout)
    waves = {e["path"] for e in events if e.get("kind") == "step-finished"
             and str(e.get("path", "")).startswith("upgrade/wave-")}
    return Result(f"installer, maxUnavailable={size}", wall, len(waves), node_rolls(events),
                  watch.verdict(evicted_by_plan(events)), whole, watch.swaps,
                  wave_stages(events))


def target_values(info: LabInfo, work: Path) -> dict[str, dict]:
    """release -> the values the installer's upgrade ends with (its dry-run plan's last
    helm upgrade of each chart, the rolling strategy given back): the peer uses the same."""
    path = write(work / "new-values.yaml", answers(info, NEW))
    r = subprocess.run([sys.executable, "-m", "installer", "upgrade", "--answers", str(path),
                        "--dry-run", "--json"], cwd=ROOT, env=installer_env(info, work),
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    plans = [e["plan"] for e in events_of(r.stdout) if e.get("kind") == "plan"]
    steps = {s["id"]: s for plan in plans for s in plan.get("steps", [])}
    out = {}
    for release in ("kata-deploy", "gpu-operator"):
        step = steps.get(f"upgrade/release/{release}")
        if step is None:
            raise SystemExit(f"no upgrade/release/{release} in the dry-run plan (exit "
                             f"{r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
        out[release] = step["params"]["values"]
    return out


def run_helm_upgrade(lab: Lab, info: LabInfo, kube: Kube, work: Path) -> Result:
    installed(lab, info, kube, work)
    values = target_values(info, work)
    helm, env = info.binaries["helm"], info.env()
    commands = []
    for release, ns, version in zip(("kata-deploy", "gpu-operator"), NAMESPACES, NEW,
                                    strict=True):
        file = work / f"{release}-values.yaml"
        file.write_text(yaml.safe_dump(values[release]))
        commands.append([helm, "upgrade", release, info.chart_versions[release][version],
                         "--namespace", ns, "--values", str(file)])
    with Watch(kube) as watch:
        t = time.monotonic()
        for cmd in commands:
            subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        wait_daemonsets(kube, 600)
        wall = time.monotonic() - t
        whole = wait_workload(kube, kata_nodes(info), 180)
    return Result("helm upgrade (RollingUpdate, no drain)", wall, pods=watch.verdict(set()),
                  whole_after=whole, swaps=watch.swaps)


def ratio_of(r: Result, one: float | None) -> float:
    """wall / ((waves + 1) x one node's roll), one node's as measured at maxUnavailable=1
    (else this run's own)."""
    if one is None:
        one = statistics.median(r.rolls) if r.rolls else float("nan")
    return r.wall / ((r.waves + 1) * one)


def report(results: list[Result]) -> float | None:
    ref = next((statistics.median(r.rolls) for r in results
                if r.label.endswith("maxUnavailable=1") and r.rolls), None)
    for r in results:
        p = r.pods
        for swap in r.swaps[:8]:
            print(f"  {r.label}: swapped {swap}")
        pods = (f"Kata pods: {p['evicted']} evicted by the plan, {p['lost']} lost without "
                f"eviction, {p['swapped']} ran through a swap of their node's DaemonSet pods")
        if not r.waves:
            print(f"{r.label:40} wall {r.wall:6.1f}s; {pods}; workload whole "
                  f"+{r.whole_after:.1f}s after")
            continue
        roll = statistics.median(r.rolls) if r.rolls else float("nan")
        one = ref if ref is not None else roll
        ratio = ratio_of(r, ref)
        print(f"{r.label:40} wall {r.wall:6.1f}s, {r.waves} wave(s), one node's roll "
              f"{roll:.1f}s (median of {len(r.rolls)}, cordon -> uncordon); wall / "
              f"(({r.waves} waves + 1) x {one:.1f}s) = {ratio:.2f}; "
              f"{pods}; workload whole +{r.whole_after:.1f}s after")
        print(f"  {r.label}: in the waves, " + ", ".join(
            f"{k} {v:.1f}s" for k, v in r.stages.items()) + " (summed over waves)")
    return ref


def add_lab_options(ap: argparse.ArgumentParser) -> None:
    """Where the benchmark's lab is: reused, or started here and left up or taken down."""
    ap.add_argument("--state", default=None,
                    help="the lab's state dir (else $LAB_STATE_DIR); a lab up there with the "
                         "same nodes is reused")
    ap.add_argument("--prefix", default=None, help="the lab's address prefix when started here")
    ap.add_argument("--keep", action="store_true", help="leave a lab this started up")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=6, help="Kata GPU nodes (default 6; at least 2)")
    ap.add_argument("--waves", default=None, help="wave sizes (default 1, N/2, N)")
    ap.add_argument("--quick", action="store_true", help="N=3, wave sizes 1 and 3 (CI)")
    add_lab_options(ap)
    a = ap.parse_args()
    if a.quick:
        a.n, a.waves = 3, "1,3"
    if a.n < 2:
        print("-n: at least 2 (the default lab's two Kata-ready nodes)", file=sys.stderr)
        return 2
    sizes = [int(x) for x in (a.waves or f"1,{max(2, a.n // 2)},{a.n}").split(",") if x]
    compile_product(ROOT)
    if a.prefix:
        os.environ["LAB_ADDRESS_PREFIX"] = a.prefix
    lab = Lab(a.state)
    was_up = lab.status().get("up", False)
    info = lab.up(extra_nodes=extra_nodes(a.n))
    kube = Kube(info.kubeconfig)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    print(f"Kata nodes ({len(kata_nodes(info))}): {', '.join(kata_nodes(info))}; left out: "
          f"{', '.join(excluded_nodes(info)) or 'none'}; {OLD[0]} + {OLD[1]} -> "
          f"{NEW[0]} + {NEW[1]}", flush=True)
    results: list[Result] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gki-upgrade-") as tmp:
            work = Path(tmp)
            for size in sizes:
                results.append(run_upgrade(lab, info, kube, work, size))
                print(f"{results[-1].label}: {results[-1].wall:.1f}s "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)
            results.append(run_helm_upgrade(lab, info, kube, work))
            print(f"{results[-1].label}: {results[-1].wall:.1f}s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    finally:
        if was_up or a.keep:
            lab.reset()
        else:
            lab.down()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    ref = report(results)
    ours = [r for r in results if r.waves]
    ratios = [ratio_of(r, ref) for r in ours]
    lost = sum(r.pods["lost"] + r.pods["swapped"] for r in ours)
    peer = results[-1]
    print(f"goal: wall about (N / wave + 1) x one node's roll -> "
          f"{'met' if max(ratios) <= RATIO_GOAL else 'NOT met'} (ratios "
          f"{', '.join(f'{x:.2f}' for x in ratios)}; met at <= {RATIO_GOAL})")
    print(f"goal: zero Kata pods lost that the plan did not drain -> "
          f"{'met' if lost == 0 else 'NOT met'} ({lost} lost or swapped under); helm upgrade: "
          f"{peer.pods['lost']} lost, {peer.pods['swapped']} swapped under, {peer.wall:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
