"""The scale knob: many nodes and pods, created in bulk, for performance work.

Runs a second, separate lab (own state dir and loopback prefix) with 100 nodes and 1,000 pods;
LAB_SCALE_FULL=1 runs the full 1,000 nodes / 10,000 pods (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import os
import time

import pytest

from tests.lab.handle import own_lab
from tests.lab.kube import Kube
from tests.lab.lab import SCALE_NAMESPACE

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def scale_lab(tmp_path_factory):
    full = os.environ.get("LAB_SCALE_FULL") == "1"
    nodes, pods = (1000, 10000) if full else (100, 1000)
    t0 = time.monotonic()
    with own_lab(tmp_path_factory.mktemp("scale-lab"), "127.0.12", mode="scale",
                 scale_node_count=nodes, scale_pod_count=pods) as handle:
        yield handle.lab, handle.info, nodes, pods, time.monotonic() - t0


def test_scale_mode_creates_nodes_and_running_pods(scale_lab):
    _lab, info, nodes, pods, elapsed = scale_lab
    kube = Kube(info.kubeconfig)
    items, _ = kube.list("/api/v1/nodes")
    assert len(items) == nodes + 4
    ready = [
        n
        for n in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    ]
    assert len(ready) == len(items)
    scale = [n for n in items if n["metadata"]["name"].startswith("scale-node-")]
    gpu = [
        n
        for n in scale
        if n["metadata"]["labels"].get("feature.node.kubernetes.io/pci-10de.present") == "true"
    ]
    assert len(gpu) == nodes * 3 // 4
    running = kube.list(
        f"/api/v1/namespaces/{SCALE_NAMESPACE}/pods", fieldSelector="status.phase=Running"
    )[0]
    assert len(running) == pods
    assert info.scale == {"nodes": nodes, "pods": pods, "namespace": SCALE_NAMESPACE}
    print(f"scale lab with {nodes} nodes / {pods} pods up in {elapsed:.1f}s")
