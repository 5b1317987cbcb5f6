"""Startup benchmark: `gpu-kata-installer --help` against `helm version` and `kubectl version`.

Run side by side in one script so machine noise hits all of them alike. Prints the median
and best of N runs for each, and whether our --help meets its goal (< 300 ms).
Usage: python bench/startup.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from compiled import compile_product

GOAL_MS = 300.0
ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append((time.perf_counter() - start) * 1000)
    return out


def tool(name: str) -> str | None:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gpu-kata-lab/tools"
    found = sorted(cache.glob(f"*/{name}"))
    return str(found[-1]) if found else shutil.which(name)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 runs (CI keeps it from rotting)")
    args = parser.parse_args()
    compile_product()
    runs = 3 if args.quick else args.runs
    ours = shutil.which("gpu-kata-installer", path=str(Path(sys.executable).parent))
    cases = {"gpu-kata-installer --help": [ours or sys.executable, *([] if ours else
                                            ["-m", "screens.cli"]), "--help"]}
    if helm := tool("helm"):
        cases["helm version"] = [helm, "version"]
    if kubectl := tool("kubectl"):
        cases["kubectl version --client"] = [kubectl, "version", "--client"]
    print(f"{'command':32} {'median ms':>10} {'best ms':>8}  ({runs} runs, {os.cpu_count()} cpus)")
    results = {}
    for name, cmd in cases.items():
        times = timed(cmd, runs)
        results[name] = statistics.median(times)
        print(f"{name:32} {results[name]:10.1f} {min(times):8.1f}")
    ours_ms = results["gpu-kata-installer --help"]
    verdict = "meets" if ours_ms < GOAL_MS else "MISSES"
    print(f"goal: --help under {GOAL_MS:.0f} ms -> {verdict} ({ours_ms:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
