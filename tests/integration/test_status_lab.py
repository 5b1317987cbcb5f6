"""`status` on the lab: no drift right after an install; each kind of drift planted by hand
(a node relabelled, a chart value set behind the installer's back, the IOMMU argument taken
out of a host's GRUB defaults, the Kata RuntimeClass deleted, kata-deploy let onto a node
the answers leave) is named, with exit 1; bad answers exit 2 without a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from installer.cluster.facts import WORKLOAD_LABEL
from tests.integration.cli_run import installer, write_answers

pytestmark = pytest.mark.lab
RC = "kata-qemu-nvidia-gpu"


def status(lab, tmp_path: Path, answers: Path, *extra: str) -> tuple[int, dict]:
    run = installer(lab, tmp_path, "status", "--answers", str(answers), "--json", *extra)
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return run.returncode, json.loads(run.stdout)


def test_status_matches_after_an_install_then_names_each_planted_drift(lab_bare, tmp_path):
    lab = lab_bare
    answers = write_answers(lab, tmp_path, sample={"run": False})
    done = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    code, clean = status(lab, tmp_path, answers)
    assert (code, clean["drift"], clean["exitCode"]) == (0, [], 0), clean
    assert set(clean["checked"]["hosts"].values()) == {"probed"}
    text = installer(lab, tmp_path, "status", "--answers", str(answers))
    assert text.returncode == 0 and "no drift: the cluster matches the answers" in text.stdout

    lab.kubectl("label", "node", "gpu-node-2", f"{WORKLOAD_LABEL}=container", "--overwrite")
    chart = yaml.safe_load(answers.read_text())["gpuOperator"]["chart"]["path"]
    lab.helm("upgrade", "gpu-operator", chart, "-n", "gpu-operator", "--reuse-values",
             "--set", "daemonsets.priorityClassName=drifted")
    grub = Path(lab.node("gpu-node-3").host_root) / "etc/default/grub"
    assert "intel_iommu=on" in grub.read_text()  # the install's iommu-cmdline fix wrote it
    grub.write_text(re.sub(r" ?intel_iommu=on", "", grub.read_text()))
    lab.kubectl("delete", "runtimeclass", RC)
    lab.kubectl("label", "node", "cpu-node-1", f"{WORKLOAD_LABEL}=vm-passthrough",
                "--overwrite")
    lab.wait_for("kata-deploy on cpu-node-1", lambda: "cpu-node-1" in lab.kubectl(
        "get", "pods", "-n", "kata-system", "-o", "wide").stdout)

    code, report = status(lab, tmp_path, answers)
    assert code == 1 and report["exitCode"] == 1, report
    found = {(d["kind"], d["target"]): d for d in report["drift"]}
    assert found[("label", "gpu-node-2")]["found"] == f"{WORKLOAD_LABEL}=container"
    assert found[("chart", "gpu-operator/gpu-operator")]["found"] == \
        "values differ at: daemonsets"
    assert "intel_iommu=on" in found[("host", "gpu-node-3")]["expected"]
    assert found[("runtimeclass", RC)]["found"] == "missing"
    assert "kata-system/kata-deploy-" in found[("kata-deploy", "cpu-node-1")]["found"]
    assert len(found) == 5, report["drift"]
    text = installer(lab, tmp_path, "status", "--answers", str(answers))
    assert text.returncode == 1 and text.stdout.rstrip().endswith("5 differences")


def test_status_reports_a_host_it_cannot_reach_as_not_checked(lab_bare, tmp_path):
    lab = lab_bare
    answers = write_answers(lab, tmp_path, sample={"run": False})
    lab.kill_sshd("gpu-node-1")
    try:
        code, report = status(lab, tmp_path, answers)
    finally:
        lab.start_sshd("gpu-node-1")
    assert code == 1
    assert report["checked"]["hosts"]["gpu-node-1"] == "could not check"
    (unchecked,) = [d for d in report["drift"] if d["kind"] == "unchecked"]
    assert unchecked["target"] == "gpu-node-1"
    assert unchecked["found"].startswith("could not check:")


def test_status_with_bad_answers_or_no_answers_exits_2_with_the_problem(lab_bare, tmp_path):
    lab = lab_bare
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gpu-kata-installer.io/v1alpha1\nkind: Answers\nnodes: 3\n")
    run = installer(lab, tmp_path, "status", "--answers", str(bad))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "nodes" in run.stderr and run.stderr.startswith("error:"), run.stderr
    missing = installer(lab, tmp_path, "status")
    assert missing.returncode == 2 and "add --answers FILE" in missing.stderr
    answers = write_answers(lab, tmp_path, sample={"run": False})
    gone = installer(lab, tmp_path, "status", "--answers", str(answers),
                     "--kubeconfig", str(tmp_path / "nope"))
    assert gone.returncode == 2 and "Traceback" not in gone.stderr, gone.stderr
    # an API server that does not answer: 2, not 1 (which would read as "differences")
    kubeconfig = tmp_path / "closed.kubeconfig"
    kubeconfig.write_text(re.sub(r"server: \S+", "server: https://127.0.0.1:1",
                                 Path(lab.kubeconfig).read_text()))
    closed = installer(lab, tmp_path, "status", "--answers", str(answers),
                       "--kubeconfig", str(kubeconfig))
    assert closed.returncode == 2 and "Traceback" not in closed.stderr, closed.stderr
    assert "127.0.0.1:1" in closed.stderr
