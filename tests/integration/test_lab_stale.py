"""`python -m tests.lab up` after a crash: a host sshd the crashed lab left behind (its pid
files gone with it) holds the node's address; `up` kills it - and nothing of another lab."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.headless.test_bench_scripts import bench_net
from tests.lab import hostsupport, procs
from tests.lab.nodes import NodeSpec, default_nodes

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
PREFIX = bench_net(2)  # not the session lab's addresses: this test brings up a lab of its own


def lab(state: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.lab", command, "--state-dir", str(state)],
                          cwd=ROOT, env={**os.environ, "LAB_ADDRESS_PREFIX": PREFIX},
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_lab_up_kills_the_stale_sshd_of_its_state_dir_and_no_other(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_ADDRESS_PREFIX", PREFIX)
    state, other = tmp_path / "lab", tmp_path / "lab-2"  # a prefix of the other's path
    node = default_nodes()[0]
    hostsupport.start_hosts(state, [node])  # the crashed lab's host ...
    stale = procs.read_pid(state / "run" / f"sshd-{node.name}.pid")
    shutil.rmtree(state / "run")  # ... whose records the crash took with it
    hostsupport.start_hosts(other, [NodeSpec("bystander", "cpu-only", f"{PREFIX}.200")])
    bystander = procs.read_pid(other / "run" / "sshd-bystander.pid")
    try:
        assert procs.alive(stale) and procs.alive(bystander)
        up = lab(state, "up")
        assert up.returncode == 0, up.stderr[-3000:]
        assert "stale process(es) of" in up.stderr
        assert not procs.alive(stale)
        assert lab(state, "status").returncode == 0  # every host's sshd up, the API ready
        assert procs.alive(bystander)  # another state dir's host is never touched
    finally:
        lab(state, "down")
        hostsupport.stop_hosts(other)
        if procs.alive(stale):  # up failed to: the test's own process, ended by its pid
            os.kill(stale, signal.SIGKILL)
