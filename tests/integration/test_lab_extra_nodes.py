"""Extra hosts from other fixture trees: an old kubelet without the PodResources gate and a
TDX host with CC-capable GPUs show their symptoms (domain.md section 6, items 5 and 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.lab import guide
from tests.lab.answers import lab_answers
from tests.lab.handle import own_lab
from tests.lab.kube import Kube

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def extra_lab(tmp_path_factory):
    with own_lab(tmp_path_factory.mktemp("extra-lab"), "127.0.13", extra_nodes=[
            "gpu-node-4=kubelet-no-gate@v1.33.5", "gpu-node-5=cc-host"]) as lab:
        yield lab.info


def _wait(fn, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.5)
    raise AssertionError("timed out")


def test_old_kubelet_and_cc_host(extra_lab):
    info = extra_lab
    env = info.env()
    helm = info.binaries["helm"]
    subprocess.run(
        [
            helm,
            "install",
            "kata-deploy",
            info.charts["kata-deploy"],
            "-n",
            "kata-system",
            "--create-namespace",
            "--wait",
            *guide.set_args(guide.KATA_DEPLOY_SET),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            helm,
            "install",
            "gpu-operator",
            info.charts["gpu-operator"],
            "-n",
            "gpu-operator",
            "--create-namespace",
            *guide.set_args(guide.GPU_OPERATOR_SET),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    kube = Kube(info.kubeconfig)
    node = lambda n: kube.get(f"/api/v1/nodes/{n}")  # noqa: E731
    _wait(lambda: node("gpu-node-5")["metadata"]["labels"].get("nvidia.com/cc.ready.state"))
    assert node("gpu-node-5")["metadata"]["labels"]["nvidia.com/cc.ready.state"] == "true"
    assert node("gpu-node-4")["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.5"
    _wait(lambda: node("gpu-node-4")["status"]["allocatable"].get("nvidia.com/pgpu"))

    for name, target in (("on-old-kubelet", "gpu-node-4"), ("on-cc-host", "gpu-node-5")):
        subprocess.run(
            [info.binaries["kubectl"], "apply", "-f", "-"],
            env=env,
            check=True,
            input=json.dumps(guide.sample_pod(name, node=target)),
            text=True,
            capture_output=True,
        )
    path = "/api/v1/namespaces/default/pods/"
    # scheduled on the 1.33 kubelet, then stuck creating: the feature gate is off there
    _wait(lambda: kube.get(path + "on-old-kubelet")["spec"].get("nodeName"))
    events = _wait(
        lambda: [
            e
            for e in kube.list("/api/v1/namespaces/default/events")[0]
            if e["involvedObject"]["name"] == "on-old-kubelet"
            and e["reason"] == "FailedCreatePodSandBox"
        ]
    )
    assert events[0]["message"] == "PodResources API Get method disabled"
    assert kube.get(path + "on-old-kubelet")["status"]["phase"] == "Pending"
    # GPUs in CC mode on the TDX host: the RuntimeClass's cc.ready.state=false never matches
    cond = _wait(
        lambda: next(
            (
                c
                for c in kube.get(path + "on-cc-host")["status"].get("conditions", [])
                if c["type"] == "PodScheduled" and c["status"] == "False"
            ),
            None,
        )
    )
    assert "didn't match Pod's node affinity/selector" in cond["message"]
    # ... and troubleshooting names both causes, with the host check as evidence.
    answers = lab_answers(info)
    answers["nodes"]["items"] = [{"name": n, "choice": "kata"}
                                 for n in ("gpu-node-4", "gpu-node-5")]
    path_answers = info.json_path.parent / "ts-answers.yaml"
    path_answers.write_text(yaml.safe_dump(answers))
    out = subprocess.run([sys.executable, "-m", "installer", "troubleshoot", "--json",
                          "--answers", str(path_answers)], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    findings = {f["rule"]: f for f in json.loads(out.stdout)}
    gate = findings["kubelet-podresources-gate"]
    assert "gpu-node-4" in gate["cause"]
    assert any("PodResources API Get method disabled" in e for e in gate["evidence"])
    assert any("host gpu-node-4 check kubelet-podresources-gate" in e for e in gate["evidence"])
    cc = findings["cc-ready-state-blocks-scheduling"]
    assert "gpu-node-5" in cc["cause"]
