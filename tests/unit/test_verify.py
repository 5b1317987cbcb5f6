"""What "done" means, and the cause named when it is not (domain.md sections 3 and 6)."""

from __future__ import annotations

from dataclasses import replace

from installer.charts.verify import (
    OPERAND_DAEMONSETS,
    Snapshot,
    gpu_operator_verdict,
    kata_deploy_verdict,
)
from installer.cluster.podread import PodReading

NODES = ["gpu-1"]
GOOD_POLICY = {"spec": {"sandboxWorkloads": {"enabled": True, "mode": "kata"}},
               "status": {"state": "ready"}}


def operand_pods(node: str = "gpu-1", **override) -> tuple[PodReading, ...]:
    pods = []
    for ds, selector in OPERAND_DAEMONSETS.items():
        key, _, value = selector.partition("=")
        pods.append(PodReading("gpu-operator", f"{ds}-x", "Running", node=node,
                               labels={key: value}))
    return tuple(replace(p, **override) if p.name.startswith("nvidia-sandbox-validator")
                 else p for p in pods)


def ready_snapshot() -> Snapshot:
    return Snapshot(
        node_labels={"gpu-1": {"nvidia.com/gpu.workload.config": "vm-passthrough",
                               "nvidia.com/cc.ready.state": "false"}},
        node_allocatable={"gpu-1": {"nvidia.com/pgpu": "2"}},
        cluster_policy=GOOD_POLICY, pods=operand_pods())


def test_a_ready_operator_is_done():
    assert gpu_operator_verdict(ready_snapshot(), NODES, "nvidia.com/pgpu").done


def test_kubevirt_mode_fails_at_once_naming_the_mode():
    policy = {"spec": {"sandboxWorkloads": {"enabled": True, "mode": "kubevirt"}}}
    v = gpu_operator_verdict(replace(ready_snapshot(), cluster_policy=policy), NODES,
                             "nvidia.com/pgpu")
    assert not v.done and v.definitive
    assert "mode='kubevirt'" in v.cause and "mode=kata" in v.fix


def test_sandbox_disabled_fails_at_once():
    policy = {"spec": {"sandboxWorkloads": {"enabled": False, "mode": "kata"}}}
    v = gpu_operator_verdict(replace(ready_snapshot(), cluster_policy=policy), NODES, None)
    assert v.definitive and "ignores the vm-passthrough label" in v.cause


def test_a_typo_in_the_workload_label_is_named():
    snap = ready_snapshot()
    snap = replace(snap, node_labels={"gpu-1": {"nvidia.com/gpu.workload.config": "kata"}})
    v = gpu_operator_verdict(snap, NODES, "nvidia.com/pgpu")
    assert v.definitive and "=kata, which the operator rejects" in v.cause


def test_a_host_driver_is_named_from_the_pre_installed_label():
    snap = ready_snapshot()
    labels = {**snap.node_labels["gpu-1"], "nvidia.com/gpu.deploy.driver": "pre-installed"}
    v = gpu_operator_verdict(replace(snap, node_labels={"gpu-1": labels}), NODES, "nvidia.com/pgpu")
    assert v.definitive and "host NVIDIA driver" in v.cause


def test_no_pgpu_names_vfio_and_a_crashing_validator_names_its_log():
    snap = replace(ready_snapshot(), node_allocatable={"gpu-1": {}},
                   pods=operand_pods(phase="Running", waiting_reason="CrashLoopBackOff",
                                     log_tail=("device not bound to 'vfio-pci'",)))
    v = gpu_operator_verdict(snap, NODES, "nvidia.com/pgpu")
    assert not v.done and not v.definitive
    assert "CrashLoopBackOff: device not bound to 'vfio-pci'" in v.cause
    assert "node gpu-1: allocatable nvidia.com/pgpu > 0" in v.missing


def test_cc_mode_on_blocks_scheduling_and_suggests_cc_off():
    snap = ready_snapshot()
    labels = {**snap.node_labels["gpu-1"], "nvidia.com/cc.ready.state": "true"}
    v = gpu_operator_verdict(replace(snap, node_labels={"gpu-1": labels}), NODES,
                             "nvidia.com/pgpu")
    assert not v.done and "cc.ready.state=true" in v.cause and "ccMode: off" in v.fix


def test_per_model_resource_names_count_as_gpus():
    snap = replace(ready_snapshot(),
                   node_allocatable={"gpu-1": {"nvidia.com/GH100_H100L_94GB": "2"}})
    assert gpu_operator_verdict(snap, NODES, None).done


def test_kata_deploy_done_needs_the_node_label_and_the_runtime_class():
    snap = Snapshot(node_labels={"gpu-1": {"katacontainers.io/kata-runtime": "true"}},
                    runtime_classes=("kata-qemu-nvidia-gpu",))
    assert kata_deploy_verdict(snap, NODES).done
    missing_rc = kata_deploy_verdict(replace(snap, runtime_classes=()), NODES)
    assert missing_rc.definitive and "shims.qemu-nvidia-gpu" in missing_rc.fix


def test_kata_deploy_4_1_is_done_only_with_the_marker_its_runtime_class_selects():
    """kata-deploy 4.1.0 claims a node with kata-runtime=false and its instance marker, and its
    RuntimeClass selects the marker too (templates/runtimeclasses.yaml@4.1.0): a node with
    kata-runtime=true alone cannot run the class's pods."""
    selector = {"katacontainers.io/kata-runtime": "true", "nvidia.com/cc.ready.state": "false",
                "kata-deploy.katacontainers.io/default": "true"}
    snap = Snapshot(node_labels={"gpu-1": {"katacontainers.io/kata-runtime": "true"}},
                    runtime_classes=("kata-qemu-nvidia-gpu",),
                    runtime_class_selectors={"kata-qemu-nvidia-gpu": selector})
    v = kata_deploy_verdict(snap, NODES)
    assert not v.done
    assert v.missing == ("node gpu-1: labels katacontainers.io/kata-runtime=true, "
                         "kata-deploy.katacontainers.io/default=true",)
    claimed = replace(snap, node_labels={"gpu-1": {
        "katacontainers.io/kata-runtime": "false",
        "kata-deploy.katacontainers.io/default": "false"}})
    assert not kata_deploy_verdict(claimed, NODES).done
    done = replace(snap, node_labels={"gpu-1": {
        "katacontainers.io/kata-runtime": "true", "kata-deploy.katacontainers.io/default": "true"}})
    assert kata_deploy_verdict(done, NODES).done


def test_kata_deploy_crash_is_named():
    snap = Snapshot(node_labels={"gpu-1": {}}, pods=(PodReading(
        "kata-system", "kata-deploy-abc", "Running", node="gpu-1", labels={"name": "kata-deploy"},
        waiting_reason="CrashLoopBackOff", restarts=4, log_tail=("containerd not found",)),))
    v = kata_deploy_verdict(snap, NODES)
    assert "kata-deploy-abc on gpu-1 is CrashLoopBackOff: containerd not found" in v.cause


def test_an_operand_crash_looping_in_an_init_container_is_named_with_it_and_its_log():
    """The sandbox validator fails in vfio-pci-validation (assets/state-sandbox-validation,
    v26.3.x - v26.7.0): its main container never starts, the init container's log says why."""
    snap = replace(ready_snapshot(), pods=operand_pods(
        phase="Pending", waiting_reason="CrashLoopBackOff", restarts=3,
        init_container="vfio-pci-validation",
        log_tail=("Error: error validating vfio-pci driver installation: device not bound to "
                  "'vfio-pci'; device: 0000:3b:00.0 driver: 'nvidia'",)))
    v = gpu_operator_verdict(snap, NODES, "nvidia.com/pgpu")
    assert not v.done
    assert "is CrashLoopBackOff in init container vfio-pci-validation: Error: error " \
        "validating vfio-pci driver installation: device not bound to 'vfio-pci'" in v.cause


def test_the_crash_is_named_before_the_operand_that_waits_for_it():
    """The Kata device plugin waits in vfio-pci-validation for the validator, which
    crash-loops there: the validator's failure is the cause, whatever the listing order."""
    waiting = PodReading("gpu-operator", "nvidia-kata-sandbox-device-plugin-daemonset-x",
                         "Pending", node="gpu-1",
                         labels={"app": "nvidia-kata-sandbox-device-plugin-daemonset"},
                         waiting_reason="PodInitializing", init_container="vfio-pci-validation",
                         log_tail=("waiting for vfio-pci driver ...",))
    pods = tuple(waiting if p.name.startswith("nvidia-kata-sandbox") else p
                 for p in operand_pods(phase="Pending", waiting_reason="CrashLoopBackOff",
                                       init_container="vfio-pci-validation",
                                       log_tail=("device not bound to 'vfio-pci'",)))
    v = gpu_operator_verdict(replace(ready_snapshot(), pods=pods), NODES, "nvidia.com/pgpu")
    assert v.cause.startswith("nvidia-sandbox-validator-x on gpu-1 is CrashLoopBackOff")


def test_an_operand_waiting_in_an_init_container_says_what_it_waits_for():
    snap = replace(ready_snapshot(), pods=operand_pods(
        phase="Pending", waiting_reason="PodInitializing", init_container="vfio-pci-validation",
        log_tail=("waiting for vfio-pci driver ...",)))
    v = gpu_operator_verdict(snap, NODES, "nvidia.com/pgpu")
    assert "held in init container vfio-pci-validation: waiting for vfio-pci driver" in v.cause


def test_per_model_needs_a_model_not_an_alias_or_a_switch():
    """pgpu left at 0 from an earlier install, NVSwitches on their own alias: no GPU model."""
    alloc = {"nvidia.com/pgpu": "0", "nvidia.com/nvswitch": "4", "nvidia.com/gpu": "0"}
    v = gpu_operator_verdict(replace(ready_snapshot(), node_allocatable={"gpu-1": alloc}),
                             NODES, None)
    assert not v.done
    assert "node gpu-1: allocatable per-model GPU resource (nvidia.com/<MODEL>) > 0" in v.missing
