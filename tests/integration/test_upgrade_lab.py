"""`upgrade` on the lab: kata-deploy 3.30.0 + GPU Operator v26.3.3 installed, a Kata GPU pod
running under a Deployment, then upgraded to 4.1.0 + v26.7.0 node by node - the charts at the
new versions, each Kata node's pods on the new images, the Kata pod back, none lost."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.cli_run import JsonRun, started
from tests.integration.test_lab_versions import get, run_installer
from tests.lab.answers import lab_answers
from tests.lab.handle import LabHandle, own_lab

pytestmark = pytest.mark.lab
KATA = ("gpu-node-1", "gpu-node-2")
CHOICES = {"gpu-node-1": "kata", "gpu-node-2": "kata", "gpu-node-3": "traditional",
           "cpu-node-1": "leave"}
WORKLOAD = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "kata-gpu-app", "namespace": "default"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "kata-gpu-app"}},
             "template": {"metadata": {"labels": {"app": "kata-gpu-app"}}, "spec": {
                 "runtimeClassName": "kata-qemu-nvidia-gpu",
                 "containers": [{"name": "app", "image": "nvcr.io/nvidia/k8s/cuda-sample:sleep",
                                 "resources": {"limits": {"nvidia.com/pgpu": "1",
                                                          "memory": "4Gi"}}}]}}}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[LabHandle]:
    with own_lab(tmp_path_factory.mktemp("upgrade-lab"), "127.0.54") as handle:
        yield handle


def app_pods(lab: LabHandle) -> list[dict]:
    return [p for p in get(lab, "pods", "-n", "default", "-l", "app=kata-gpu-app")["items"]
            if not p["metadata"].get("deletionTimestamp")]


def charts(lab: LabHandle) -> dict[str, str]:
    return {r["name"]: r["chart"] for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout)}


def running_app(lab: LabHandle) -> dict | None:
    running = [p for p in app_pods(lab) if p["status"].get("phase") == "Running"]
    return running[0] if running else None


def test_upgrade_rolls_each_kata_node_and_the_kata_pod_comes_back(lab, tmp_path):
    after = installed(lab, tmp_path)
    lab.apply(WORKLOAD)
    first = lab.wait_for("the Kata GPU app to run", lambda: running_app(lab), timeout=120)
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(after))
    run = JsonRun(lab, tmp_path, "upgrade", "--answers", str(path), "--yes")
    try:  # a failed assertion here must not leave the upgrade running into the next test
        run.until(started("upgrade/wave-1"))
        # Both charts are upgraded by now, yet the DaemonSets are held: gpu-node-2's pods
        # wait for its own wave (wave 1 runs its sample before wave 2 can begin).
        ds = get(lab, "daemonset", "-n", "kata-system", "kata-deploy")
        assert ds["spec"]["updateStrategy"]["type"] == "OnDelete"
        assert ds["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":4.1.0")
        held = node_images(lab, "gpu-node-2", daemonsets_only=True)
        assert any(i.endswith(":3.30.0") for i in held) and not any(
            i.endswith((":4.1.0", ":v26.7.0")) for i in held), held
    except BaseException:
        run.kill_tree()
        raise
    code, err = run.finish(timeout=600)
    out = "\n".join(str(e.get("message", "")) for e in run.events)
    assert code == 0, out[-5000:] + err[-2000:]

    releases = charts(lab)
    assert releases["kata-deploy"].endswith("4.1.0")
    assert releases["gpu-operator"].endswith("v26.7.0")
    for node in KATA:
        images = node_images(lab, node)
        assert any(i.endswith(":4.1.0") for i in images if "kata-deploy" in i), images
        assert any(i.endswith(":v26.7.0") for i in images if "gpu-operator" in i), images
        assert not any(i.endswith((":3.30.0", ":v26.3.3")) for i in images), images
        obj = get(lab, "node", node)
        assert not obj["spec"].get("unschedulable")
        assert "gpu-kata-installer.io/cordoned-for" not in (obj["metadata"].get("annotations")
                                                           or {})
    assert get(lab, "daemonset", "-n", "kata-system", "kata-deploy")["spec"][
        "updateStrategy"]["type"] == "RollingUpdate"  # given back at the end
    again = lab.wait_for("the Kata GPU app to run again", lambda: running_app(lab), timeout=120)
    # The node it ran on was drained through an eviction the plan names; nothing else lost it.
    assert f"evict default/{first['metadata']['name']}" in out
    assert again["metadata"]["name"] != first["metadata"]["name"]
    assert len(app_pods(lab)) == 1


def node_images(lab: LabHandle, node: str, *, daemonsets_only: bool = False) -> set[str]:
    """The images of the charts' pods on `node`; `daemonsets_only`: of their DaemonSets'
    pods (the ones a wave replaces), not a Deployment's pod that happens to run there."""
    return {c["image"] for ns in ("kata-system", "gpu-operator")
            for p in get(lab, "pods", "-n", ns)["items"]
            if p["spec"].get("nodeName") == node and not p["metadata"].get("deletionTimestamp")
            and (not daemonsets_only or any(o.get("kind") == "DaemonSet" for o in
                                            p["metadata"].get("ownerReferences") or []))
            for c in p["spec"]["containers"]}


def installed(lab: LabHandle, tmp_path: Path) -> dict:
    """kata-deploy 3.30.0 + v26.3.3 installed; the answers that upgrade it to 4.1.0 + v26.7.0."""
    lab.reset()
    before = lab_answers(lab.info, sample_timeout=240, chart_timeout="2m",
                         versions=("3.30.0", "v26.3.3"), choices=CHOICES)
    done = run_installer(lab, tmp_path, before)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    after = lab_answers(lab.info, sample_timeout=60, chart_timeout="2m",
                        versions=("4.1.0", "v26.7.0"), choices=CHOICES)
    after["gpuOperator"]["resourceNaming"] = "pgpu"
    return after


# Both of gpu-node-2's GPUs held by a pod outside Kata: the drain leaves it (it is no Kata GPU
# pod), so the verification pod pinned to gpu-node-2 has no GPU - the second node's
# verification fails after the first node's passed.
GPU_HOG = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "gpu-hog", "namespace": "default"},
           "spec": {"nodeName": "gpu-node-2",
                    "containers": [{"name": "hog", "image": "busybox",
                                    "resources": {"limits": {"nvidia.com/pgpu": "2"}}}]}}


def test_the_second_nodes_failed_verification_stops_and_rolls_everything_back(lab, tmp_path):
    after = installed(lab, tmp_path)
    lab.apply(GPU_HOG)
    lab.wait_for("the GPU hog on gpu-node-2", lambda: get(lab, "pod", "gpu-hog")["spec"].get(
        "nodeName"), timeout=60)
    failed = run_installer(lab, tmp_path, after, "upgrade")
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1, out[-5000:]
    assert "✓ upgrade/wave-1" in out  # gpu-node-1 was upgraded and verified first
    assert "wave 2: verification on gpu-node-2 failed" in out, out[-3000:]
    assert "rolled back: gpu-operator to v26.3.3, kata-deploy to 3.30.0" in out
    releases = charts(lab)
    assert releases["kata-deploy"].endswith("3.30.0")
    assert releases["gpu-operator"].endswith("v26.3.3")
    for node in KATA:
        assert not get(lab, "node", node)["spec"].get("unschedulable")
    # gpu-node-1's pods return to the old versions (the rollback gave back rolling updates)
    lab.wait_for("gpu-node-1 back on the old images", lambda: not any(
        i.endswith((":4.1.0", ":v26.7.0")) for i in node_images(lab, "gpu-node-1")),
        timeout=120)
    lab.kubectl("delete", "pod", "gpu-hog", "--wait=false")


def test_an_interrupted_upgrade_resumes_and_finishes(lab, tmp_path):
    after = installed(lab, tmp_path)
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(after))
    run = JsonRun(lab, tmp_path, "upgrade", "--answers", str(path), "--yes")
    run.until(started("upgrade/wave-1"))
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.finish(timeout=60)
    assert code == 130, err[-2000:]

    again = run_installer(lab, tmp_path, after, "upgrade")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-5000:]
    assert "already at 4.1.0 with these values (done by the interrupted run)" in out
    assert charts(lab)["kata-deploy"].endswith("4.1.0")
    for node in KATA:
        assert not get(lab, "node", node)["spec"].get("unschedulable")
        assert any(i.endswith(":4.1.0") for i in node_images(lab, node))
