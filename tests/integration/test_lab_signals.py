"""helm's processes on the lab: stopped when the installer gets SIGTERM, and when helm runs
past our outer limit.

SIGTERM stops the run as Ctrl-C does - exit 130 within seconds, helm's whole process group
gone (helm runs in its own session, so nothing else would stop it), the journal whole to
its last line, and a re-run completes: once with the real helm waiting on a rollout that
cannot finish (the lab's kubelets are paused), once with a helm that ignores SIGTERM and
has a child of its own. That helm, and one that never returns, are PATH shims: the point
there is our handling of a child that will not stop, which the real helm does not show."""

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


def helm_shim(lab, tmp_path: Path, upgrade: str) -> Path:
    """A helm that runs `upgrade` (shell) for `helm upgrade`, and is the real one otherwise."""
    shim = tmp_path / "bin" / "helm"
    shim.parent.mkdir()
    shim.write_text(f"""#!/bin/sh
case "$1" in
  upgrade) {upgrade} ;;
  *) exec {lab.info.binaries["helm"]} "$@" ;;
esac
""")
    shim.chmod(0o755)
    return shim


def test_sigterm_stops_a_helm_that_ignores_it_and_its_child(lab_bare, tmp_path):
    lab = lab_bare
    shim = helm_shim(lab, tmp_path, "trap '' TERM; sleep 600 & wait")
    answers = write_answers(lab, tmp_path, nodes=LEAVE_GPU3, sample={"run": False})
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes", helm=str(shim))
    stopped = terminate_during_the_kata_deploy_install(lab, run)
    assert any(line.startswith(b"sleep") for line in stopped.values()), stopped
    assert journal_lines(tmp_path)[-1]["event"] == "step-done"


def test_a_helm_that_hangs_past_its_own_timeout_is_stopped_with_a_cause(lab_bare, tmp_path):
    """A helm (PATH shim) whose upgrade never returns, kataDeploy.timeout 1s: our outer
    limit (its --timeout and 30 s more) stops its process group and fails the step."""
    lab = lab_bare
    shim = helm_shim(lab, tmp_path, "sleep 600")
    answers = write_answers(lab, tmp_path, nodes=LEAVE_GPU3, sample={"run": False},
                            kataDeploy={"timeout": "1s"})
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes", helm=str(shim))
    run.until(started("install/kata-deploy"))
    stopped = helm_upgrade(lab, run)
    failed = run.until(lambda e: e["kind"] == "step-finished", timeout=120)
    code, err = run.finish()
    assert code == 1 and "Traceback" not in err, err[-2000:]
    assert failed["path"] == "install/kata-deploy", failed
    assert failed["message"] == ("helm upgrade did not finish within 31 s (its --timeout 1s "
                                 "and 30 s more); it was stopped"), failed
    assert "helm stopped answering" in failed["detail"], failed
    assert any(line.startswith(b"sleep") for line in stopped.values()), stopped
    assert not [p for p in stopped if alive(p)], stopped
