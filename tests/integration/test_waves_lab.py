"""Waves on the lab: two hosts that each need host fixes and a reboot (the host-driver tree),
maxUnavailable 2 - both are cordoned, drained and rebooted in one wave, a Deployment's pod
on one of them is evicted before its reboot, and both end uncordoned.

Its own lab (a second host-driver node beside gpu-node-3), torn down after."""

from __future__ import annotations

import json

import pytest

from tests.integration import cli_run
from tests.lab.handle import own_lab

pytestmark = pytest.mark.lab
NODES = ("gpu-node-3", "gpu-node-4")
NS = "waves-test"


@pytest.fixture(scope="module")
def waves_lab(tmp_path_factory):
    with own_lab(tmp_path_factory.mktemp("waves-lab"), "127.0.53",
                 extra_nodes=["gpu-node-4=gpu-host-driver"]) as lab:
        yield lab


def _app_pods(lab) -> list[dict]:
    out = lab.kubectl("get", "pods", "-n", NS, "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def test_two_hosts_are_drained_and_rebooted_in_one_wave_and_uncordoned(waves_lab, tmp_path):
    lab = waves_lab
    lab.kubectl("create", "namespace", NS)
    labels = {"app": "web"}
    lab.apply({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": NS},
               "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels}, "spec": {
                            "nodeSelector": {"kubernetes.io/hostname": "gpu-node-3"},
                            "containers": [{"name": "c", "image": "busybox"}]}}}})
    first = lab.wait_for("the web pod running on gpu-node-3", lambda: [
        p["metadata"]["name"] for p in _app_pods(lab)
        if p.get("status", {}).get("phase") == "Running"], timeout=120)[0]

    # every GPU node to Kata: gpu-node-1 and -2 need no host fix, so they are in no wave
    answers = cli_run.write_answers(lab, tmp_path, rollout={"maxUnavailable": 2},
                                    sample={"run": False})
    run = cli_run.JsonRun(lab, tmp_path, "--answers", str(answers), "--yes")
    code, err = run.finish(timeout=900)
    events = run.events
    finished = [e for e in events if e["kind"] == "run-finished"]
    assert code == 0, "\n".join([finished[-1]["message"] if finished else err[-3000:], *(
        f"{e['path']}: {e['message']}" for e in events if e["kind"] in ("change", "output")
        or e.get("status") == "failed")][:80])

    waves = [e["message"] for e in events if e["kind"] == "output" and e["path"] == "waves"]
    assert waves[0] == "wave 1 of 1: gpu-node-3, gpu-node-4"
    applied = [(e["path"], e["message"]) for e in events if e["kind"] == "change"
               and e["applied"]]
    paths = [p for p, _ in applied]
    # both cordoned before either reboots: one wave, side by side
    for node in NODES:
        assert paths.index(f"cordon/{node}") < min(paths.index(f"fix/{n}/reboot") for n in NODES)
        assert paths.index(f"fix/{node}/reboot") < paths.index(f"uncordon/{node}")
    drained = dict(applied)["drain/gpu-node-3"]
    assert drained == f"drain gpu-node-3 (evict pods {NS}/{first}; PDBs honoured)"
    assert paths.index("drain/gpu-node-3") < paths.index("fix/gpu-node-3/reboot")
    # one re-probe for the whole wave
    probes = [e for e in events if e["kind"] == "step-started" and e["path"] == "probe/hosts"]
    assert len(probes) == 2, [e["message"] for e in probes]

    for node in NODES:
        obj = json.loads(lab.kubectl("get", "node", node, "-o", "json").stdout)
        assert not obj["spec"].get("unschedulable"), node
        assert "gpu-kata-installer.io/cordoned-for" not in obj["metadata"].get(
            "annotations", {})
    assert first not in [p["metadata"]["name"] for p in _app_pods(lab)]  # it was evicted
