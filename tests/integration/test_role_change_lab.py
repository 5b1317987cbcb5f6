"""A node's change of role on the lab: gpu-node-3 installed on Kata (GPU Operator v26.3.1,
whose vfio-manager leaves GPUs on vfio-pci; the installer's fixes ran on that host), a GPU
Deployment running on it; the answers then say traditional and the same install runs again.
Its GPU pod is evicted before the relabel, the installer's vfio and driver-blacklist files go
back to their backups with a reboot, and the node ends with its GPUs off vfio-pci, verified
as a container node and uncordoned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.cli_run import installer, write_answers
from tests.integration.test_uninstall_revert_lab import backups, gpu_drivers

pytestmark = pytest.mark.lab
NODE = "gpu-node-3"  # gpu-host-driver: the installer's fixes and a reboot at install
NS = "role-test"


def deployment() -> dict:
    labels = {"app": "trainer"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "trainer", "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "runtimeClassName": "kata-qemu-nvidia-gpu",
                         "nodeSelector": {"kubernetes.io/hostname": NODE},
                         "containers": [{"name": "cuda", "image": "nvcr.io/nvidia/cuda:12.5.0"
                                         "-base-ubuntu22.04", "command": ["sleep", "infinity"],
                                         "resources": {"limits": {"nvidia.com/pgpu": "1"}}}]}}}}


def pods(lab) -> list[dict]:
    return json.loads(lab.kubectl("get", "pods", "-n", NS, "-o", "json").stdout)["items"]


def test_kata_to_traditional_drains_relabels_unbinds_verifies_and_uncordons(lab_bare, tmp_path):
    lab = lab_bare
    if not lab.node(NODE).ssh:
        pytest.skip("lab runs without sshd")
    root = Path(lab.node(NODE).host_root)
    answers = write_answers(lab, tmp_path)
    first = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert backups(root) and set(gpu_drivers(root).values()) == {"vfio-pci"}

    lab.kubectl("create", "namespace", NS, check=False)
    lab.apply(deployment())
    lab.wait_for("the GPU pod Running", lambda: any(
        p["status"].get("phase") == "Running" for p in pods(lab)), timeout=120)
    (before,) = [p["metadata"]["name"] for p in pods(lab)]

    data = yaml.safe_load(answers.read_text())
    for item in data["nodes"]["items"]:
        if item["name"] == NODE:
            item["choice"] = "traditional"
    answers.write_text(json.dumps(data))

    shown = installer(lab, tmp_path, "--answers", str(answers), "--dry-run")
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-2000:]
    for step in (f"cordon/{NODE}", f"drain/{NODE}", f"label/{NODE}", f"release/{NODE}",
                 f"release/{NODE}/reboot", f"verify-role/{NODE}", f"uncordon/{NODE}"):
        assert step in shown.stdout, step
    assert f"{NS}/{before}" in shown.stdout  # the drain names the pod it will evict

    run = installer(lab, tmp_path, "--answers", str(answers), "--yes", "--json")
    out = run.stdout
    assert run.returncode == 0, out[-4000:] + run.stderr[-2000:]
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e["path"] for e in events if e["kind"] == "step-finished"
                and e.get("status") == "ok"]
    assert finished.index(f"drain/{NODE}") < finished.index(f"label/{NODE}") \
        < finished.index(f"release/{NODE}") < finished.index(f"verify-role/{NODE}") \
        < finished.index(f"uncordon/{NODE}")
    assert before not in [p["metadata"]["name"] for p in pods(lab)]  # evicted

    assert not [d for d in gpu_drivers(root).values() if d and "vfio" in d]
    assert not [b for b in backups(root) if "vfio-bind" in b or "nvidia-driver-off" in b]
    node = json.loads(lab.kubectl("get", "node", NODE, "-o", "json").stdout)
    assert not node["spec"].get("unschedulable")
    assert "gpu-kata-installer.io/cordoned-for" not in node["metadata"].get("annotations", {})
    assert node["metadata"]["labels"]["nvidia.com/gpu.workload.config"] == "container"
    assert int(node["status"]["allocatable"].get("nvidia.com/gpu", "0")) > 0
    lab.kubectl("delete", "namespace", NS, "--wait=false", check=False)
