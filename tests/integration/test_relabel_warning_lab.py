"""The relabel warning on the lab: discovery reads no pods, and the plan looks for GPU pods
only on the nodes it relabels, with the API server filtering by node (issue #5, issue #8).

Real parts: the lab's kube-apiserver and KWOK nodes (the pods really run there), the real
discovery and `gpu-pods` executor in process with every GET recorded, and the headless CLI
`--dry-run` (real sshd hosts for the probe) printing the same warning.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from installer.answers.model import load_answers
from installer.cluster import kube
from installer.cluster.facts import Facts
from installer.engine.params import GpuPodsParams
from installer.engine.plan import build_plan
from installer.engine.runner import Context
from installer.engine.steps.discover import gpu_pods
from tests.integration.cli_run import installer, write_answers

pytestmark = pytest.mark.lab
PODS = {"train-0": "gpu-node-1", "train-1": "cpu-node-1"}  # cpu-node-1 is left alone
WARNING = ("gpu-node-1 runs GPU pods (default/train-0); relabelling it moves its GPUs away "
           "from them - drain it first")


def gpu_pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": [{
                "name": "cuda", "image": "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0",
                "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}


def running(lab) -> bool:
    pods = json.loads(lab.kubectl("get", "pods", "-n", "default", "-o", "json").stdout)["items"]
    return {p["metadata"]["name"] for p in pods
            if p["status"].get("phase") == "Running"} >= set(PODS)


def test_gpu_pods_are_looked_for_only_on_relabelled_nodes_and_warned_about(lab_bare, tmp_path):
    lab = lab_bare
    for name, node in PODS.items():
        lab.apply(gpu_pod(name, node))
    try:
        lab.wait_for("the GPU pods Running", lambda: running(lab))
        path = write_answers(lab, tmp_path)
        answers = load_answers(path)
        k = kube.connect(answers.cluster.kubeconfig, answers.cluster.context)
        seen: list[tuple[str, dict[str, str]]] = []
        get = k._get

        def recorded(path: str, query: dict[str, str], timeout: float | None = None):
            seen.append((path, dict(query)))
            return get(path, query, timeout)

        k._get = recorded  # type: ignore[method-assign]
        facts = Facts(cluster=asyncio.run(kube.discover(k)))
        assert seen and not [p for p, _ in seen if p.endswith("/pods")]
        assert all(n.gpu_pods is None for n in facts.cluster.nodes)

        plan = build_plan(answers, facts)
        step = next(s for s in plan.phase("gather") if isinstance(s.params, GpuPodsParams))
        assert step.params.nodes == ("gpu-node-1", "gpu-node-2", "gpu-node-3")
        seen.clear()
        ctx = Context(dry_run=True, sinks=[], decider=None, services={"kube": k})  # type: ignore[arg-type]
        facts = asyncio.run(gpu_pods(ctx, step, facts))
        assert sorted(q["fieldSelector"] for p, q in seen if p == "/api/v1/pods") == [
            f"spec.nodeName={n},status.phase=Running"
            for n in ("gpu-node-1", "gpu-node-2", "gpu-node-3")]
        assert [p for p, _ in seen] == ["/api/v1/pods"] * 3  # nothing else, no other node
        assert facts.cluster.node("gpu-node-1").gpu_pods == ("default/train-0",)
        assert facts.cluster.node("cpu-node-1").gpu_pods is None  # never looked at
        replanned = build_plan(answers, facts)
        assert not any(isinstance(s.params, GpuPodsParams) for s in replanned.steps)
        assert [w for w in replanned.warnings if "runs GPU pods" in w] == [WARNING]

        run = installer(lab, tmp_path, "--answers", str(path), "--dry-run")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert "scan/gpu-pods" in run.stdout
        assert f"! {WARNING}" in run.stdout and f"  warning: {WARNING}" in run.stdout
        assert "train-1" not in run.stdout
    finally:
        lab.kubectl("delete", "pod", "-n", "default", *PODS, "--grace-period=0", "--force",
                    "--ignore-not-found", check=False)
