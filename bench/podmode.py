"""Pod mode against SSH mode: the same gather (discovery and the probe of every host) on a lab
of N pod-exec-capable hosts, over SSH and through host-access pods, at the same concurrency.

    sudo .venv/bin/python bench/podmode.py                  # N=100 at concurrency 20
    sudo .venv/bin/python bench/podmode.py --quick          # N=6 at concurrency 3 (CI)

One lab: the default lab's four hosts and N-4 extra gpu-vfio-ready ones (each its own sshd
host, each pod-exec capable: tests/lab/README.md "pod exec"), every one a Kata node, so
every one is probed. Each run is a fresh client process running the engine's gather as a
run does (consent given) with ssh.concurrency = hostAccess.concurrency; the modes alternate,
each --rounds times (the first pod run creates the installer's namespace, later ones find
it). A thread lists the host-access pods (by the installer's label) every POLL seconds while
a run goes: the most alive at once, and each pod's way through the lab (created, mapped to
its simulated host, Running, deleting, gone).

Printed per run: wall time of the gather, hosts probed OK / failed, pods created and deleted
(the run's ChangeEvents), the most host-access pods alive at once, the client's peak RSS and
CPU; then the pod/SSH ratios and where a pod's time goes. Exit 1 when more pods were alive
at once than the concurrency, when a host's facts differ between the modes (or between
runs), when a probe failed, or when a pod is left after a run. Not a test: the figures
depend on the machine (the load average is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiled import compile_product
from upgrade import add_lab_options, installer_env, write
from watching import Watching
from waves import Yes

from installer.hosts.podaccess import LEFTOVER_SELECTOR
from tests.lab.answers import lab_answers
from tests.lab.hostexec import HOLD_ANNOTATION
from tests.lab.kube import Kube
from tests.lab.lab import Lab, LabInfo

ROOT = Path(__file__).resolve().parents[1]
MODES = ("ssh", "pod")
POLL = 0.1
DEFAULT_HOSTS = 4  # the default lab's
SPANS = ("ssh host", "pod host", "create -> Running", "exec", "delete -> gone")


def extra_nodes(n: int) -> list[str]:
    """gpu-vfio-ready hosts beyond the default lab's four, to reach n hosts."""
    return [f"gpu-node-{DEFAULT_HOSTS + i}=gpu-vfio-ready" for i in range(max(0, n - 4))]


def answers(info: LabInfo, mode: str, concurrency: int) -> dict:
    data = lab_answers(info, choices={n.name: "kata" for n in info.nodes})
    data["ssh"]["concurrency"] = concurrency
    data["hostAccess"] = {"mode": mode, "concurrency": concurrency}
    return data


# --- the client: one gather in a fresh process ------------------------------------------------

def _timed(owner: object, name: str, spans: list[float]) -> None:
    """Wrap `owner.name` (a function, sync or async) to append each call's seconds to `spans`:
    the bench's own instrument, set in its client process only."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):
        async def wrapper(*args: Any, **kw: Any) -> Any:
            t = time.monotonic()
            try:
                return await original(*args, **kw)
            finally:
                spans.append(time.monotonic() - t)
    else:
        def wrapper(*args: Any, **kw: Any) -> Any:
            t = time.monotonic()
            try:
                return original(*args, **kw)
            finally:
                spans.append(time.monotonic() - t)
    setattr(owner, name, wrapper)


def _ssh_durations(spans: list[float]) -> None:
    """Each SSH host's own seconds (HostResult.duration), as the fan-out returns them."""
    from installer.engine.steps import hostrun

    original = hostrun.run_on_hosts

    async def wrapper(*args: Any, **kw: Any) -> Any:
        results = await original(*args, **kw)
        spans.extend(r.duration for r in results.values())
        return results

    hostrun.run_on_hosts = wrapper


def _exec_failures() -> dict[str, dict[str, Any]]:
    """Each exec that ended without an exit status, by pod: what the stream had carried
    (the probe's failure says only that it ended)."""
    from installer.cluster.podexec import PodExec

    found: dict[str, dict[str, Any]] = {}
    original = PodExec.run

    def wrapper(self: PodExec, stdin: bytes, timeout: float) -> Any:
        r = original(self, stdin, timeout)
        if r.exit_status is None:
            found[self.pod] = {"failure": r.failure, "protocol": r.protocol,
                               "stdout_bytes": len(r.stdout),
                               "stderr": r.stderr[-300:].decode("utf-8", "replace")}
        return r

    PodExec.run = wrapper  # type: ignore[method-assign]
    return found


def child(path: Path) -> int:
    """Gather with the answers at `path`; print one JSON line of what it found and cost, and
    how long each host took as the client saw it (SSH: the connection and probe; pod: the
    pod's create until seen Running, the exec, its delete until seen gone)."""
    from installer.answers.model import load_answers
    from installer.cluster.facts import Facts, ProbeFailure
    from installer.cluster.podexec import PodExec
    from installer.engine.events import ChangeEvent, Recorder
    from installer.engine.runner import Context, Engine
    from installer.engine.runtime import run_services
    from installer.engine.steps import default_executors
    from installer.hosts.podaccess import PodAccess
    from installer.redact import Redactor

    spans: dict[str, list[float]] = {k: [] for k in SPANS}
    _ssh_durations(spans["ssh host"])
    _timed(PodAccess, "run", spans["pod host"])
    _timed(PodAccess, "_start", spans["create -> Running"])
    _timed(PodExec, "run", spans["exec"])
    broken = _exec_failures()
    _timed(PodAccess, "remove", spans["delete -> gone"])
    loaded = load_answers(path)
    rec = Recorder()
    ctx = Context(dry_run=False, sinks=[rec], decider=Yes(),
                  services=run_services(loaded, Redactor()))
    cpu, t = time.process_time(), time.monotonic()
    _, facts = asyncio.run(Engine(loaded, ctx, default_executors()).gather(Facts(None)))
    wall, cpu = time.monotonic() - t, time.process_time() - cpu
    made = [e.message for e in rec.of(ChangeEvent) if e.applied]
    print(json.dumps({
        "wall": wall, "cpu": cpu,
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "created": sum(m.startswith("create pod ") for m in made),
        "deleted": sum(m.startswith("delete pod ") for m in made),
        "namespace": any(m.startswith("create namespace ") for m in made),
        "failed": {n: asdict(f) for n, f in facts.hosts.items() if isinstance(f, ProbeFailure)},
        "broken": broken,
        "spans": {k: statistics.median(v) for k, v in spans.items() if v},
        "hosts": {n: json.dumps(asdict(f), sort_keys=True, default=str)
                  for n, f in facts.hosts.items()},
    }))
    return 0


# --- the watcher: host-access pods listed while a run goes ------------------------------------

@dataclass
class PodTrail:
    """When the watcher first saw the pod, saw it mapped to its host (the lab's hold
    released), Running, deleting, and gone (monotonic seconds; 0: not seen)."""

    seen: float = 0.0
    mapped: float = 0.0
    running: float = 0.0
    deleting: float = 0.0
    gone: float = 0.0


@dataclass
class PodWatch(Watching):
    kube: Kube
    peak: int = 0
    lists: int = 0
    trails: dict[str, PodTrail] = field(default_factory=dict)  # by pod uid
    stop: threading.Event = field(default_factory=threading.Event)
    error: str = ""

    def alive(self) -> list[dict]:
        items, _ = self.kube.list("/api/v1/pods", labelSelector=LEFTOVER_SELECTOR)
        return items

    def _look(self) -> None:
        items, now = self.alive(), time.monotonic()
        self.lists += 1
        self.peak = max(self.peak, len(items))
        here = set()
        for p in items:
            meta = p["metadata"]
            here.add(meta["uid"])
            tr = self.trails.setdefault(meta["uid"], PodTrail(seen=now))
            if not tr.mapped and (meta.get("annotations") or {}).get(HOLD_ANNOTATION):
                tr.mapped = now
            if not tr.running and (p.get("status") or {}).get("phase") == "Running":
                tr.running = now
            if not tr.deleting and meta.get("deletionTimestamp"):
                tr.deleting = now
        for uid, tr in self.trails.items():
            if uid not in here and not tr.gone:
                tr.gone = now

    def watch(self) -> None:
        while not self.stop.is_set():
            self._look()
            self.stop.wait(POLL)
        self._look()


    def stages(self) -> dict[str, float]:
        """Median seconds of each stage of a pod, over the pods seen through all of them."""
        whole = [t for t in self.trails.values()
                 if t.seen and t.mapped and t.running and t.deleting and t.gone]
        if not whole:
            return {}
        return {
            "created -> mapped (the lab's hold)": statistics.median(t.mapped - t.seen
                                                                    for t in whole),
            "mapped -> Running": statistics.median(t.running - t.mapped for t in whole),
            "Running -> deleting (exec)": statistics.median(t.deleting - t.running
                                                            for t in whole),
            "deleting -> gone": statistics.median(t.gone - t.deleting for t in whole),
            "whole life": statistics.median(t.gone - t.seen for t in whole),
        }


@dataclass
class Run:
    mode: str
    round: int
    out: dict
    peak: int
    stages: dict[str, float]
    left: int
    load: float

    @property
    def ok(self) -> int:
        return len(self.out["hosts"]) - len(self.out["failed"])


def one_run(info: LabInfo, kube: Kube, path: Path, mode: str, rnd: int, work: Path) -> Run:
    load = os.getloadavg()[0]
    with PodWatch(kube) as watch:
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(path)],
                           cwd=ROOT, env=installer_env(info, work), capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit(f"the {mode} gather failed (exit {r.returncode}):\n"
                         f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    if watch.error:
        raise SystemExit(f"the pod watcher failed: {watch.error}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return Run(mode, rnd, out, watch.peak, watch.stages(), len(watch.alive()), load)


# --- the report ----------------------------------------------------------------------------

def report(runs: list[Run], n: int, concurrency: int) -> list[str]:
    """Print each run and the ratios; return what failed (empty: all held)."""
    bad: list[str] = []
    for r in runs:
        o = r.out
        pods = (f"pods created {o['created']}, deleted {o['deleted']}"
                + (" (+ the namespace)" if o["namespace"] else "")
                + f", most alive at once {r.peak} (bound {concurrency})")
        print(f"{r.mode} round {r.round}: wall {o['wall']:6.1f}s; hosts probed {r.ok} OK / "
              f"{len(o['failed'])} failed of {n}; {pods}; client peak RSS "
              f"{o['rss_kb'] / 1024:.0f} MB, CPU {o['cpu']:.1f}s; load before {r.load:.1f}")
        if r.peak > concurrency:
            bad.append(f"{r.mode} round {r.round}: {r.peak} host-access pods alive at once, "
                       f"more than the concurrency {concurrency}")
        if r.left:
            bad.append(f"{r.mode} round {r.round}: {r.left} host-access pod(s) left after it")
        if r.ok != n:
            missing = sorted(set(o["failed"]) | ({f"(missing {n - len(o['hosts'])})"}
                                                 if len(o["hosts"]) != n else set()))
            bad.append(f"{r.mode} round {r.round}: not every host probed: "
                       f"{', '.join(missing[:6])} {next(iter(o['failed'].values()), '')}")
        for pod, what in o.get("broken", {}).items():
            print(f"  {r.mode} round {r.round}: exec in {pod} ended without an exit status: "
                  f"{what}")
        want = n if r.mode == "pod" else 0
        if o["created"] != want or o["deleted"] != want:
            bad.append(f"{r.mode} round {r.round}: {o['created']} pods created, "
                       f"{o['deleted']} deleted; {want} expected")
    ref = runs[0].out["hosts"]
    for r in runs[1:]:
        differ = sorted(h for h in set(ref) | set(r.out["hosts"])
                        if ref.get(h) != r.out["hosts"].get(h))
        for h in differ[:3]:
            a, b = (json.loads(x.get(h) or "{}") for x in (ref, r.out["hosts"]))
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            print(f"  {r.mode} round {r.round}: {h} differs in {', '.join(keys[:5])}: "
                  + "; ".join(f"{k}: {str(a.get(k))[:120]} -> {str(b.get(k))[:120]}"
                              for k in keys[:2]))
        if differ:
            bad.append(f"{r.mode} round {r.round}: the facts of {len(differ)} host(s) differ "
                       f"from {runs[0].mode} round 1's: {', '.join(differ[:6])}")
    for rnd in sorted({r.round for r in runs}):
        by = {r.mode: r for r in runs if r.round == rnd}
        if set(by) == set(MODES):
            s, p = by["ssh"].out, by["pod"].out
            print(f"round {rnd}, pod/SSH: wall {p['wall'] / s['wall']:.2f}x "
                  f"({p['wall']:.1f}s / {s['wall']:.1f}s), client peak RSS "
                  f"{p['rss_kb'] / s['rss_kb']:.2f}x, client CPU {p['cpu'] / s['cpu']:.2f}x")
    for r in runs:
        print(f"{r.mode} round {r.round}, one host as the client saw it (median): " + ", ".join(
            f"{k} {v:.2f}s" for k, v in r.out["spans"].items()))
        if r.stages:
            print(f"{r.mode} round {r.round}, a pod as the API server showed it (median, listed "
                  f"every {POLL:g}s): " + ", ".join(f"{k} {v:.2f}s" for k, v in r.stages.items()))
    same = not any("differ" in b for b in bad)
    print(f"facts of every host the same in every run: {'yes' if same else 'NO'}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100, help="hosts probed (default 100; >= 4)")
    ap.add_argument("--concurrency", type=int, default=20,
                    help="ssh.concurrency and hostAccess.concurrency (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each mode (default 2)")
    ap.add_argument("--quick", action="store_true", help="6 hosts at concurrency 3 (CI)")
    add_lab_options(ap)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child)
    if a.quick:
        a.nodes, a.concurrency = 6, 3
    if a.nodes < DEFAULT_HOSTS or not 1 <= a.nodes <= 250 or a.concurrency < 1 or a.rounds < 1:
        print("--nodes: 4 to 250 (the default lab's four and extra hosts on one /24); "
              "--concurrency and --rounds: at least 1", file=sys.stderr)
        return 2
    compile_product(ROOT)
    if a.prefix:
        os.environ["LAB_ADDRESS_PREFIX"] = a.prefix
    lab = Lab(a.state)
    was_up = lab.status().get("up", False)
    t = time.monotonic()
    info = lab.up(extra_nodes=extra_nodes(a.nodes))
    print(f"lab: {len(info.nodes)} hosts, every one a Kata node ({time.monotonic() - t:.0f}s "
          f"to come up); concurrency {a.concurrency}", flush=True)
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    kube = Kube(info.kubeconfig)
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gki-podmode-") as tmp:
            work = Path(tmp)
            paths = {m: write(work / f"{m}.yaml", answers(info, m, a.concurrency))
                     for m in MODES}
            for rnd in range(1, a.rounds + 1):
                for mode in MODES:
                    runs.append(one_run(info, kube, paths[mode], mode, rnd, work))
                    print(f"{mode} round {rnd}: {runs[-1].out['wall']:.1f}s", flush=True)
    finally:
        if not (was_up or a.keep):
            lab.down()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    bad = report(runs, len(info.nodes), a.concurrency)
    for b in bad:
        print(f"FAILED: {b}")
    print(f"verdict: bound held, facts the same, nothing left -> "
          f"{'met' if not bad else 'NOT met'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
