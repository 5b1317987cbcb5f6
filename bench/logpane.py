"""Log pane benchmark: a pod flooding its log while the operator presses keys.

Feeds lines at increasing rates into the wizard's real log pane (InstallerApp on the install
screen, its Pod log tab) in a headless app, through the same path a followed pod log takes:
a producer thread pushes batches into the app's LineBatcher, the app drains them into the
pod's ring and the pane. Meanwhile a key is pressed every 100 ms (alternately Up and End)
and the time until its action runs is measured. Side by side: the same lines written plainly
to a terminal (`cat` into a pty, which is what `kubectl logs -f` amounts to), and the time
the real command takes to show its first screen in a pty.

Headless means the final step - turning a frame into terminal escape codes - is skipped;
the first-frame measurement runs the real program in a real pty.

Usage: python bench/logpane.py [--quick] [--seconds S] [--rates 20000,50000,...]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import itertools
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from compiled import compile_product

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_RATE = 50_000
GOAL_KEY_MS = 100.0
GOAL_FIRST_FRAME_S = 1.0
KEY = ("bench", "flood-7f9c4-x2v8q")


def sample_lines(n: int = 4096) -> list[str]:
    """Lines shaped like a busy operator pod's log."""
    return [f"2025-01-01T10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z INFO "
            f"controller reconcile node=gpu-{i % 200:03d} device=0000:{i % 256:02x}:00.0 "
            f"state=vfio-pci-ready attempt={i % 7} msg=\"device bound, CDI spec written\""
            for i in range(n)]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def measure(rate: int, seconds: float, lines: list[str]) -> dict[str, float]:
    from textual import events

    from screens.app import InstallerApp
    from screens.services import Services
    from screens.state import WizardState

    app = InstallerApp(WizardState(), services=Services(recorded=True), start="install")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.show_log(*KEY)
        pane = screen.query_one("#pod-log").pane
        pane.focus()
        pane.notify_moves = True
        handled: list[float] = []
        original = pane._moved

        def moved(action: str) -> None:
            handled.append(time.perf_counter())
            original(action)

        pane._moved = moved
        await pilot.pause()
        rss_before = rss_mb()
        stop = threading.Event()
        produced = [0]

        def produce() -> None:
            start = time.perf_counter()
            n = 0
            size = len(lines)
            while not stop.is_set():
                due = int(rate * (time.perf_counter() - start))
                if due > n:
                    i, j = n % size, due - n
                    batch = lines[i:i + j] if i + j <= size else \
                        (lines[i:] + lines[:j - (size - i)])[:j]
                    app.lines.push(KEY, batch)
                    n = due
                time.sleep(0.005)
            produced[0] = n

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        sent: list[float] = []
        keys = itertools.cycle(("up", "end"))
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            await asyncio.sleep(0.1)
            sent.append(time.perf_counter())
            app.post_message(events.Key(next(keys), None))
        stop.set()
        producer.join()
        elapsed = time.perf_counter() - t0
        for _ in range(100):  # let the last batch and key land
            await pilot.pause(0.01)
            if len(handled) >= len(sent) and \
                    pane.ring.dropped + len(pane.ring) >= app.lines.pushed:
                break
        ingested = pane.ring.dropped + len(pane.ring)
        latencies = [(h - s) * 1000 for s, h in zip(sent, handled, strict=False)]
        result = {
            "rate": rate, "seconds": elapsed, "produced": produced[0], "ingested": ingested,
            "ingest_rate": ingested / elapsed, "ring": len(pane.ring),
            "keys_sent": len(sent), "keys_handled": len(handled),
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": (sorted(latencies)[int(0.95 * (len(latencies) - 1))] if latencies
                    else float("nan")),
            "max": max(latencies) if latencies else float("nan"),
            "rss_before": rss_before, "rss_after": rss_mb(),
        }
        app.exit()
    return result


def _pty_pair(cols: int = 80, rows: int = 24) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    return master, slave


def _drain(master: int, proc: subprocess.Popen, until: bytes | None = None,
           timeout: float = 30.0) -> tuple[int, float | None]:
    """Read the pty like a terminal would; returns bytes read and when `until` appeared."""
    total = 0
    seen_at = None
    tail = b""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            total += len(chunk)
            if until is not None and seen_at is None:
                tail = (tail + chunk)[-4096:]
                if until in tail:
                    seen_at = time.perf_counter()
                    return total, seen_at
        elif proc.poll() is not None:
            break
    return total, seen_at


def plain_terminal(lines: list[str], count: int) -> float:
    """`cat` of the same lines into a pty, drained like a terminal: lines per second."""
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        reps = count // len(lines) + 1
        f.write(("\n".join(lines) + "\n") * reps)
        path = f.name
    try:
        master, slave = _pty_pair(120, 40)
        start = time.perf_counter()
        proc = subprocess.Popen(["cat", path], stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        _drain(master, proc, timeout=120)
        proc.wait()
        elapsed = time.perf_counter() - start
        os.close(master)
        return len(lines) * reps / elapsed
    finally:
        os.unlink(path)


# The floor under the first frame: Textual itself, drawing the Cluster screen's kind of
# widgets with nothing of ours imported (the same pty, the same marker).
BARE_APP = """
from textual.app import App
from textual.widgets import Footer, Input, Label
class Bare(App):
    def compose(self):
        yield Label("Kubeconfig")
        yield Input()
        yield Footer()
Bare().run()
"""


def first_frame(cmd: list[str] | None = None) -> float:
    """Seconds from starting the real command (or `cmd`) in a pty until its first screen
    shows."""
    if cmd is None:
        exe = Path(sys.executable).parent / "gpu-kata-installer"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "screens.cli"]
        ex = ROOT / "installer" / "examples"
        cmd += ["--answers", str(ex / "answers.yaml"), "--wizard", "--facts",
                str(ex / "facts.yaml")]
    master, slave = _pty_pair(80, 24)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24",
           "XDG_STATE_HOME": tempfile.mkdtemp(prefix="gki-bench-")}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    _, seen = _drain(master, proc, until=b"Kubeconfig", timeout=30)
    os.write(master, b"\x11")  # ctrl+q
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    try:
        while os.read(master, 1 << 16):
            pass
    except OSError:
        pass
    os.close(master)
    if seen is None:
        raise RuntimeError("the wizard never showed its first screen")
    return seen - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short run (CI keeps it honest)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rates", default=None, help="comma-separated lines per second")
    args = parser.parse_args()
    compile_product()
    seconds = args.seconds or (1.0 if args.quick else 4.0)
    rates = [int(r) for r in args.rates.split(",")] if args.rates else \
        ([20_000, 50_000] if args.quick else [10_000, 20_000, 50_000, 100_000, 200_000, 400_000])
    lines = sample_lines()
    print(f"log pane: a pod floods its log while a key is pressed every 100 ms "
          f"({seconds:.0f} s per rate, {os.cpu_count()} cpus, lines ~{len(lines[0])} chars)")
    print(f"{'offered/s':>10} {'ingested/s':>11} {'kept up':>8} {'key p50':>8} {'p95':>7} "
          f"{'max ms':>7} {'keys':>7} {'ring':>7} {'rss MB':>7}")
    results = []
    total_lines = 0
    rss_first = None
    for rate in rates:
        r = asyncio.run(measure(rate, seconds, lines))
        results.append(r)
        total_lines += r["ingested"]
        rss_first = rss_first if rss_first is not None else r["rss_before"]
        kept = r["ingested"] >= 0.95 * r["produced"]
        print(f"{rate:>10,} {r['ingest_rate']:>11,.0f} {'yes' if kept else 'NO':>8} "
              f"{r['p50']:>8.1f} {r['p95']:>7.1f} {r['max']:>7.1f} "
              f"{r['keys_handled']:>3}/{r['keys_sent']:<3} {r['ring']:>7,} "
              f"{r['rss_after']:>7.1f}")
        r["kept"] = kept
    plain = plain_terminal(lines, 200_000 if args.quick else 2_000_000)
    print(f"{'plain terminal (cat into a pty, like kubectl logs -f)':<55} {plain:>12,.0f} lines/s, "
          "keypress n/a (cat reads no keys)")
    runs = 1 if args.quick else 7
    frames, bare = [], []
    for _ in range(runs):  # interleaved, so the machine's load hits both alike
        frames.append(first_frame())
        bare.append(first_frame([sys.executable, "-c", BARE_APP]))
    frame = statistics.median(frames)
    print(f"{'first frame of the wizard in a pty (80x24)':<55} {frame:>12.2f} s median of {runs}")
    print(f"{'first frame of a bare Textual app (Label, Input, Footer)':<55} "
          f"{statistics.median(bare):>12.2f} s median of {runs} (load {os.getloadavg()[0]:.1f})")

    at_goal = [r for r in results if r["rate"] >= GOAL_RATE]
    ok_rate = bool(at_goal) and all(r["kept"] for r in at_goal if r["rate"] == GOAL_RATE)
    worst_key = max((r["max"] for r in results), default=0)
    key_ok = worst_key < GOAL_KEY_MS and all(r["keys_handled"] >= r["keys_sent"]
                                            for r in results)
    best = max((r["ingest_rate"] for r in results if r["kept"]), default=0)
    verdict = "meets" if ok_rate and key_ok else "MISSES"
    print(f"goal: ingest >= {GOAL_RATE:,} lines/s with keypresses under {GOAL_KEY_MS:.0f} ms "
          f"-> {verdict} (kept up to {best:,.0f} lines/s; slowest key {worst_key:.0f} ms "
          "at any rate)")
    grew = max(r["rss_after"] for r in results) - rss_first
    bounded = all(r["ring"] <= 10_000 for r in results)
    print(f"goal: memory bounded -> {'meets' if bounded else 'MISSES'} (ring <= 10,000 lines; "
          f"rss grew {grew:.0f} MB over {total_lines:,.0f} lines)")
    print(f"goal: first frame under {GOAL_FIRST_FRAME_S:.0f} s -> "
          f"{'meets' if frame < GOAL_FIRST_FRAME_S else 'MISSES'} ({frame:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
