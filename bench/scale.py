"""The wizard at scale: nodes table and pod watch with 1,000 nodes and 10,000 pods, vs kubectl.

    sudo .venv/bin/python bench/scale.py            # 1,000 nodes / 10,000 pods (~4 min)
    sudo .venv/bin/python bench/scale.py --nodes 5000 --changes 100 --bursts 2
    sudo .venv/bin/python bench/scale.py --quick    # 100 / 1,000 (CI)

Starts a scale lab (`python -m tests.lab up --nodes scale`, its own state dir and address
prefix), then:

- nodes, in a fresh process (bench/nodes_render.py, which says why): the real wizard
  (`InstallerApp`, headless through `App.run_test`) discovers the lab with the real
  discovery and shows the Nodes screen; first render = the table drawn with every node.
  Peer: `kubectl get nodes`. `--node-runs N` repeats it in N fresh processes (median, range).

and in this one process:
- pods: the real pod watch (installer.engine.watch.PodWatch) feeding the wizard's pod table
  (screens.widgets.podtable.PodTable) through the wizard's own bridge (screens.bridge.TuiSink)
  in a Textual app; time to the first full list watched and shown. Peer: `kubectl get pods -A`.
- updates: single changes (a pod created, then deleted, in the API server, one at a time)
  and bursts (`--burst-size` pods created at once by concurrent writes, then deleted at once);
  for each pod change the time from its API write until the watch reports it, until the
  table has drawn it, and until `kubectl get pods -w` running beside it prints its line;
  p50 / p95 / max. The table's own part - from the watch's event, through the wizard's
  message path (TuiSink -> PodsChanged -> update_pods), to the frame showing it - is judged
  against the goal.
- memory: each process's peak RSS (ru_maxrss); kubectl's peak from wait4.

Not a test: the numbers depend on the machine (load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from compiled import compile_product

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodes_render import peak_mb, until
from textual.app import App, ComposeResult

from installer.answers.model import Cluster
from installer.cluster import kube as kube_mod
from installer.engine.events import Event, PodStatus
from screens.bridge import LineBatcher, TuiSink
from screens.messages import PodsChanged
from screens.services import KubeInspector
from screens.widgets.podtable import PodTable
from tests.lab.lab import SCALE_NAMESPACE, Lab

ROOT = Path(__file__).resolve().parents[1]
GOAL_RENDER, GOAL_UPDATE, GOAL_MB = 1.0, 0.1, 300


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


# A command's own peak RSS. Not wait4 on a child of this process: Linux carries the parent's
# high-water mark across fork+exec into the child's ru_maxrss, so a fat parent inflates it.
# A small Python in between forks the command and reports its wait4 figure on stderr.
_MAXRSS = ("import os, sys\n"
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    os.execvp(sys.argv[1], sys.argv[1:])\n"
           "_, status, usage = os.wait4(pid, 0)\n"
           "sys.stderr.write(f'maxrss-kb {usage.ru_maxrss}\\n')\n"
           "sys.exit(os.waitstatus_to_exitcode(status))\n")


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, the command's peak MB, output lines) of one command."""
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-S", "-c", _MAXRSS, *argv], env=env,
                       capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - t
    if r.returncode:
        raise SystemExit(f"{' '.join(argv)} failed (exit {r.returncode}): {r.stderr[-500:]}")
    kb = int(r.stderr.rsplit("maxrss-kb ", 1)[1])
    return elapsed, kb / 1024, len(r.stdout.splitlines())


def vm_hwm_mb(pid: int) -> float:
    """Peak RSS so far of a running process (its own, since exec)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank rule (p95 of 20 values is the 19th)."""
    ordered = sorted(xs)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def spread(xs: list[float]) -> str:
    ms = [1000 * x for x in xs]
    return (f"p50 {percentile(ms, 0.5):.0f} ms, p95 {percentile(ms, 0.95):.0f} ms, "
            f"max {max(ms):.0f} ms")


def nodes_table(kubeconfig: str, expect: int, env: dict[str, str]) -> dict[str, float]:
    """The wizard's first render of the Nodes screen, in a fresh process (see
    bench/nodes_render.py for why)."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "nodes_render.py"), kubeconfig,
                        str(expect)], env=env, capture_output=True, text=True, check=False)
    if r.returncode:
        raise SystemExit(f"bench/nodes_render.py failed (exit {r.returncode}): "
                         f"{(r.stderr or r.stdout)[-800:]}")
    return json.loads(r.stdout.splitlines()[-1])


# --------------------------------------------------------------------------- pod watch

class PodBench(App):
    """The pod table fed by the wizard's watch (KubeInspector.watch_pods) through the
    wizard's bridge, as the wizard does (collapsed PodsChanged messages; see screens.bridge).
    Records when the watch reported a pod event and when the table had drawn it."""

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        super().__init__()
        self.inspector = KubeInspector(Cluster(kubeconfig=kubeconfig))
        self.namespace = namespace
        self.sink = TuiSink(self.post_message, LineBatcher(self.post_message))
        self.watched: dict[tuple[str, str], float] = {}  # (pod, "Deleted" or "") -> time
        self.drawn: dict[tuple[str, str], float] = {}
        self.reported = 0

    def compose(self) -> ComposeResult:
        yield PodTable(id="pods")

    def on_mount(self) -> None:
        gc.freeze()  # as InstallerApp does at mount: full passes skip what exists at the start
        self.run_worker(self.inspector.watch_pods((self.namespace,), self._emit))

    def on_unmount(self) -> None:
        gc.unfreeze()

    def _emit(self, event: Event) -> None:
        if not isinstance(event, PodStatus):
            raise SystemExit(f"the pod watch reported {event!r}")
        self.reported += 1
        key = (event.pod, "Deleted" if event.phase == "Deleted" else "")
        self.watched.setdefault(key, time.monotonic())
        self.sink.emit(event)

    def on_pods_changed(self, message: PodsChanged) -> None:
        pods = self.sink.drain_pods()
        self.query_one(PodTable).update_pods(pods)
        keys = [(p.pod, "Deleted" if p.phase == "Deleted" else "") for p in pods]

        def stamp() -> None:
            now = time.monotonic()
            for k in keys:
                self.drawn.setdefault(k, now)

        self.call_after_refresh(stamp)


class KubectlWatch:
    """`kubectl get pods -w` beside the wizard: when did it print each pod's line."""

    def __init__(self, env: dict[str, str], namespace: str) -> None:
        self.proc = subprocess.Popen(
            ["kubectl", "get", "pods", "-n", namespace, "-w", "--output-watch-events",
             "--no-headers"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        self.seen: dict[tuple[str, str], float] = {}
        self.lines = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            now = time.monotonic()
            self.lines += 1
            parts = line.split()
            if len(parts) >= 2:
                self.seen.setdefault((parts[1], "Deleted" if parts[0] == "DELETED" else ""),
                                     now)

    def stop(self) -> float:
        """Its peak RSS in MB; then it is ended."""
        mb = vm_hwm_mb(self.proc.pid)
        self.proc.terminate()
        self.proc.wait()
        return mb


def bench_pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": SCALE_NAMESPACE},
            "spec": {"nodeName": node, "containers": [
                {"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}


Key = tuple[str, str]  # (pod, "Deleted" or "")
SIDES = ("watch", "table", "kubectl", "table_part")


class FullCollections:
    """When the garbage collector's full passes ran in this process: a slow update that held
    one is the collector's, not the table's."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self._start = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._start = time.monotonic()
        else:
            self.spans.append((self._start, time.monotonic()))

    def within(self, start: float, end: float) -> float:
        """Seconds of full passes between start and end."""
        return sum(min(b, end) - max(a, start) for a, b in self.spans if a < end and b > start)


class PodChanges:
    """Pod changes written to the API server, each timed from just before its write."""

    def __init__(self, kube: kube_mod.Kube, app: PodBench, peer: KubectlWatch) -> None:
        self.kube, self.app, self.peer = kube, app, peer
        self.path = f"/api/v1/namespaces/{SCALE_NAMESPACE}/pods"
        self.written: dict[Key, float] = {}
        self.collections = FullCollections()
        self.slow: list[tuple[float, float]] = []  # (watch -> drawn, full passes in it) > goal

    def write(self, key: Key) -> None:
        name, deleted = key
        self.written[key] = time.monotonic()
        if deleted:
            self.kube.send_json("DELETE", f"{self.path}/{name}", {
                "apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
        else:
            self.kube.send_json("POST", self.path, bench_pod(name, "scale-node-0000"))

    def seen(self, keys: list[Key]) -> bool:
        return all(k in self.app.drawn and k in self.peer.seen for k in keys)

    def record(self, keys: list[Key], into: dict[str, list[float]]) -> None:
        for k in keys:
            into["watch"].append(self.app.watched[k] - self.written[k])
            into["table"].append(self.app.drawn[k] - self.written[k])
            into["kubectl"].append(self.peer.seen[k] - self.written[k])
            into["table_part"].append(self.app.drawn[k] - self.app.watched[k])
            if into["table_part"][-1] > GOAL_UPDATE:
                self.slow.append((into["table_part"][-1], self.collections.within(
                    self.app.watched[k], self.app.drawn[k])))


async def pod_watch(kubeconfig: str, env: dict[str, str], expect: int, changes: int,
                    bursts: int, burst_size: int) -> dict[str, object]:
    k = kube_mod.connect(kubeconfig, None)
    app = PodBench(kubeconfig, SCALE_NAMESPACE)
    peer = KubectlWatch(env, SCALE_NAMESPACE)
    t0 = time.monotonic()
    out: dict[str, object] = {}
    async with app.run_test(size=(160, 50)) as pilot:
        table = app.query_one(PodTable)
        await until(pilot, lambda: len(app.watched) >= expect, 120, f"{expect} pods watched")
        out["watched"] = time.monotonic() - t0
        await until(pilot, lambda: table.row_count >= expect and len(app.drawn) >= expect,
                    120, f"{expect} rows drawn")
        out["shown"] = time.monotonic() - t0
        await until(pilot, lambda: peer.lines >= expect, 120, "kubectl's first listing")
        out["peer_list_lines"] = peer.lines
        out["mb_after_list"] = peak_mb()
        w = PodChanges(k, app, peer)
        single: dict[str, list[float]] = {side: [] for side in SIDES}
        for i in range(changes):
            for key in ((f"bench-pod-{i:03d}", ""), (f"bench-pod-{i:03d}", "Deleted")):
                await asyncio.to_thread(w.write, key)
                await until(pilot, lambda key=key: w.seen([key]), 30,
                            f"{key} in the table and in kubectl's output")
                w.record([key], single)
        burst: dict[str, list[float]] = {side: [] for side in SIDES}
        spans: list[float] = []
        for b in range(bursts):
            names = [f"burst-{b}-{i:03d}" for i in range(burst_size)]
            for deleted in ("", "Deleted"):
                keys = [(n, deleted) for n in names]
                start = time.monotonic()
                # concurrent writes (the default executor's threads): each pod is timed from
                # its own write, the burst's span from the first
                await asyncio.gather(*(asyncio.to_thread(w.write, key) for key in keys))
                await until(pilot, lambda keys=keys: w.seen(keys), 60,
                            f"burst {b}'s {len(keys)} changes in the table and kubectl")
                spans.append(max(app.drawn[key] for key in keys) - start)
                w.record(keys, burst)
        out["single"], out["burst"], out["spans"] = single, burst, spans
        out["slow"] = w.slow
        out["full_passes"] = [b - a for a, b in w.collections.spans]
    out["peer_mb"] = peer.stop()
    out["reported"] = app.reported
    return out


# --------------------------------------------------------------------------- main

def lab_up(state: Path, prefix: str, nodes: int, pods: int) -> Lab:
    os.environ["LAB_ADDRESS_PREFIX"] = prefix  # the lab's own hosts; also for Lab.down
    os.environ["LAB_STATE_DIR"] = str(state)
    t = time.monotonic()
    subprocess.run([sys.executable, "-m", "tests.lab", "up", "--nodes", "scale",
                    "--scale-nodes", str(nodes), "--scale-pods", str(pods),
                    "--state-dir", str(state)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"scale lab up with {nodes} nodes / {pods} pods in {time.monotonic() - t:.0f}s "
          f"({state})")
    return Lab(state)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 nodes / 1,000 pods (CI)")
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--pods", type=int, default=None)
    ap.add_argument("--changes", type=int, default=None,
                    help="pods created and deleted one at a time (2 updates each; "
                         "default 100, quick 3)")
    ap.add_argument("--bursts", type=int, default=None,
                    help="bursts of pods created at once, then deleted at once (default 2, "
                         "quick 1)")
    ap.add_argument("--burst-size", type=int, default=None, help="default 100, quick 20")
    ap.add_argument("--node-runs", type=int, default=1,
                    help="fresh processes drawing the Nodes screen (median and range)")
    ap.add_argument("--state", default="/var/tmp/gki-bench-scale")
    ap.add_argument("--prefix", default="127.0.25", help="the lab's address prefix")
    ap.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    a = ap.parse_args()
    compile_product()
    nodes = a.nodes or (100 if a.quick else 1000)
    pods = a.pods or (1000 if a.quick else 10000)
    changes = a.changes or (3 if a.quick else 100)
    bursts = a.bursts if a.bursts is not None else (1 if a.quick else 2)
    burst_size = a.burst_size or (20 if a.quick else 100)

    lab = lab_up(Path(a.state), a.prefix, nodes, pods)
    try:
        info = lab.info()
        env = {**info.env(), "KUBECONFIG": info.kubeconfig}
        os.environ["PATH"] = env["PATH"]  # discovery runs the lab's helm, as an operator's
        all_nodes = len(info.nodes)
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        kn = run_timed(["kubectl", "get", "nodes"], env)
        firsts = [nodes_table(info.kubeconfig, all_nodes, {**os.environ, **env})
                  for _ in range(max(1, a.node_runs))]
        kp = run_timed(["kubectl", "get", "pods", "-A"], env)
        res = asyncio.run(pod_watch(info.kubeconfig, env, pods, changes, bursts, burst_size))
        mb_all = peak_mb()
        load_after = os.getloadavg()[0]
    finally:
        if not a.keep:
            lab.down()
    first = sorted(firsts, key=lambda f: f["shown"])[len(firsts) // 2]  # the median run
    shown, discovered = first["shown"], first["discovered"]
    nodes_mb = max(f["peak_mb"] for f in firsts)
    print(f"\n## nodes table, {all_nodes} nodes")
    print(f"wizard: Nodes screen drawn with all {all_nodes} nodes {shown:.3f}s after start "
          f"(discovery {discovered:.3f}s, screen {shown - discovered:.3f}s; a fresh process); "
          f"the Cluster screen's first frame at {first['first_frame']:.3f}s; "
          f"CPU {first['cpu']:.2f}s; peak RSS {first['peak_mb']:.0f} MB")
    if len(firsts) > 1:
        print(f"  {len(firsts)} runs, median shown: " + " ".join(
            f"{f['shown']:.3f}s/{f['peak_mb']:.0f}MB" for f in firsts))
    print(f"kubectl get nodes: {kn[0]:.3f}s ({kn[2]} lines), peak RSS {kn[1]:.0f} MB")
    rows_first = first["first_rows"]
    print(f"wizard: the Nodes screen, opened as discovery starts, drew its first rows (the "
          f"first page read) {rows_first:.3f}s after start; every node at {shown:.3f}s")
    if len(firsts) > 1:
        print(f"  {len(firsts)} runs, first rows: " + " ".join(
            f"{f['first_rows']:.3f}s" for f in firsts))
    print(f"goal: first render under 1 s -> {verdict(rows_first < GOAL_RENDER)} "
          f"(first rows {rows_first:.2f}s; the whole list {shown:.2f}s)")
    print(f"\n## pods, {pods} in {SCALE_NAMESPACE}")
    print(f"wizard: pod watch listed all {pods} in {res['watched']:.3f}s, the pod table drew "
          f"them at {res['shown']:.3f}s")
    print(f"kubectl get pods -A: {kp[0]:.3f}s ({kp[2]} lines), peak RSS {kp[1]:.0f} MB")
    worst = []
    for mode, what in (("single", "single changes (create, delete, one at a time)"),
                       ("burst", f"bursts of {burst_size} (created at once, deleted at once)")):
        lat = res[mode]
        assert isinstance(lat, dict)
        if not lat["table"]:
            continue
        print(f"update latency, {what}, {len(lat['table'])} pod changes, from the API write:")
        for side, label in (("watch", "wizard: pod watch reported"),
                            ("table", "wizard: pod table drew"),
                            ("kubectl", "kubectl get pods -w printed"),
                            ("table_part", "wizard: watch event -> table drawn")):
            print(f"  {label:36} {spread(lat[side])}")
        worst.append((mode, percentile(lat["table_part"], 0.95), max(lat["table_part"])))
    spans = res["spans"]
    assert isinstance(spans, list)
    if spans:
        print("bursts, first write to the burst's last pod drawn: "
              + " ".join(f"{1000 * x:.0f}" for x in spans) + " ms")
    slow, passes = res["slow"], res["full_passes"]
    assert isinstance(slow, list) and isinstance(passes, list)
    print(f"full garbage collections during the changes: {len(passes)}, "
          f"{1000 * sum(passes):.0f} ms in all; pod changes over 100 ms (watch -> drawn): "
          f"{len(slow)}, of which {sum(1 for _, g in slow if g > 0)} held one ("
          + ", ".join(f"{1000 * t:.0f} ms with {1000 * g:.0f} ms of collection"
                      for t, g in sorted(slow, reverse=True)[:5]) + ")")
    met = all(m <= GOAL_UPDATE for _, _, m in worst)
    print(f"goal: pod table updates <= 100 ms (watch event -> drawn) -> {verdict(met)} ("
          + "; ".join(f"{mode}: p95 {1000 * p:.0f} ms, max {1000 * m:.0f} ms"
                      for mode, p, m in worst) + ")")
    print(f"\n## memory: this process peaked at {mb_all:.0f} MB (the pod watch and table with "
          f"{pods} pods), the Nodes screen's at {nodes_mb:.0f} MB; "
          f"kubectl get pods -w peaked at {res['peer_mb']:.0f} MB")
    mb = max(mb_all, nodes_mb)
    print(f"goal: under 300 MB -> {verdict(mb < GOAL_MB)} ({mb:.0f} MB)")
    print(f"load average after: {load_after:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
