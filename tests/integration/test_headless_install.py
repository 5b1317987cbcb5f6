"""End to end on the lab: the headless installer takes a bare cluster to `Test PASSED`.

Real parts throughout: the lab's kube-apiserver, real sshd hosts (gpu-node-3 starts with
the host driver loaded and the IOMMU off, and gets fixed over SSH), the real helm binary
with the stand-in charts (one as a packaged archive, one as a directory).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.lab.answers import lab_answers

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
MANAGED = ("nvidia.com/", "katacontainers.io/")


def write_answers(lab, tmp_path: Path, **changes) -> Path:
    data = lab_answers(lab.info, sample_timeout=240, chart_timeout="2m")
    archive_dir = tmp_path / "charts"
    archive_dir.mkdir(exist_ok=True)
    lab.helm("package", str(lab.charts["kata-deploy"]), "--destination", str(archive_dir))
    data["kataDeploy"]["chart"] = {"path": str(next(archive_dir.glob("kata-deploy-*.tgz")))}
    for section, values in changes.items():
        data[section] = {**data.get(section, {}), **values}
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def installer(lab, tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "installer.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def managed_labels(lab) -> dict[str, dict[str, str]]:
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return {n["metadata"]["name"]: {k: v for k, v in n["metadata"]["labels"].items()
                                    if k.startswith(MANAGED)} for n in nodes}


def releases(lab) -> list[str]:
    return sorted(r["name"] for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout))


def test_bare_lab_to_test_passed_then_rerun_changes_nothing_then_uninstall(lab_bare, tmp_path):
    lab = lab_bare
    before = managed_labels(lab)
    answers = write_answers(lab, tmp_path)

    first = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    out = first.stdout
    for fix in ("iommu-cmdline", "nvidia-driver-off", "reboot", "vfio-bind"):
        assert f"fix/gpu-node-3/{fix}" in out
    assert "fix/gpu-node-1/" not in out  # a prepared host is left alone
    assert "Test PASSED" in out
    assert releases(lab) == ["gpu-operator", "kata-deploy"]
    labels = managed_labels(lab)
    assert all(labels[n]["nvidia.com/gpu.workload.config"] == "vm-passthrough"
               for n in ("gpu-node-1", "gpu-node-2", "gpu-node-3"))
    assert "nvidia.com/gpu.workload.config" not in labels["cpu-node-1"]

    second = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert second.returncode == 0, second.stdout[-3000:]
    assert "everything was already in place, nothing changed" in second.stdout
    assert "  changed: helm" not in second.stdout and "  changed: label" not in second.stdout

    gone = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--yes")
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


def test_interrupted_during_the_operator_install_resumes_without_reinstalling_kata_deploy(
        lab_bare, tmp_path):
    lab = lab_bare
    answers = write_answers(lab, tmp_path, sample={"run": False})
    env = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "installer.cli", "--answers", str(answers),
                             "--yes", "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        event = json.loads(line)
        if event["kind"] == "step-started" and event["path"] == "install/gpu-operator":
            proc.send_signal(signal.SIGINT)
            break
        assert time.monotonic() < deadline
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, rest[-2000:]
    kata_revision = next(r for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout)
                     if r["name"] == "kata-deploy")["revision"]

    again = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "install/kata-deploy: release kata-system/kata-deploy already deployed" in again.stdout
    assert "changed: helm" in again.stdout  # the operator is (re)installed
    after = [r for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout)]
    assert [r["revision"] for r in after if r["name"] == "kata-deploy"] == [kata_revision]
    assert {r["name"]: r["status"] for r in after}["gpu-operator"] == "deployed"


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
