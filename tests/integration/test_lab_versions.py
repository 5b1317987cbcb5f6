"""Two version pairs on a GPU pool as many clusters run it: the Kata-ready GPU nodes tainted
nvidia.com/gpu=present:NoSchedule, an untainted GPU node for traditional containers, a CPU
node. Where kata-deploy lands is decided by the lab's real DaemonSet controller and scheduler
from what each version's stand-in chart renders; what the operator and kata-deploy then do is
the simulator's reading of their sources at those tags (domain.md section 9).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from installer.answers.versions import parse
from tests.lab import chartversions, guide
from tests.lab.answers import lab_answers
from tests.lab.handle import LabHandle, own_lab

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]

# (kata-deploy, GPU Operator): a v26.3.x cluster with kata-deploy 3.30, and the current pair.
PAIRS = [("3.30.0", "v26.3.3"), ("4.1.0", "v26.7.0")]
# The current pair installs with per-model resource names (the device plugin at v0.0.5 names
# the GPUs by model and writes that model's CDI spec), the older one with nvidia.com/pgpu.
NAMING = {"v26.3.3": "pgpu", "v26.7.0": "per-model"}
MODEL = "nvidia.com/GH100_H100_SXM5_80GB"
KATA = ("gpu-node-1", "gpu-node-2")
CHOICES = {"gpu-node-1": "kata", "gpu-node-2": "kata", "gpu-node-3": "traditional",
           "cpu-node-1": "leave"}


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Iterator[LabHandle]:
    with own_lab(tmp_path_factory.mktemp("tainted-lab"), "127.0.15", mode="tainted") as lab:
        yield lab


def get(lab: LabHandle, *args: str) -> dict:
    return json.loads(lab.kubectl("get", *args, "-o", "json").stdout)


def kata_deploy_nodes(lab: LabHandle) -> list[str]:
    pods = get(lab, "pods", "-n", "kata-system", "-l", "name=kata-deploy")["items"]
    return sorted(p["spec"].get("nodeName") or "" for p in pods)


def node_labels(lab: LabHandle) -> dict[str, dict[str, str]]:
    return {n["metadata"]["name"]: n["metadata"]["labels"] for n in get(lab, "nodes")["items"]}


def gpu_drivers(lab: LabHandle, node: str) -> set[str]:
    devices = Path(lab.node(node).host_root) / "sys/bus/pci/devices"
    out = set()
    for dev in devices.iterdir():
        if (dev / "vendor").read_text().strip() == "0x10de":
            link = dev / "driver"
            out.add(os.path.basename(os.readlink(link)) if link.is_symlink() else "")
    return out


@pytest.mark.parametrize(("kata_deploy", "operator"), PAIRS)
def test_the_guides_kata_deploy_lands_on_every_untainted_node_and_misses_the_gpu_pool(
        pool, kata_deploy, operator):
    """The chart's `nodeSelector: {}` and `tolerations: []` (3.29.0 - 4.1.0): the DaemonSet
    controller puts kata-deploy on the CPU node and the traditional GPU node - restarting their
    containerd - and on neither tainted Kata GPU node."""
    lab = pool
    lab.reset()
    chart = lab.info.chart_versions["kata-deploy"][kata_deploy]
    lab.helm("install", "kata-deploy", chart, "-n", "kata-system", "--create-namespace",
             *guide.set_args(guide.KATA_DEPLOY_SET))
    try:
        landed = lab.wait_for("kata-deploy pods on the untainted nodes", lambda: (
            n := kata_deploy_nodes(lab)) == ["cpu-node-1", "gpu-node-3"] and n, timeout=90)
        assert landed == ["cpu-node-1", "gpu-node-3"]
        labels = lab.wait_for("kata-deploy to label the nodes it runs on", lambda: (
            ls := node_labels(lab))["cpu-node-1"].get("katacontainers.io/kata-runtime") == "true"
            and ls, timeout=90)
        assert all("katacontainers.io/kata-runtime" not in labels[n] for n in KATA)
        assert (Path(lab.node("cpu-node-1").host_root) / "opt/kata").exists()
    finally:
        lab.helm("uninstall", "kata-deploy", "-n", "kata-system", "--wait", check=False)


@pytest.mark.parametrize(("kata_deploy", "operator"), PAIRS)
def run_installer(lab: LabHandle, tmp_path: Path, answers: dict,
                  *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(answers))
    env = {**lab.env, "XDG_STATE_HOME": str(tmp_path / "state"),
           "GPU_KATA_HELM": lab.info.binaries["helm"]}
    return subprocess.run([sys.executable, "-m", "installer", *args, "--answers", str(path),
                           "--yes"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("kata_deploy", "operator"), PAIRS)
def test_the_installer_puts_kata_on_the_tainted_pool_alone_at_each_version_pair(
        pool, tmp_path, kata_deploy, operator):
    lab = pool
    lab.reset()
    answers = lab_answers(lab.info, sample_timeout=240, chart_timeout="2m",
                          versions=(kata_deploy, operator), choices=CHOICES)
    answers["gpuOperator"]["resourceNaming"] = NAMING[operator]

    def installer(*args: str) -> subprocess.CompletedProcess:
        return run_installer(lab, tmp_path, answers, *args)

    done = installer()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Test PASSED" in done.stdout
    assert "on the hosts: kata-deploy runs on gpu-node-1, gpu-node-2 (" in done.stdout
    assert kata_deploy_nodes(lab) == list(KATA)
    assert not (Path(lab.node("cpu-node-1").host_root) / "opt/kata").exists()
    assert not (Path(lab.node("gpu-node-3").host_root) / "opt/kata").exists()
    assert not any((Path(lab.node(n).host_root) / "etc/systemd/system/nydus-for-kata-tee.service")
                   .exists() for n in KATA)  # snapshotter.setup: [] - no host change unasked
    spec = f"nvidia.com-{MODEL.removeprefix('nvidia.com/')}.yaml" \
        if NAMING[operator] == "per-model" else "nvidia.com-pgpu.yaml"
    assert f"{spec} lists IOMMU group(s)" in done.stdout  # host verification read that spec

    labels = node_labels(lab)
    rc = get(lab, "runtimeclass", "kata-qemu-nvidia-gpu")
    annotation = (rc["metadata"].get("annotations") or {}).get("katacontainers.io/kata-version")
    if parse(kata_deploy) >= (3, 32, 0):  # runtimeclasses.yaml@3.32.0 names it
        assert annotation == kata_deploy
    else:
        assert annotation is None
    marker = "kata-deploy.katacontainers.io/default"
    for n in KATA:
        assert labels[n]["katacontainers.io/kata-runtime"] == "true"
        assert labels[n]["nvidia.com/gpu.deploy.kata-manager"] == "true"  # set, never deployed
        # v26.7.0 adds gpu.deploy.client; kata-deploy 4.1 adds its instance marker
        assert (labels[n].get("nvidia.com/gpu.deploy.client") == "true") == (operator == "v26.7.0")
        assert (labels[n].get(marker) == "true") == (kata_deploy == "4.1.0")
        assert rc["scheduling"]["nodeSelector"].get(marker) == (
            "true" if kata_deploy == "4.1.0" else None)
    assert labels["gpu-node-3"]["nvidia.com/gpu.workload.config"] == "container"
    operands = get(lab, "daemonsets", "-n", "gpu-operator")["items"]
    images = {c["image"] for d in operands for c in
              d["spec"]["template"]["spec"]["containers"] + d["spec"]["template"]["spec"].get(
                  "initContainers", [])}
    assert f"nvcr.io/nvidia/gpu-operator:{operator}" in images  # the validator's image
    assert "nvidia-kata-manager" not in {d["metadata"]["name"] for d in operands}

    gone = installer("uninstall")
    assert gone.returncode == 0, gone.stdout[-3000:] + gone.stderr[-2000:]
    after = node_labels(lab)
    assert all(marker not in after[n] and "katacontainers.io/kata-runtime" not in after[n]
               for n in KATA)
    # The vfio-manager's preStop only unbinds from v26.7.0; v26.3.x leaves GPUs on vfio-pci.
    want = {""} if operator == "v26.7.0" else {"vfio-pci"}
    assert lab.wait_for("the vfio-manager pods' preStop",
                        lambda: gpu_drivers(lab, "gpu-node-1") == want, timeout=60)


@pytest.mark.parametrize(("kata_deploy", "operator"), PAIRS)
def test_an_operand_held_in_its_init_container_is_named_at_each_version_pair(
        pool, tmp_path, kata_deploy, operator):
    """The host-driver GPU node taken to Kata with its checks and fixes set aside: at both
    pairs the vfio-manager fails in its k8s-driver-manager init container (k8s-driver-manager
    v0.11.0 / v0.12.0), and the run stops naming the host driver, not a timeout."""
    lab = pool
    lab.reset()
    answers = lab_answers(lab.info, sample_timeout=60, chart_timeout="2m", fixes="skip",
                          versions=(kata_deploy, operator),
                          choices={"gpu-node-3": "kata"})
    answers["checks"] = {"ignore": ["all"]}
    failed = run_installer(lab, tmp_path, answers)
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-2000:]
    assert "✗ verify/gpu-operator" in failed.stdout
    assert "node gpu-node-3 has a host NVIDIA driver" in failed.stdout
    assert "timed out" not in failed.stdout
    pods = get(lab, "pods", "-n", "gpu-operator", "-l", "name=nvidia-vfio-manager")["items"]
    (init,) = [c for p in pods for c in p["status"].get("initContainerStatuses", [])]
    assert init["name"] == "k8s-driver-manager"
    assert init["image"].endswith(chartversions.IMAGE_VERSIONS[operator]["vfioManager"])
