"""SIGTERM to the headless installer on the lab: the run stops as Ctrl-C stops it - exit 130
within seconds, helm's whole process group gone (helm runs in its own session, so nothing
else would stop it), the journal whole to its last line, and a re-run completes.

Once with the real helm waiting on a rollout that cannot finish (the lab's kubelets are
paused), once with a helm that ignores SIGTERM and has a child of its own (a PATH shim: the
point there is our handling of a child that will not stop, which the real helm does not
show)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.integration.cli_run import (
    JsonRun,
    alive,
    helm_upgrade,
    installer,
    started,
    write_answers,
)

pytestmark = pytest.mark.lab
LEAVE_GPU3 = {"items": [{"name": n, "choice": c} for n, c in (
    ("gpu-node-1", "kata"), ("gpu-node-2", "kata"), ("gpu-node-3", "leave"),
    ("cpu-node-1", "leave"))]}


def journal_lines(tmp_path: Path) -> list[dict]:
    """Every line of the journal, each of which must parse."""
    (path,) = (tmp_path / "state" / "gpu-kata-installer" / "journal").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def terminate_during_the_kata_deploy_install(lab, run: JsonRun) -> dict[int, bytes]:
    """SIGTERM once helm's upgrade runs; returns helm's and its children's command lines."""
    run.until(started("install/kata-deploy"))
    seen = helm_upgrade(lab, run)  # waiting now: on the rollout, or on the shim's child
    begun = time.monotonic()
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.finish(timeout=60)
    took = time.monotonic() - begun
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    assert took < 10, took  # helm's group: SIGTERM, then SIGKILL after 3 s
    assert not [p for p in seen if alive(p)], seen
    assert run.events[-1]["kind"] == "run-finished"
    assert run.events[-1]["status"] == "cancelled" and run.events[-1]["exit_code"] == 130
    return seen


def test_sigterm_during_a_real_helm_rollout_stops_helm_and_a_rerun_completes(
        lab_bare, tmp_path):
    lab = lab_bare
    answers = write_answers(lab, tmp_path, nodes=LEAVE_GPU3, sample={"run": False})
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes")
    with lab.paused("kwok-controller"):
        terminate_during_the_kata_deploy_install(lab, run)
    done = [e["step"] for e in journal_lines(tmp_path) if e["event"] == "step-done"]
    assert "label/gpu-node-1" in done and "install/kata-deploy" not in done, done

    again = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    entries = journal_lines(tmp_path)
    done = [e["step"] for e in entries if e["event"] == "step-done"]
    assert len(done) == len(set(done)) and entries[-1]["event"] == "run-complete", entries


def test_sigterm_stops_a_helm_that_ignores_it_and_its_child(lab_bare, tmp_path):
    lab = lab_bare
    real = Path(lab.info.binaries["helm"])
    shim = tmp_path / "bin" / "helm"
    shim.parent.mkdir()
    shim.write_text(f"""#!/bin/sh
case "$1" in
  upgrade) trap '' TERM; sleep 600 & wait ;;
  *) exec {real} "$@" ;;
esac
""")
    shim.chmod(0o755)
    answers = write_answers(lab, tmp_path, nodes=LEAVE_GPU3, sample={"run": False})
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes", helm=str(shim))
    stopped = terminate_during_the_kata_deploy_install(lab, run)
    assert any(line.startswith(b"sleep") for line in stopped.values()), stopped
    assert journal_lines(tmp_path)[-1]["event"] == "step-done"
