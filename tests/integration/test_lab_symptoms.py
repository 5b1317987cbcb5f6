"""Wrong values produce the symptoms real clusters show (domain.md section 6)."""

from __future__ import annotations

import json

import pytest

from tests.lab import guide
from tests.lab.simulator.hoststate import inside

from .test_lab_guide_flow import (
    install_guide_charts,
    node_labels,
    pod,
    wait_runtime_class_labels,
)

pytestmark = pytest.mark.lab


def _alloc(lab, node):
    return lab.kube.get(f"/api/v1/nodes/{node}")["status"]["allocatable"]


def _scheduled_false(lab, name):
    return lab.wait_for(
        f"{name} unschedulable",
        lambda: next(
            (
                c
                for c in ((pod(lab, name) or {}).get("status") or {}).get("conditions", [])
                if c["type"] == "PodScheduled" and c["status"] == "False"
            ),
            None,
        ),
    )


def test_mode_left_at_kubevirt_gives_no_pgpu(lab_bare):
    lab = lab_bare
    values = [v for v in guide.GPU_OPERATOR_SET if not v.startswith("sandboxWorkloads.mode")]
    install_guide_charts(lab, operator_set=values)
    res = lab.wait_for(
        "kubevirt per-model resource",
        lambda: _alloc(lab, "gpu-node-1").get("nvidia.com/GH100_H100_SXM5_80GB"),
    )
    assert res == "2"
    assert "nvidia.com/pgpu" not in _alloc(lab, "gpu-node-1")
    assert lab.kube.get_or_none(
        "/apis/apps/v1/namespaces/gpu-operator/daemonsets/nvidia-sandbox-device-plugin-daemonset"
    )
    # no CDI spec written in this mode (a fixture may carry one from an earlier boot)
    node = lab.node("gpu-node-1")
    spec, before = (
        inside(r, "var/run/cdi/nvidia.com-pgpu.yaml") for r in (node.host_root, node.fixture)
    )
    assert spec.exists() == before.exists()
    assert not spec.exists() or spec.read_text() == before.read_text()
    wait_runtime_class_labels(lab, "gpu-node-1", "gpu-node-2", "gpu-node-3")
    lab.apply(guide.sample_pod())
    cond = _scheduled_false(lab, guide.SAMPLE_POD_NAME)
    assert "Insufficient nvidia.com/pgpu" in cond["message"]


def test_sandbox_workloads_disabled_deploys_container_operands(lab_bare):
    lab = lab_bare
    install_guide_charts(lab, operator_set=["nfd.enabled=true"])
    labels = lab.wait_for(
        "container operand labels",
        lambda: (
            lambda lb: lb if lb.get("nvidia.com/gpu.deploy.device-plugin") == "true" else None
        )(node_labels(lab, "gpu-node-1")),
    )
    assert "nvidia.com/gpu.deploy.vfio-manager" not in labels
    state = lab.wait_for(
        "ClusterPolicy notReady",
        lambda: (
            (lab.kube.get_or_none("/apis/nvidia.com/v1/clusterpolicies/cluster-policy") or {})
            .get("status", {})
            .get("state")
        ),
    )
    assert state == "notReady"
    pods = lab.wait_for(
        "crash-looping device plugin",
        lambda: [
            p
            for p in lab.kube.list(
                "/api/v1/namespaces/gpu-operator/pods",
                labelSelector="app=nvidia-device-plugin-daemonset",
            )[0]
            if p["spec"].get("nodeName") == "gpu-node-1"
            and "CrashLoopBackOff" in json.dumps(p["status"].get("containerStatuses"))
        ],
    )
    log = lab.kubectl("-n", "gpu-operator", "logs", pods[0]["metadata"]["name"]).stdout
    assert "could not load NVML library" in log


def test_workload_label_typo_is_reported_by_the_operator(lab_bare):
    """The operator gives a node with an invalid label the ClusterPolicy's default workload
    (controllers/state_manager.go `getWorkloadConfig`): the guide's vm-passthrough here."""
    lab = lab_bare
    lab.kubectl("label", "node", "gpu-node-1", "nvidia.com/gpu.workload.config=kata")
    install_guide_charts(lab)
    lab.wait_for(
        "the default workload's labels on the typo node",
        lambda: node_labels(lab, "gpu-node-1").get("nvidia.com/gpu.deploy.vfio-manager") == "true",
    )
    assert "nvidia.com/gpu.deploy.device-plugin" not in node_labels(lab, "gpu-node-1")
    log = lab.wait_for(
        "operator log",
        lambda: (lambda out: out if "invalid GPU workload config" in out else None)(
            lab.kubectl("-n", "gpu-operator", "logs", "deploy/gpu-operator", check=False).stdout
        ),
    )
    assert "invalid GPU workload config: kata" in log


def test_missing_shim_means_runtimeclass_not_found(lab_bare):
    lab = lab_bare
    kata = [v for v in guide.KATA_DEPLOY_SET if "qemu-nvidia-gpu" not in v] + [
        "shims.qemu.enabled=true",
        "defaultShim.amd64=qemu",
    ]
    install_guide_charts(lab, kata_set=kata)
    r = lab.kubectl("apply", "-f", "-", input=json.dumps(guide.sample_pod()), check=False)
    assert r.returncode != 0
    assert 'RuntimeClass "kata-qemu-nvidia-gpu" not found' in r.stderr


def test_cc_manager_disabled_leaves_no_cc_label_and_pods_unmatched(lab_bare):
    lab = lab_bare
    install_guide_charts(lab, operator_set=[*guide.GPU_OPERATOR_SET, "ccManager.enabled=false"])
    lab.wait_for("pgpu on gpu-node-1", lambda: _alloc(lab, "gpu-node-1").get("nvidia.com/pgpu"))
    assert "nvidia.com/cc.ready.state" not in node_labels(lab, "gpu-node-1")
    lab.apply(guide.sample_pod())
    cond = _scheduled_false(lab, guide.SAMPLE_POD_NAME)
    assert "didn't match Pod's node affinity/selector" in cond["message"]


def test_empty_p_gpu_alias_gives_per_model_resource_names(lab_bare):
    lab = lab_bare
    ops = [*guide.GPU_OPERATOR_SET, "kataSandboxDevicePlugin.env[0].name=P_GPU_ALIAS"]
    name, ns = guide.GPU_OPERATOR_RELEASE
    install_guide_charts(lab, operator_set=[])
    lab.helm(
        "upgrade",
        name,
        str(lab.charts["gpu-operator"]),
        "-n",
        ns,
        *guide.set_args(ops),
        "--set-string",
        "kataSandboxDevicePlugin.env[0].value=",
    )
    res = lab.wait_for(
        "per-model resource",
        lambda: (
            _alloc(lab, "gpu-node-2").get("nvidia.com/GH100_H100_SXM5_80GB") == "2"
            and _alloc(lab, "gpu-node-2").get("nvidia.com/pgpu", "0") == "0"
        ),
    )
    assert res


def test_kata_deploy_uninstall_removes_label_and_artifacts(lab_bare):
    lab = lab_bare
    name, ns = guide.KATA_DEPLOY_RELEASE
    lab.helm(
        "install",
        name,
        str(lab.charts["kata-deploy"]),
        "-n",
        ns,
        "--create-namespace",
        "--wait",
        *guide.set_args(guide.KATA_DEPLOY_SET),
    )
    lab.wait_for(
        "kata label",
        lambda: node_labels(lab, "gpu-node-1").get("katacontainers.io/kata-runtime") == "true",
    )
    root = lab.node("gpu-node-1").host_root
    assert inside(root, "opt/kata/bin/containerd-shim-kata-v2").exists()
    lab.helm("uninstall", name, "-n", ns, "--wait")
    lab.wait_for(
        "label removed",
        lambda: "katacontainers.io/kata-runtime" not in node_labels(lab, "gpu-node-1"),
    )
    assert not inside(root, "opt/kata").exists()
