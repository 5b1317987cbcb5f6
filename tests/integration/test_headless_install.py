"""End to end on the lab: the headless installer takes a bare cluster to `Test PASSED`.

Real parts throughout: the lab's kube-apiserver, real sshd hosts (gpu-node-3 starts with
the host driver loaded and the IOMMU off, and gets fixed over SSH), the real helm binary
with the stand-in charts (one as a packaged archive, one as a directory).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.cli_run import (
    JsonRun,
    cmdline,
    descendants,
    finished,
    installer,
    started,
    write_answers,
)

pytestmark = pytest.mark.lab
MANAGED = ("nvidia.com/", "katacontainers.io/")


def managed_labels(lab) -> dict[str, dict[str, str]]:
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: {k: v for k, v in n["metadata"]["labels"].items()
                                    if k.startswith(MANAGED)} for n in nodes}


def releases(lab) -> list[str]:
    return sorted(r["name"] for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout))


@pytest.mark.parametrize(("helm", "major"), [("helm", "helm v4."), ("helm3", "helm v3.")])
def test_bare_lab_to_test_passed_then_rerun_changes_nothing_then_uninstall(
        lab_bare, tmp_path, helm, major):
    """With helm 4 and with helm 3: kata-deploy from an archive, the operator from a directory."""
    lab = lab_bare
    before = managed_labels(lab)
    answers = write_answers(lab, tmp_path)

    first = installer(lab, tmp_path, "--answers", str(answers), "--yes", helm=helm)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    out = first.stdout
    assert major in out  # the helm it was given is the one it ran
    for fix in ("iommu-cmdline", "nvidia-driver-off", "reboot", "vfio-bind"):
        assert f"fix/gpu-node-3/{fix}" in out
    assert "fix/gpu-node-1/" not in out  # a prepared host is left alone
    # the waits say what they wait for: helm's own wait, the host coming back from its reboot
    assert "waiting for helm to install kata-system/kata-deploy" in out
    assert "waiting for gpu-node-3 back from the reboot" in out
    assert "Test PASSED" in out
    assert releases(lab) == ["gpu-operator", "kata-deploy"]
    labels = managed_labels(lab)
    assert all(labels[n]["nvidia.com/gpu.workload.config"] == "vm-passthrough"
               for n in ("gpu-node-1", "gpu-node-2", "gpu-node-3"))
    assert "nvidia.com/gpu.workload.config" not in labels["cpu-node-1"]
    # kata-deploy ran where the plan said it would, and changed no other host
    assert "on the hosts: kata-deploy runs on gpu-node-1, gpu-node-2, gpu-node-3 (" in out
    pods = json.loads(lab.kubectl("get", "pods", "-n", "kata-system", "-l", "name=kata-deploy",
                                  "-o", "json").stdout)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["gpu-node-1", "gpu-node-2",
                                                          "gpu-node-3"]
    assert not (Path(lab.node("cpu-node-1").host_root) / "opt" / "kata").exists()
    assert not any((Path(n.host_root) / "etc/systemd/system/nydus-for-kata-tee.service").exists()
                   for n in lab.nodes)

    second = installer(lab, tmp_path, "--answers", str(answers), "--yes", helm=helm)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "everything was already in place, nothing changed" in second.stdout
    assert "  changed: helm" not in second.stdout and "  changed: label" not in second.stdout

    gone = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--yes", helm=helm)
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-2000:]
    assert releases(lab) == []
    assert managed_labels(lab) == before


def test_kubevirt_mode_through_extra_values_fails_at_verification_naming_the_cause(
        lab_bare, tmp_path):
    answers = write_answers(lab_bare, tmp_path, gpuOperator={
        "values": {"sandboxWorkloads": {"mode": "kubevirt"}}})
    result = installer(lab_bare, tmp_path, "--answers", str(answers), "--yes")
    assert result.returncode == 1
    assert "sandboxWorkloads.mode='kubevirt'" in result.stdout
    assert "✗ verify/gpu-operator" in result.stdout
    assert "timed out" not in result.stdout


def helm_releases(lab) -> dict[str, dict]:
    out = lab.helm("list", "-A", "--deployed", "--failed", "--pending", "-o", "json").stdout
    return {r["name"]: r for r in json.loads(out)}


def journal_entries(tmp_path: Path) -> list[dict]:
    (path,) = (tmp_path / "state" / "gpu-kata-installer" / "journal").glob("*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def steps_done(tmp_path: Path) -> list[str]:
    return [e["step"] for e in journal_entries(tmp_path) if e["event"] == "step-done"]


def run_until(lab, tmp_path: Path, pred: Callable[[dict], bool]) -> tuple[Path, JsonRun]:
    """A headless install (no sample) followed up to the first event matching `pred`."""
    answers = write_answers(lab, tmp_path, sample={"run": False})
    run = JsonRun(lab, tmp_path, "--answers", str(answers), "--yes")
    run.until(pred)
    return answers, run


def resume(lab, tmp_path: Path, answers: Path) -> str:
    """The re-run after an interruption: it must finish, and no change step the journal
    holds may be done twice (each is journalled once over both runs)."""
    again = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    done = steps_done(tmp_path)
    assert len(done) == len(set(done)), done
    assert journal_entries(tmp_path)[-1]["event"] == "run-complete"
    return again.stdout


def test_interrupted_during_the_operator_install_resumes_without_reinstalling_kata_deploy(
        lab_bare, tmp_path):
    lab = lab_bare
    answers, run = run_until(lab, tmp_path, started("install/gpu-operator"))
    helm = lab.wait_for("helm to run the operator install", lambda: [
        p for p in descendants(run.proc.pid) if b"gpu-operator" in cmdline(p)], interval=0.02)
    begun = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    code, err = run.finish(timeout=60)
    assert code == 130, err[-2000:]
    # cancelling stops helm's whole process group within 5 s, then the installer exits
    assert time.monotonic() - begun < 5 and not any(Path(f"/proc/{p}").exists() for p in helm)
    kata_revision = helm_releases(lab)["kata-deploy"]["revision"]

    out = resume(lab, tmp_path, answers)
    assert "install/kata-deploy: release kata-system/kata-deploy already deployed" in out
    assert "changed: helm" in out  # the operator is (re)installed
    after = helm_releases(lab)
    assert after["kata-deploy"]["revision"] == kata_revision
    assert after["gpu-operator"]["status"] == "deployed"


def test_killed_between_steps_resumes_from_the_journal_without_redoing_a_step(
        lab_bare, tmp_path):
    """SIGKILL of the installer (and its children) right after kata-deploy is installed."""
    lab = lab_bare
    answers, run = run_until(lab, tmp_path, finished("install/kata-deploy"))
    run.kill_tree()
    done = steps_done(tmp_path)
    assert "install/kata-deploy" in done and "fix/gpu-node-3/iommu-cmdline" in done
    assert helm_releases(lab)["kata-deploy"]["revision"] == "1"

    out = resume(lab, tmp_path, answers)
    # The host fixes are gone from the new plan (the host shows them done); the steps
    # still planned say the interrupted run did them.
    assert "fix/gpu-node-3/" not in out
    for step in ("install/kata-deploy", "label/gpu-node-3"):
        assert f"- {step}: " in out and "(done by the interrupted run)" in out.split(
            f"- {step}: ")[1].splitlines()[0], (step, out)
    assert helm_releases(lab)["kata-deploy"]["revision"] == "1"
    assert helm_releases(lab)["gpu-operator"]["status"] == "deployed"


def test_killed_during_a_host_fix_resumes_and_keeps_one_backup_of_the_original(
        lab_bare, tmp_path):
    lab = lab_bare
    host = Path(lab.node("gpu-node-3").host_root)
    original = (host / "etc/default/grub").read_bytes()
    answers, run = run_until(lab, tmp_path, started("fix/gpu-node-3/nvidia-driver-off"))
    run.kill_tree()
    assert "fix/gpu-node-3/iommu-cmdline" in steps_done(tmp_path)

    out = resume(lab, tmp_path, answers)
    assert "✓ fix/gpu-node-3/reboot" in out and "iommu-cmdline pending" in out, out
    # The first run's backup of the original is kept, not replaced by one of its own edit.
    assert (host / "etc/default/grub.gpu-kata-installer.iommu-cmdline.bak").read_bytes() == \
        original
    assert not [p for p in host.rglob(".gki-*")]  # no temp file left behind


def test_killed_during_the_kata_deploy_install_resumes_from_the_pending_release(
        lab_bare, tmp_path):
    """SIGKILL while helm itself runs (killed too): the release is left pending-install."""
    lab = lab_bare
    answers, run = run_until(lab, tmp_path, started("install/kata-deploy"))

    def pending() -> bool:  # helm's release record, read straight from the API (fast)
        items, _ = lab.kube.list("/api/v1/namespaces/kata-system/secrets",
                                 labelSelector="owner=helm,name=kata-deploy,status=pending-install")
        return bool(items)

    # kata-deploy's pods cannot become ready while KWOK is paused, so helm is still in its
    # wait when it is killed (the lab is fast enough for it to finish in between otherwise)
    with lab.paused("kwok-controller"):
        lab.wait_for("helm to record the release pending", pending, timeout=60, interval=0.02)
        run.kill_tree()
    assert helm_releases(lab)["kata-deploy"]["status"].startswith("pending-"), helm_releases(lab)

    out = resume(lab, tmp_path, answers)
    assert "left pending-install by an interrupted run" in out
    assert helm_releases(lab)["kata-deploy"]["status"] == "deployed"


def test_an_unprepared_kata_host_fails_at_verification_naming_the_host_driver(
        lab_bare, tmp_path):
    answers = write_answers(lab_bare, tmp_path, hostFixes={
        k: "skip" for k in ("iommu", "nouveauBlacklist", "vfioBind", "kubeletFeatureGate",
                            "reboot")}, checks={"ignore": ["iommu-enabled",
                                                            "host-nvidia-driver"]})
    result = installer(lab_bare, tmp_path, "--answers", str(answers), "--yes")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "✗ verify/gpu-operator" in result.stdout
    assert "node gpu-node-3 has a host NVIDIA driver" in result.stdout
    assert "timed out" not in result.stdout
