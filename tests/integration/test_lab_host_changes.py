"""Host changes made over SSH reach the cluster: the simulator reads each host's tree."""

from __future__ import annotations

import contextlib
import subprocess

import pytest

from .test_lab_guide_flow import install_guide_charts, node_labels
from .test_lab_ssh import ssh

pytestmark = pytest.mark.lab

PREPARE = (
    "sudo sh -c '"
    'printf "blacklist nvidia\\nblacklist nvidia_drm\\nblacklist nvidia_modeset\\n'
    'blacklist nvidia_uvm\\n" > /etc/modprobe.d/blacklist-nvidia.conf && '
    'sed -i "s/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=\\"intel_iommu=on '
    'iommu=pt\\"/" /etc/default/grub && update-grub\''
)


def test_preparing_the_unprepared_host_makes_the_policy_ready(lab_bare):
    lab = lab_bare
    node = lab.node("gpu-node-3")
    if not node.ssh:
        pytest.skip("lab runs without sshd")
    install_guide_charts(lab)
    lab.wait_for(
        "pre-installed driver seen",
        lambda: (
            node_labels(lab, "gpu-node-3").get("nvidia.com/gpu.deploy.driver") == "pre-installed"
        ),
    )

    ssh(node, PREPARE)
    with contextlib.suppress(subprocess.CalledProcessError):  # the session drops on reboot
        ssh(node, "sudo reboot")
    assert "intel_iommu=on" in ssh(node, "cat /proc/cmdline")

    # host driver gone -> vfio manager binds the GPUs -> device plugin -> validator passes
    pgpu = lab.wait_for(
        "pgpu on gpu-node-3",
        lambda: lab.kube.get("/api/v1/nodes/gpu-node-3")["status"]["allocatable"].get(
            "nvidia.com/pgpu"
        ),
    )
    assert pgpu == "2"
    assert "nvidia.com/gpu.deploy.driver" not in node_labels(lab, "gpu-node-3")
    state = lab.wait_for(
        "ClusterPolicy ready",
        lambda: (
            lab.kube.get("/apis/nvidia.com/v1/clusterpolicies/cluster-policy")
            .get("status", {})
            .get("state")
            == "ready"
        ),
    )
    assert state
