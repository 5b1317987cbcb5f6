"""Faults on the lab, through the headless CLI: a host's sshd killed during a host fix or
down at the probe, and helm failing (missing chart, values the chart rejects, a timeout).

Each test checks the exit code, that the message names the cause and a fix without a
traceback, and that what is left behind is whole and finished by a re-run (or uninstall).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from tests.integration.cli_run import JsonRun, installer, started, write_answers

pytestmark = pytest.mark.lab


def failure(events: list[dict]) -> dict:
    return next(e for e in events if e["kind"] == "step-finished" and e["status"] == "failed")


def all_releases(lab) -> dict[str, str]:
    out = lab.helm("list", "-A", "--deployed", "--failed", "--pending", "-o", "json").stdout
    return {r["name"]: r["status"] for r in json.loads(out)}


def kill_on_first_write(lab, node: str, folder: Path, stop: threading.Event
                        ) -> tuple[dict, threading.Thread]:
    """Kill `node`'s sshd the moment a fix script starts writing in `folder` (its backup
    or temp file appears), i.e. in the middle of that script. Join the thread before starting
    the sshd again: the installer can report the lost host and exit before the kill has
    reaped the old sshd and removed its pid file - which would then be the new one's."""
    seen: dict = {}

    def watch() -> None:
        try:
            while not stop.is_set():
                names = [n for n in os.listdir(folder) if n.startswith(".gki-")
                         or ".gpu-kata-installer." in n]
                if names:
                    seen["names"] = names
                    seen["killed"] = lab.kill_sshd(node)
                    return
                time.sleep(0.001)
        except BaseException as exc:  # a watcher that dies silently would hide the cause
            seen["error"] = repr(exc)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return seen, watcher


def test_sshd_killed_during_a_host_fix_fails_that_step_leaves_the_file_whole_and_a_rerun_completes(
        lab_bare, tmp_path):
    lab = lab_bare
    node = lab.node("gpu-node-3")
    root = Path(node.host_root)
    grub = root / "etc/default/grub"
    original = grub.read_bytes()
    answers = write_answers(lab, tmp_path, sample={"run": False})
    stop = threading.Event()
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes")
    try:
        run.until(started("fix/gpu-node-3/iommu-cmdline"))
        seen, watcher = kill_on_first_write(lab, node.name, grub.parent, stop)
        code, err = run.finish()
        watcher.join(30)
    finally:
        stop.set()
        lab.start_sshd(node.name)
    assert seen.get("killed"), ("the fix never wrote in /etc/default", seen, run.events[-6:])
    assert code == 1, (code, err[-2000:])
    assert "Traceback" not in err
    failed = failure(run.events)
    assert failed["path"].startswith("fix/gpu-node-3/"), failed
    assert "unreachable" in failed["message"] and node.internal_ip in failed["message"], failed
    assert "run again" in failed["detail"], failed
    end = run.events[-1]
    assert end["kind"] == "run-finished" and end["exit_code"] == 1
    # Never half-written: the grub file is the original, or the whole new one with the
    # original kept as its backup.
    cut = grub.read_bytes()
    backup = grub.with_name("grub.gpu-kata-installer.iommu-cmdline.bak")
    assert cut == original or (b"intel_iommu=on" in cut and backup.read_bytes() == original)

    again = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    final = grub.read_bytes()
    assert cut in (original, final) or b"vfio-pci.ids" in final  # whole, then completed
    assert backup.read_bytes() == original
    assert not list(root.rglob(".gki-*"))  # temp files of the killed script cleaned up


def test_a_host_unreachable_at_the_probe_exits_3_naming_it_and_changes_nothing(
        lab_bare, tmp_path):
    lab = lab_bare
    node = lab.node("gpu-node-2")
    answers = write_answers(lab, tmp_path, sample={"run": False})
    lab.kill_sshd(node.name)
    try:
        result = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    finally:
        lab.start_sshd(node.name)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"gpu-node-2: could not be checked - unreachable: {node.internal_ip}" in result.stdout
    assert "✓ probe/gpu-node-1" in result.stdout and "✓ probe/gpu-node-3" in result.stdout
    assert "changed:" not in result.stdout and all_releases(lab) == {}


# helm 3 and helm 4 word their errors differently; each failure is proved with both.
BOTH_HELMS = pytest.mark.parametrize("helm", ["helm", "helm3"])


def helm_failure(lab, tmp_path: Path, helm: str, **changes) -> tuple[dict, str]:
    """A run expected to fail at a helm step: its failed step event and the text output."""
    answers = write_answers(lab, tmp_path, **changes)
    result = installer(lab, tmp_path, "--answers", str(answers), "--yes", helm=helm)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    return answers, result.stdout


LEAVE_GPU3 = {"items": [{"name": n, "choice": c} for n, c in (
    ("gpu-node-1", "kata"), ("gpu-node-2", "kata"), ("gpu-node-3", "leave"),
    ("cpu-node-1", "leave"))]}


@BOTH_HELMS
def test_helm_missing_chart_fails_with_helms_error_and_a_fix(lab_bare, tmp_path, helm):
    lab = lab_bare
    _, out = helm_failure(lab, tmp_path, helm, nodes=LEAVE_GPU3, sample={"run": False},
                          kataDeploy={"chart": {"path": str(tmp_path / "no-such-chart")}})
    assert f'✗ install/kata-deploy: helm failed: Error: path "{tmp_path}/no-such-chart" ' \
        "not found" in out
    assert "check kataDeploy.chart (path, repo and name, or oci)" in out
    assert all_releases(lab) == {}
    # a chart repository nobody answers on (a closed loopback port)
    _, out = helm_failure(lab, tmp_path, helm, nodes=LEAVE_GPU3, sample={"run": False},
                          gpuOperator={"chart": {"repo": "http://127.0.64.1:9/charts",
                                                 "name": "gpu-operator"}})
    assert "✗ install/gpu-operator: helm failed:" in out
    assert "dial tcp 127.0.64.1:9: connect: connection refused" in out
    assert "check gpuOperator.chart" in out
    assert all_releases(lab) == {"kata-deploy": "deployed"}


@BOTH_HELMS
def test_helm_rejecting_the_values_fails_with_helms_error_and_uninstall_cleans_up(
        lab_bare, tmp_path, helm):
    lab = lab_bare
    answers, out = helm_failure(lab, tmp_path, helm, nodes=LEAVE_GPU3, sample={"run": False},
                                kataDeploy={"values": {"defaultShim": "qemu-nvidia-gpu"}})
    assert "✗ install/kata-deploy: helm failed:" in out
    assert "<index .Values.defaultShim \"amd64\">: error calling index" in out, out[-2000:]
    assert "the chart rejected the values" in out and "correct kataDeploy.values" in out
    assert "kata-deploy" not in all_releases(lab) or \
        all_releases(lab)["kata-deploy"] == "failed"
    gone = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--yes", helm=helm)
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-2000:]
    assert all_releases(lab) == {}


@BOTH_HELMS
def test_helm_timeout_fails_naming_the_timeout_and_a_rerun_completes(lab_bare, tmp_path, helm):
    """kata-deploy's pods cannot start (the lab's kubelets are paused) within its timeout."""
    lab = lab_bare
    answers = write_answers(lab, tmp_path, nodes=LEAVE_GPU3, sample={"run": False},
                            kataDeploy={"timeout": "5s"})
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes", helm=helm)
    with lab.paused("kwok-controller"):
        run.until(started("install/kata-deploy"))
        failed = run.until(lambda e: e["kind"] == "step-finished" and e["status"] == "failed")
    code, err = run.finish()
    assert code == 1 and "Traceback" not in err, err[-2000:]
    assert failed["path"] == "install/kata-deploy", failed
    assert "context deadline exceeded" in failed["message"], failed
    assert "kataDeploy.timeout" in failed["detail"], failed
    assert all_releases(lab) == {"kata-deploy": "failed"}

    answers = write_answers(lab, tmp_path, sample={"run": False})
    again = installer(lab, tmp_path, "--answers", str(answers), "--yes", helm=helm)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert all_releases(lab) == {"kata-deploy": "deployed", "gpu-operator": "deployed"}


def test_a_helm_this_tool_cannot_drive_exits_2_naming_it_before_any_change(lab_bare, tmp_path):
    """An operator's PATH with helm 2 on it: refused at discovery, nothing changed."""
    lab = lab_bare
    helm2 = tmp_path / "bin" / "helm"
    helm2.parent.mkdir()
    helm2.write_text("#!/bin/sh\necho 'Client: v2.17.0+ga690bad'\n")
    helm2.chmod(0o755)
    answers = write_answers(lab, tmp_path)
    result = installer(lab, tmp_path, "--answers", str(answers), "--yes", helm=str(helm2))
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-2000:]
    said = result.stdout + result.stderr
    assert f"unsupported helm at {helm2}" in said and "Client: v2.17.0" in said
    assert "install helm 3 or 4, or set GPU_KATA_HELM" in said and "Traceback" not in said
    assert "changed:" not in said and all_releases(lab) == {}
