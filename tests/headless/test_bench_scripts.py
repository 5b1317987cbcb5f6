"""Benchmarks run in CI in their short form so none rots; their numbers are not judged here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Benchmarks that start their own hosts take loopback addresses from here (one /24 each);
# engineers sharing a machine set their own.
BENCH_NET = os.environ.get("GKI_BENCH_NET", "127.0.28")


def test_startup_benchmark_runs_and_reports_against_its_goal():
    out = subprocess.run([sys.executable, "bench/startup.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "gpu-kata-installer --help" in out
    assert "goal: --help under 300 ms" in out


def test_logpane_benchmark_runs_and_prints_its_verdicts(tmp_path):
    out = subprocess.run([sys.executable, "bench/logpane.py", "--quick"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True,
                         env={**os.environ, "XDG_STATE_HOME": str(tmp_path)}).stdout
    assert "plain terminal (cat into a pty, like kubectl logs -f)" in out
    assert "goal: ingest >= 50,000 lines/s with keypresses under 100 ms ->" in out
    assert "goal: memory bounded ->" in out
    assert "goal: first frame under 1 s ->" in out


def test_fanout_benchmark_runs_the_installer_and_ansible_through_real_sshd(tmp_path):
    out = subprocess.run([sys.executable, "bench/fanout.py", "-n", "10", "--rounds", "1",
                          "--forks", "default", "--state", str(tmp_path / "bench-lab"),
                          "--first-address", f"{BENCH_NET}.1"], cwd=ROOT, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    assert "installer, 10 hosts:" in out and "(goal < 3x:" in out
    assert "ansible-playbook [core" in out
    assert "default forks (5), 10 hosts:" in out
    assert out.count("10/10 probed completely") == 2  # both sides got every host's facts
    assert "goal: >= 10x faster than Ansible with default forks:" in out
