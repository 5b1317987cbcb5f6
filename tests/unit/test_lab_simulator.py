"""The lab simulator's decisions, over small host trees built here (no cluster needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.lab.simulator import hostwrite, logic
from tests.lab.simulator.hoststate import read_host
from tests.lab.simulator.logic import PolicyConfig

GUIDE = {
    "sandboxWorkloads": {"enabled": True, "mode": "kata", "defaultWorkload": "vm-passthrough"},
    "kataSandboxDevicePlugin": {"enabled": True, "env": []},
    "vfioManager": {"enabled": True},
    "ccManager": {"enabled": True, "defaultMode": "on"},
}
GPU_NODE = {logic.NFD_NVIDIA: "true"}


def make_host(
    root: Path,
    *,
    gpus: int = 2,
    driver: str | None = "vfio-pci",
    iommu: bool = True,
    modules: tuple[str, ...] = ("vfio_pci", "vfio"),
    device: str = "0x2331",
    nic_in_group: bool = False,
    tdx: bool = False,
) -> Path:
    """A host tree in the fixture layout: GPUs at 0000:4N:00.0, one IOMMU group each."""
    pci = root / "sys/bus/pci"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cmdline").write_text(
        "BOOT_IMAGE=/vmlinuz ro" + (" intel_iommu=on iommu=pt" if iommu else "") + "\n"
    )
    (root / "proc/modules").write_text(
        "".join(f"{m} 16384 0 - Live 0x0000000000000000\n" for m in modules)
    )
    (root / "sys/kernel/iommu_groups").mkdir(parents=True)
    for i in range(gpus):
        bdf = f"0000:4{i}:00.0"
        dev = pci / "devices" / bdf
        dev.mkdir(parents=True)
        (dev / "vendor").write_text("0x10de\n")
        (dev / "device").write_text(device + "\n")
        (dev / "class").write_text("0x030200\n")
        if driver:
            (pci / "drivers" / driver).mkdir(parents=True, exist_ok=True)
            os.symlink(f"../../drivers/{driver}", dev / "driver")
            os.symlink(f"../../devices/{bdf}", pci / "drivers" / driver / bdf)
        if iommu:
            group = root / "sys/kernel/iommu_groups" / str(30 + i) / "devices"
            group.mkdir(parents=True)
            os.symlink(f"../../../kernel/iommu_groups/{30 + i}", dev / "iommu_group")
            os.symlink(f"../../../../bus/pci/devices/{bdf}", group / bdf)
            if nic_in_group and i == 0:
                nic = pci / "devices" / "0000:3f:00.0"
                nic.mkdir()
                (nic / "vendor").write_text("0x15b3\n")
                (nic / "device").write_text("0x1017\n")
                (nic / "class").write_text("0x020000\n")
                os.symlink("../../../kernel/iommu_groups/30", nic / "iommu_group")
                os.symlink("../../../../bus/pci/devices/0000:3f:00.0", group / "0000:3f:00.0")
    if tdx:
        p = root / "sys/module/kvm_intel/parameters"
        p.mkdir(parents=True)
        (p / "tdx").write_text("Y\n")
    return root


def test_read_host_sees_gpus_drivers_and_groups(tmp_path):
    host = read_host(make_host(tmp_path))
    assert [g.bdf for g in host.gpus] == ["0000:40:00.0", "0000:41:00.0"]
    assert {g.driver for g in host.gpus} == {"vfio-pci"}
    assert host.iommu_enabled and not host.host_driver_loaded
    assert all(host.group_viable(g) for g in host.gpus)


def test_missing_tree_is_an_empty_host(tmp_path):
    host = read_host(tmp_path / "nope")
    assert not host.exists and host.gpus == ()


def test_policy_from_guide_values():
    cfg = PolicyConfig.from_spec(GUIDE)
    assert cfg.kata and cfg.default_workload == "vm-passthrough"
    assert PolicyConfig.from_spec({}).mode == "kubevirt"
    assert not PolicyConfig.from_spec({}).sandbox_enabled


def test_guide_values_label_a_gpu_node_for_kata():
    labels = logic.operator_node_labels(GPU_NODE, PolicyConfig.from_spec(GUIDE))
    for comp in ("vfio-manager", "kata-sandbox-device-plugin", "sandbox-validator", "cc-manager"):
        assert labels[f"nvidia.com/gpu.deploy.{comp}"] == "true"
    assert labels[logic.GPU_PRESENT] == "true"
    assert logic.DEPLOY_DRIVER not in labels
    assert logic.operator_node_labels({}, PolicyConfig.from_spec(GUIDE)) == {}


def test_workload_label_typo_falls_back_to_the_policys_default_workload():
    """getWorkloadConfig (controllers/state_manager.go, v26.3.0 - v26.7.0) returns the
    ClusterPolicy's defaultWorkload for an invalid label: the guide's vm-passthrough keeps a
    typo'd node on the sandbox stack, the chart's default container moves it to containers."""
    cfg = PolicyConfig.from_spec(GUIDE)
    assert logic.node_workload({logic.WORKLOAD_CONFIG: "kata"}, cfg) == (
        "vm-passthrough",
        "invalid GPU workload config: kata",
    )
    container = PolicyConfig.from_spec({**GUIDE, "sandboxWorkloads": {
        **GUIDE["sandboxWorkloads"], "defaultWorkload": "container"}})
    labels = logic.operator_node_labels({**GPU_NODE, logic.WORKLOAD_CONFIG: "kata"}, container)
    assert labels["nvidia.com/gpu.deploy.device-plugin"] == "true"
    assert "nvidia.com/gpu.deploy.vfio-manager" not in labels


def test_existing_state_labels_are_honoured_and_only_v26_7_fills_empty_ones():
    """v26.3.x never overwrites an existing gpu.deploy.* value (the driver manager's pauses
    survive); v26.7.0 overwrites only an empty one (controllers/nodelabeling_controller.go)."""
    node = {**GPU_NODE, logic.WORKLOAD_CONFIG: "vm-passthrough",
            "nvidia.com/gpu.deploy.vfio-manager": "paused-for-driver-upgrade",
            "nvidia.com/gpu.deploy.sandbox-validator": ""}
    old = logic.operator_node_labels(node, PolicyConfig.from_spec(GUIDE, "x/gpu-operator:v26.3.1"))
    new = logic.operator_node_labels(node, PolicyConfig.from_spec(GUIDE, "x/gpu-operator:v26.7.0"))
    assert "nvidia.com/gpu.deploy.vfio-manager" not in old | new
    assert "nvidia.com/gpu.deploy.sandbox-validator" not in old
    assert new["nvidia.com/gpu.deploy.sandbox-validator"] == "true"
    assert new["nvidia.com/gpu.deploy.client"] == "true"
    assert "nvidia.com/gpu.deploy.client" not in old


def test_a_node_that_lost_its_gpus_loses_its_state_labels():
    node = {logic.GPU_PRESENT: "true", "nvidia.com/gpu.deploy.vfio-manager": "true"}
    assert logic.operator_node_labels(node, PolicyConfig.from_spec(GUIDE)) == {
        logic.GPU_PRESENT: "false", "nvidia.com/gpu.deploy.vfio-manager": None}


def test_sandbox_disabled_ignores_workload_label():
    cfg = PolicyConfig.from_spec({**GUIDE, "sandboxWorkloads": {"enabled": False}})
    labels = logic.operator_node_labels(
        {
            **GPU_NODE,
            logic.WORKLOAD_CONFIG: "vm-passthrough",
            "nvidia.com/gpu.deploy.vfio-manager": "true",
        },
        cfg,
    )
    assert labels["nvidia.com/gpu.deploy.driver"] == "true"
    assert labels["nvidia.com/gpu.deploy.vfio-manager"] is None


def test_host_driver_shows_pre_installed_and_validator_crashes(tmp_path):
    root = make_host(
        tmp_path, gpus=1, driver="nvidia", iommu=False, modules=("nvidia", "nvidia_uvm")
    )
    host = read_host(root)
    cfg = PolicyConfig.from_spec(GUIDE)
    # Not the operator's label: the vfio-manager's init container sets it, then fails there.
    assert logic.DEPLOY_DRIVER not in logic.operator_node_labels(GPU_NODE, cfg)
    vfio = logic.vfio_manager(host, "gpu-node-3")
    assert (vfio.healthy, vfio.init, vfio.message) == (False, "k8s-driver-manager",
                                                       "driver is pre-installed on host")
    assert (logic.DEPLOY_DRIVER, "pre-installed") in vfio.labels
    out = logic.sandbox_validator(host, cfg)
    assert not out.healthy and (out.reason, out.init) == ("CrashLoopBackOff",
                                                          "vfio-pci-validation")
    assert "device not bound to 'vfio-pci'; device: 0000:40:00.0 driver: 'nvidia'" in out.message
    plugin = logic.kata_device_plugin(host, cfg)  # waits in its init container meanwhile
    assert (plugin.init, plugin.init_waiting, plugin.resources) == ("vfio-pci-validation",
                                                                   True, ())


def test_prepared_host_advertises_pgpu_and_writes_cdi(tmp_path):
    host = read_host(make_host(tmp_path))
    out = logic.kata_device_plugin(host, PolicyConfig.from_spec(GUIDE))
    assert dict(out.resources) == {"nvidia.com/pgpu": 2}
    assert out.files[0][0] == "var/run/cdi/nvidia.com-pgpu.yaml"
    assert "/dev/vfio/30" in out.files[0][1]
    assert logic.sandbox_validator(host, PolicyConfig.from_spec(GUIDE)).healthy


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ([], "nvidia.com/pgpu"),
        ([{"name": "P_GPU_ALIAS", "value": ""}], "nvidia.com/GH100_H100_PCIE"),
        ([{"name": "P_GPU_ALIAS", "value": None}], "nvidia.com/GH100_H100_PCIE"),
        ([{"name": "P_GPU_ALIAS", "value": "passthrough-gpu"}], "nvidia.com/passthrough-gpu"),
    ],
)
def test_p_gpu_alias_names_the_resource(tmp_path, env, expected):
    host = read_host(make_host(tmp_path, gpus=1))
    cfg = PolicyConfig.from_spec(
        {**GUIDE, "kataSandboxDevicePlugin": {"enabled": True, "env": env}}
    )
    assert dict(logic.kata_device_plugin(host, cfg).resources) == {expected: 1}


def test_kubevirt_mode_deploys_kubevirt_plugin_and_no_pgpu(tmp_path):
    cfg = PolicyConfig.from_spec(
        {
            **GUIDE,
            "sandboxWorkloads": {
                "enabled": True,
                "mode": "kubevirt",
                "defaultWorkload": "vm-passthrough",
            },
        }
    )
    ops = logic.enabled_operands(cfg)
    assert "nvidia-sandbox-device-plugin-daemonset" in ops
    assert "nvidia-kata-sandbox-device-plugin-daemonset" not in ops
    host = read_host(make_host(tmp_path))
    out = logic.kubevirt_device_plugin(host)
    assert "nvidia.com/pgpu" not in dict(out.resources) and out.files == ()
    labels = logic.operator_node_labels(GPU_NODE, cfg)
    assert labels["nvidia.com/gpu.deploy.sandbox-device-plugin"] == "true"


def test_guide_operands():
    assert logic.enabled_operands(PolicyConfig.from_spec(GUIDE))[-4:] == [
        "nvidia-vfio-manager",
        "nvidia-kata-sandbox-device-plugin-daemonset",
        "nvidia-sandbox-validator",
        "nvidia-cc-manager",
    ]


def test_vfio_manager_binds_unbound_gpus_and_refuses_bad_groups(tmp_path):
    root = make_host(tmp_path / "a", driver=None, modules=())
    out = logic.vfio_manager(read_host(root))
    assert out.healthy and out.bind_vfio == ("0000:40:00.0", "0000:41:00.0")
    hostwrite.bind_vfio(root, out.bind_vfio)
    after = read_host(root)
    assert {g.driver for g in after.gpus} == {"vfio-pci"}
    assert "vfio_pci" in after.modules
    assert (root / "dev/vfio/30").exists()

    shared = read_host(make_host(tmp_path / "b", driver=None, nic_in_group=True))
    # A device that will not bind is a warning in a Running container's log (vfio-manage
    # bind --all exits 0), not a crash loop.
    bad = logic.vfio_manager(shared)
    assert bad.healthy and "0000:40:00.0" not in bad.bind_vfio  # the others bind
    assert any("Failed to bind device" in line and "group 30 is not viable" in line
               for line in bad.logs)

    no_iommu = logic.vfio_manager(read_host(make_host(tmp_path / "c", driver=None, iommu=False)))
    assert no_iommu.healthy and not no_iommu.bind_vfio
    assert any("Failed to bind device" in line and "IOMMU" in line for line in no_iommu.logs)


def test_cc_manager_modes(tmp_path):
    cfg = PolicyConfig.from_spec(GUIDE)
    plain = read_host(make_host(tmp_path / "a"))
    assert dict(logic.cc_manager(plain, cfg, {}).labels)[logic.CC_READY_STATE] == "false"
    tee = read_host(make_host(tmp_path / "b", tdx=True))
    assert dict(logic.cc_manager(tee, cfg, {}).labels)[logic.CC_READY_STATE] == "true"
    assert (
        dict(logic.cc_manager(tee, cfg, {logic.CC_MODE: "off"}).labels)[logic.CC_READY_STATE]
        == "false"
    )
    l40 = read_host(make_host(tmp_path / "c", tdx=True, device="0x26b5"))
    out = logic.cc_manager(l40, cfg, {})
    assert not out.healthy and out.message.startswith("Some GPUs are not cc-capable")


def _sample(runtime="kata-qemu-nvidia-gpu"):
    return {
        "spec": {
            "runtimeClassName": runtime,
            "containers": [
                {
                    "name": "cuda-vectoradd",
                    "image": "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04",
                    "resources": {"limits": {"nvidia.com/pgpu": "1", "memory": "16Gi"}},
                }
            ],
        }
    }


def test_sample_pod_passes_only_on_prepared_kata_node(tmp_path):
    root = make_host(tmp_path)
    host = read_host(root)
    assert logic.kata_pod_plan(
        _sample(), "kata-qemu-nvidia-gpu", host, "v1.35.4", False
    ).reason == ("ContainerCreating")
    hostwrite.install_kata(root, ("qemu-nvidia-gpu",))
    host = read_host(root)
    plan = logic.kata_pod_plan(_sample(), "kata-qemu-nvidia-gpu", host, "v1.35.4", True)
    assert plan.reason == "CreateContainerError" and "unresolvable CDI devices" in plan.message
    spec = logic.kata_device_plugin(host, PolicyConfig.from_spec(GUIDE)).files[0]
    hostwrite.write_file(root, *spec)
    plan = logic.kata_pod_plan(_sample(), "kata-qemu-nvidia-gpu", read_host(root), "v1.35.4", True)
    assert plan.phase == "Succeeded" and plan.logs[-1] == "Test PASSED"


def test_pod_resources_gate_before_1_34():
    assert not logic.pod_resources_get_enabled("v1.33.2", "featureGates:\n  Foo: true\n")
    assert logic.pod_resources_get_enabled(
        "v1.33.2", "featureGates:\n  KubeletPodResourcesGet: true\n"
    )
    assert logic.pod_resources_get_enabled("v1.34.0", "")


def test_write_file_follows_host_symlinks_inside_root(tmp_path):
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    os.symlink("/run", root / "var/run")
    hostwrite.write_file(root, "var/run/cdi/x.yaml", "a")
    assert (root / "run/cdi/x.yaml").read_text() == "a"
    assert read_host(root).cdi_specs == frozenset({"x.yaml"})


def test_crashloop_restarts_grow_with_backoff():
    assert logic.crashloop_restarts(0) == 0
    assert logic.crashloop_restarts(1) == 1
    assert logic.crashloop_restarts(12) == 2
    assert logic.crashloop_restarts(60) == 3
    assert logic.crashloop_restarts(80) == 4
    assert logic.crashloop_backoff(3) == 40


def test_cluster_policy_state():
    ready = {"status": {"desiredNumberScheduled": 2, "numberReady": 2, "updatedNumberScheduled": 2}}
    crash = {"status": {"desiredNumberScheduled": 2, "numberReady": 1, "updatedNumberScheduled": 2}}
    assert logic.cluster_policy_state([ready]) == "ready"
    assert logic.cluster_policy_state([ready, crash]) == "notReady"


def test_label_patch_only_changes():
    assert logic.label_patch({"a": "1"}, {"a": "1", "b": None}) == {}
    assert logic.label_patch({"a": "1"}, {"a": None, "c": "2"}) == {"a": None, "c": "2"}
