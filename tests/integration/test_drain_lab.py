"""Draining a node on the lab's real API server: evictions wait for PodDisruptionBudgets (the
server's own 429), DaemonSet and bare pods are left alone, and a refused drain names each pod
still there and why."""

from __future__ import annotations

import asyncio

import pytest

from installer.cluster import drain, kube
from installer.permit import grant_permit

pytestmark = pytest.mark.lab
NS = "drain-test"
NODE = "cpu-node-1"


def _deployment(name: str) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"nodeName": NODE, "containers": [
                                      {"name": "c", "image": "busybox"}]}}}}


def _budget(name: str) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}}


def _client(lab):
    return kube.connect(str(lab.kubeconfig), None)


def _ours(lab) -> list[dict]:
    return [p for p in drain.pods_on(_client(lab), NODE)
            if p["metadata"]["namespace"] == NS and not p["metadata"].get("deletionTimestamp")]


def _running(lab, app: str) -> bool:
    return any(p["metadata"].get("labels", {}).get("app") == app
               and p.get("status", {}).get("phase") == "Running" for p in _ours(lab))


def test_drain_waits_for_a_budget_and_leaves_bare_pods(lab):
    lab.kubectl("delete", "namespace", NS, "--wait=true", check=False)
    lab.kubectl("create", "namespace", NS)
    lab.apply(_deployment("held"))
    lab.apply(_budget("held"))
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare", "namespace": NS},
               "spec": {"nodeName": NODE, "containers": [{"name": "c", "image": "busybox"}]}})
    lab.wait_for("the deployment's pod running", lambda: _running(lab, "held"), timeout=60)
    k = _client(lab)
    permit = grant_permit("test: drain cpu-node-1")

    plan = drain.drain_plan(_ours(lab))
    assert plan.unmanaged == (f"{NS}/bare",)
    (held,) = plan.evict
    assert held.startswith(f"{NS}/held-")

    with pytest.raises(drain.DrainTimeout) as refused:
        asyncio.run(drain.evict_and_wait(k, permit, NODE, plan.evict, timeout=3))
    assert refused.value.waiting == {held: "a PodDisruptionBudget refuses"}
    assert held in {f"{NS}/{p['metadata']['name']}" for p in _ours(lab)}

    lab.kubectl("delete", "pdb", "held", "-n", NS)
    asyncio.run(drain.evict_and_wait(k, permit, NODE, plan.evict, timeout=60))
    left = {f"{NS}/{p['metadata']['name']}" for p in _ours(lab)}
    assert held not in left and f"{NS}/bare" in left
    lab.kubectl("delete", "namespace", NS, "--wait=false")


def test_cordon_and_uncordon_flip_only_schedulability(lab):
    k = _client(lab)
    permit = grant_permit("test: cordon cpu-node-1")
    asyncio.run(drain.cordon(k, permit, NODE, "test"))
    try:
        node = k.get_json(f"/api/v1/nodes/{NODE}")
        assert node["spec"].get("unschedulable") is True
        # discovery reads the mark, so the next run knows whose cordon it is
        assert kube._node_facts(node).cordoned_for == "test"
    finally:
        asyncio.run(drain.uncordon(k, permit, NODE))
    node = k.get_json(f"/api/v1/nodes/{NODE}")
    assert "unschedulable" not in node["spec"] and kube._node_facts(node).cordoned_for is None
