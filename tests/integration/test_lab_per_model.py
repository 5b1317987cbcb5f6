"""Per-model resource names and the Kata overhead, end to end on the lab (issue 18, point 9).

One headless install with `gpuOperator.resourceNaming: per-model` on the two prepared GPU
nodes (the unprepared one is left alone: its host fixes and reboot are another test's):
the plugin advertises nvidia.com/GH100_H100_SXM5_80GB and writes its spec under that name,
and host verification checks that spec. Then pods already on the Kata nodes leave less room
than the sample plus the RuntimeClass overhead: the run refuses the sample before applying it,
and `troubleshoot` names the overhead for a Kata GPU pod the real scheduler leaves Pending.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kubernetes.utils import parse_quantity

from tests.integration.cli_run import installer, write_answers
from tests.lab import guide

pytestmark = pytest.mark.lab
KATA = ("gpu-node-1", "gpu-node-2")
GI = 2**30
MODEL = "nvidia.com/GH100_H100_SXM5_80GB"  # 10de:2330, "GH100 [H100 SXM5 80GB]" in pci.ids


@pytest.fixture(scope="module")
def installed(lab, tmp_path_factory):
    lab.reset()
    tmp = tmp_path_factory.mktemp("per-model")
    answers = write_answers(
        lab, tmp, gpuOperator={"resourceNaming": "per-model"},
        nodes={"items": [{"name": n.name, "choice": "kata" if n.name in KATA else "leave"}
                         for n in lab.nodes]})
    first = installer(lab, tmp, "--answers", str(answers), "--yes")
    return lab, tmp, answers, first


def test_per_model_install_verifies_the_models_cdi_spec(installed):
    lab, _tmp, _answers, run = installed
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    for name in KATA:
        alloc = lab.kube.get(f"/api/v1/nodes/{name}")["status"]["allocatable"]
        assert alloc.get(MODEL) == "2" and "nvidia.com/pgpu" not in alloc
        assert f"verify/host/{name}" in run.stdout
    assert "nvidia.com-GH100_H100_SXM5_80GB.yaml lists IOMMU group(s) 20, 40" in run.stdout
    # the sample asked for the model (pgpu is advertised nowhere) and ran
    assert "create pod default/cuda-vectoradd-kata" in run.stdout and "Test PASSED" in run.stdout


def filler(node: str, memory: str) -> dict:
    """A plain pod bound to the node whose request takes most of its memory."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"filler-{node}", "namespace": "default"},
            "spec": {"nodeName": node, "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"memory": memory}}}]}}


def test_no_room_for_the_overhead_refuses_the_sample_and_troubleshoot_names_it(installed):
    lab, tmp, answers, first = installed
    assert first.returncode == 0
    # 512Gi allocatable - 490Gi = 22Gi: the sample's 16Gi fits, 16Gi + 10240Mi overhead not
    for name in KATA:
        lab.apply(filler(name, "490Gi"))
    try:
        run = installer(lab, tmp, "--answers", str(answers), "--yes")
        assert run.returncode == 1, run.stdout[-3000:]
        out = run.stdout
        assert "the sample fits on no Kata node" in out
        for name in KATA:
            # the operands on the node request a little too: the shortfall is counted with them
            m = re.search(rf"node {name}: memory short by (\S+) - needs 26Gi \(16Gi for the "
                          r"pod \+ 10Gi kata-qemu-nvidia-gpu overhead\)", out)
            assert m, out[-3000:]
            expected = 26 * GI - (512 * GI - requested_memory(lab, name))
            assert abs(parse_quantity(m[1]) - expected) <= GI / 10
        assert "set sample.memory to" in out and "free" in out
        assert "create pod default/cuda-vectoradd-kata" not in out  # refused before applying
        assert lab.kube.get_or_none("/api/v1/namespaces/default/pods/cuda-vectoradd-kata") \
            is None

        # A Kata GPU pod applied anyway: the real scheduler says only "Insufficient memory".
        lab.apply(guide.sample_pod(name="per-model-pending", resource=MODEL))
        found = lab.wait_for("the overhead finding", lambda: _overhead_finding(lab, tmp,
                                                                                answers),
                             timeout=90, interval=2)
        assert "Insufficient memory" in found["symptom"]
        # the API server keeps quantities canonical: the chart's 10240Mi and "1.0" read back so
        assert "overhead (cpu 1, memory 10Gi)" in found["cause"]
        assert any("Insufficient memory" in e for e in found["evidence"])
    finally:
        lab.kubectl("delete", "pod", "per-model-pending", "--ignore-not-found", "--wait=false")
        for name in KATA:
            lab.kubectl("delete", "pod", f"filler-{name}", "--ignore-not-found", "--wait=false")


def requested_memory(lab, node: str) -> int:
    """Memory requested by the pods on a node, summed here with the kubernetes client's own
    quantity parser: an oracle apart from installer.cluster.capacity."""
    pods = lab.kube.get("/api/v1/pods", fieldSelector=f"spec.nodeName={node}")["items"]
    live = [p for p in pods if p["status"].get("phase") not in ("Succeeded", "Failed")]
    own = [c.get("resources", {}).get("requests", {}).get("memory", "0")
           for p in live for c in p["spec"]["containers"]]
    overhead = [(p["spec"].get("overhead") or {}).get("memory", "0") for p in live]
    return sum(int(parse_quantity(q)) for q in own + overhead)


def _overhead_finding(lab, tmp: Path, answers: Path) -> dict | None:
    out = installer(lab, tmp, "troubleshoot", "--json", "--answers", str(answers))
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return next((f for f in json.loads(out.stdout) if f["rule"] == "kata-overhead-no-room"),
                None)
