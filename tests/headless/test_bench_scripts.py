"""Benchmarks run in CI in their short form so none rots; their numbers are not judged here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_startup_benchmark_runs_and_reports_against_its_goal():
    out = subprocess.run([sys.executable, "bench/startup.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "gpu-kata-installer --help" in out
    assert "goal: --help under 300 ms" in out
