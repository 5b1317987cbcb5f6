"""Each node's InternalIP reaches a real sshd serving that node's own host tree."""

from __future__ import annotations

import subprocess

import pytest

from tests.lab.simulator.hoststate import inside

pytestmark = pytest.mark.lab


def ssh(node, command: str) -> str:
    return subprocess.run(
        [
            "ssh",
            "-p",
            str(node.ssh_port),
            "-i",
            node.identity_file,
            "-o",
            f"UserKnownHostsFile={node.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"{node.ssh_user}@{node.internal_ip}",
            command,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout


def test_ssh_to_two_nodes_shows_each_nodes_own_cmdline(lab_bare):
    lab = lab_bare
    nodes = [lab.node("gpu-node-1"), lab.node("gpu-node-3")]
    if not all(n.ssh for n in nodes):
        pytest.skip("lab runs without sshd (LAB_NO_SSH=1 or tests.lab.hosts missing)")
    seen = {}
    for n in nodes:
        seen[n.name] = ssh(n, "cat /proc/cmdline").strip()
        assert seen[n.name] == inside(n.host_root, "proc/cmdline").read_text().strip()
        assert ssh(n, "hostname").strip() == n.name
    assert seen["gpu-node-1"] != seen["gpu-node-3"]
    assert "intel_iommu=on" in seen["gpu-node-1"]
    assert "intel_iommu=on" not in seen["gpu-node-3"]


def test_node_internal_ips_are_the_ssh_addresses(lab):
    items = {n["metadata"]["name"]: n for n in lab.kube.list("/api/v1/nodes")[0]}
    for n in lab.nodes:
        if not n.ssh:
            continue
        addrs = items[n.name]["status"]["addresses"]
        assert {"type": "InternalIP", "address": n.internal_ip} in addrs
