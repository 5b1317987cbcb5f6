"""The lab's control plane and nodes, seen through the real kubectl."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.lab


def test_kube_apiserver_version_is_stamped(lab):
    out = subprocess.run(
        [lab.info.binaries["kube-apiserver"], "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"Kubernetes {lab.info.kubernetes_version}"
    version = json.loads(lab.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == lab.info.kubernetes_version
    assert version["minor"] == lab.info.kubernetes_version.split(".")[1]


def test_tools_are_the_real_helm_and_kubectl(lab):
    assert "v4.1.4" in lab.helm("version", "--short").stdout
    client = json.loads(lab.kubectl("version", "-o", "json").stdout)
    assert client["clientVersion"]["gitVersion"] == "v1.35.2"
    assert client["serverVersion"]["gitVersion"] == lab.info.kubernetes_version


def test_get_nodes_wide_lists_the_simulated_nodes(lab):
    out = lab.kubectl("get", "nodes", "-o", "wide").stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    for n in lab.nodes:
        if n.name.startswith("scale-node-"):
            continue
        row = rows[n.name]
        assert row[1] == "Ready"
        assert n.internal_ip in row
        assert "containerd://2.1.4" in row
        assert lab.info.kubernetes_version in row  # kubelet version


def test_nodes_carry_nfd_labels_capacity_and_addresses(lab_bare):
    lab = lab_bare
    nodes = {n["metadata"]["name"]: n for n in lab.kube.list("/api/v1/nodes")[0]}
    gpu = nodes["gpu-node-1"]
    labels = gpu["metadata"]["labels"]
    assert labels["feature.node.kubernetes.io/pci-10de.present"] == "true"
    assert labels["feature.node.kubernetes.io/cpu-cpuid.VMX"] == "true"
    assert (
        "feature.node.kubernetes.io/pci-10de.present"
        not in nodes["cpu-node-1"]["metadata"]["labels"]
    )
    st = gpu["status"]
    assert st["capacity"]["cpu"] == "64" and st["capacity"]["memory"] == "512Gi"
    assert {"type": "InternalIP", "address": lab.node("gpu-node-1").internal_ip} in st["addresses"]
    assert st["nodeInfo"]["kubeletVersion"] == lab.info.kubernetes_version
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    # nothing GPU-operator-made before the operator runs
    assert not [k for k in st["capacity"] if k.startswith("nvidia.com/")]
