"""The wizard at scale: nodes table and pod watch with 1,000 nodes and 10,000 pods, vs kubectl.

    sudo .venv/bin/python bench/scale.py            # 1,000 nodes / 10,000 pods (~4 min)
    sudo .venv/bin/python bench/scale.py --quick    # 100 / 1,000 (CI)

Starts a scale lab (`python -m tests.lab up --nodes scale`, its own state dir and address
prefix), then:

- nodes, in a fresh process (bench/nodes_render.py, which says why): the real wizard
  (`InstallerApp`, headless through `App.run_test`) discovers the lab with the real
  discovery and shows the Nodes screen; first render = the table drawn with every node.
  Peer: `kubectl get nodes`.

and in this one process:
- pods: the real pod watch (installer.engine.watch.PodWatch) feeding the wizard's pod table
  (screens.widgets.podtable.PodTable) through the wizard's own bridge (screens.bridge.TuiSink)
  in a Textual app; time to the first full list watched and shown. Peer: `kubectl get pods -A`.
- updates: a pod created, then deleted, in the API server; the time until the watch reports
  it and until the table has drawn it, measured on the same change as `kubectl get pods -w`
  running beside it (time until it prints the line).
- memory: each process's peak RSS (ru_maxrss); kubectl's peak from wait4.

Not a test: the numbers depend on the machine (load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from compiled import compile_product

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nodes_render import peak_mb, until
from textual.app import App, ComposeResult

from installer.cluster import kube as kube_mod
from installer.engine.events import PodStatus
from installer.engine.watch import PodWatch
from screens.bridge import LineBatcher, TuiSink
from screens.messages import PodsChanged
from screens.widgets.podtable import PodTable
from tests.lab.lab import SCALE_NAMESPACE, Lab

ROOT = Path(__file__).resolve().parents[1]
GOAL_RENDER, GOAL_UPDATE, GOAL_MB = 1.0, 0.2, 300


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
    """The pod table fed by the real watch through the wizard's bridge, as the wizard does
    (collapsed PodsChanged messages; see screens.bridge). Records when the watch reported a
    pod event and when the table had drawn it."""

    def __init__(self, kube: kube_mod.Kube, namespace: str) -> None:
        super().__init__()
        self.kube, self.namespace = kube, namespace
        self.sink = TuiSink(self.post_message, LineBatcher(self.post_message))
        self.watched: dict[tuple[str, str], float] = {}  # (pod, "Deleted" or "") -> time
        self.drawn: dict[tuple[str, str], float] = {}
        self.reported = 0

    def compose(self) -> ComposeResult:
        yield PodTable(id="pods")

    def on_mount(self) -> None:
        self.run_worker(PodWatch(self.kube, [self.namespace], self._emit).run())

    def _emit(self, event: PodStatus) -> None:
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


async def pod_watch(kubeconfig: str, env: dict[str, str], expect: int, changes: int
                    ) -> dict[str, object]:
    k = kube_mod.connect(kubeconfig, None)
    pods = f"/api/v1/namespaces/{SCALE_NAMESPACE}/pods"
    app = PodBench(k, SCALE_NAMESPACE)
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
        lat: dict[str, list[float]] = {"watch": [], "table": [], "kubectl": []}
        for i in range(changes):
            name = f"bench-pod-{i:03d}"
            for key, act in (((name, ""), lambda n=name: k.send_json(
                                "POST", pods, bench_pod(n, "scale-node-0000"))),
                             ((name, "Deleted"), lambda n=name: k.send_json(
                                 "DELETE", f"{pods}/{n}", {"apiVersion": "v1",
                                                          "kind": "DeleteOptions",
                                                          "gracePeriodSeconds": 0}))):
                t = time.monotonic()
                await asyncio.to_thread(act)
                await until(pilot, lambda k=key: k in app.drawn and k in peer.seen, 30,
                            f"{key} in the table and in kubectl's output")
                lat["watch"].append(app.watched[key] - t)
                lat["table"].append(app.drawn[key] - t)
                lat["kubectl"].append(peer.seen[key] - t)
        out["latency"] = lat
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
                    help="pods created and deleted to time updates (default 10, quick 3)")
    ap.add_argument("--state", default="/var/tmp/gki-bench-scale")
    ap.add_argument("--prefix", default="127.0.25", help="the lab's address prefix")
    ap.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    a = ap.parse_args()
    compile_product()
    nodes = a.nodes or (100 if a.quick else 1000)
    pods = a.pods or (1000 if a.quick else 10000)
    changes = a.changes or (3 if a.quick else 10)

    lab = lab_up(Path(a.state), a.prefix, nodes, pods)
    try:
        info = lab.info()
        env = {**info.env(), "KUBECONFIG": info.kubeconfig}
        os.environ["PATH"] = env["PATH"]  # discovery runs the lab's helm, as an operator's
        all_nodes = len(info.nodes)
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        kn = run_timed(["kubectl", "get", "nodes"], env)
        first = nodes_table(info.kubeconfig, all_nodes, {**os.environ, **env})
        shown, discovered = first["shown"], first["discovered"]
        kp = run_timed(["kubectl", "get", "pods", "-A"], env)
        res = asyncio.run(pod_watch(info.kubeconfig, env, pods, changes))
        mb_all = peak_mb()
    finally:
        if not a.keep:
            lab.down()
    lat = res["latency"]
    assert isinstance(lat, dict)
    print(f"\n## nodes table, {all_nodes} nodes")
    print(f"wizard: Nodes screen drawn with all {all_nodes} nodes {shown:.3f}s after start "
          f"(discovery {discovered:.3f}s, screen {shown - discovered:.3f}s; a fresh process); "
          f"the Cluster screen's first frame at {first['first_frame']:.3f}s; "
          f"CPU {first['cpu']:.2f}s; peak RSS {first['peak_mb']:.0f} MB")
    print(f"kubectl get nodes: {kn[0]:.3f}s ({kn[2]} lines), peak RSS {kn[1]:.0f} MB")
    print(f"goal: first render under 1 s -> {verdict(shown < GOAL_RENDER)} ({shown:.2f}s)")
    print(f"\n## pods, {pods} in {SCALE_NAMESPACE}")
    print(f"wizard: pod watch listed all {pods} in {res['watched']:.3f}s, the pod table drew "
          f"them at {res['shown']:.3f}s")
    print(f"kubectl get pods -A: {kp[0]:.3f}s ({kp[2]} lines), peak RSS {kp[1]:.0f} MB")
    worst = 0.0
    for side, label in (("watch", "wizard: pod watch reported"),
                        ("table", "wizard: pod table drew"),
                        ("kubectl", "kubectl get pods -w printed")):
        xs = [1000 * x for x in lat[side]]
        print(f"update latency, {label}: median {statistics.median(xs):.0f} ms, "
              f"max {max(xs):.0f} ms over {len(xs)} changes (create + delete)")
        if side == "table":
            worst = max(xs) / 1000
            print("  each change, table drawn (create, delete, ...): "
                  + " ".join(f"{x:.0f}" for x in xs) + " ms")
    print(f"goal: updates under 200 ms -> {verdict(worst < GOAL_UPDATE)} "
          f"(worst {1000 * worst:.0f} ms)")
    print(f"\n## memory: this process peaked at {mb_all:.0f} MB (the pod watch and table with "
          f"{pods} pods), the Nodes screen's at {first['peak_mb']:.0f} MB; "
          f"kubectl get pods -w peaked at {res['peer_mb']:.0f} MB")
    print(f"goal: under 300 MB -> {verdict(mb_all < GOAL_MB)} ({mb_all:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
