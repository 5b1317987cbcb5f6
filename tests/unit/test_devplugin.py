"""Which CDI spec host verification looks for, and what it must list (installer.charts.devplugin):
the names the Kata sandbox device plugin derives, over the probe of real host trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from installer.charts.devplugin import (
    check_specs,
    expected_classes,
    gpu_resources,
    is_per_model_gpu,
    model_class,
    spec_path,
)
from remote import gpu_models
from remote.probe import probe_local
from tests.fixtures.trees import OURS
from tests.lab.simulator import logic as simulator
from tests.lab.simulator.hoststate import read_host

H100 = "nvidia.com/GH100_H100_SXM5_80GB"


@pytest.mark.parametrize(("pci_name", "cls"), [
    ("GH100 [H100 SXM5 80GB]", "GH100_H100_SXM5_80GB"),
    ("GH100 [H100L 94GB]", "GH100_H100L_94GB"),
    ("GH100 [GH200 120GB / 480GB]", "GH100_GH200_120GB___480GB"),
    ("AD102GL [RTX 6000 Ada Generation]", "AD102GL_RTX_6000_ADA_GENERATION"),
    ("TU104GL [Tesla T4]", "TU104GL_TESLA_T4"),
    ("GA100 [A100 PCIe 80GB]", "GA100_A100_PCIE_80GB"),
    ("Some.Board\t(rev 2)", "SOME_BOARD_REV_2"),
])
def test_model_class_is_the_plugins_format_of_the_pci_name(pci_name, cls):
    assert model_class(pci_name) == cls
    assert is_per_model_gpu(f"nvidia.com/{cls}")


def test_the_model_table_names_what_the_lab_plugin_advertises():
    """The lab's plugin and the installer name each model the same way (both from pci.ids)."""
    shared = [d for d in simulator.GPU_MODELS if gpu_models.lookup(d)]
    assert len(shared) >= 10
    for device in shared:
        model = gpu_models.lookup(device)
        assert model is not None
        assert model_class(model.name) == simulator.GPU_MODELS[device], device


def test_gpu_resources_keep_models_and_drop_aliases_and_other_plugins():
    alloc = {H100: "2", "nvidia.com/pgpu": "0", "nvidia.com/nvswitch": "4",
             "nvidia.com/GH100_H100_NVSWITCH": "4", "nvidia.com/gpu": "8",
             "nvidia.com/mig-1g.10gb": "7", "nvidia.com/gpu.shared": "4",
             "nvidia.com/GA100_A100_PCIE_80GB": "0", "cpu": "64", "memory": "512Gi"}
    assert gpu_resources(alloc, None) == {H100: 2}
    assert gpu_resources(alloc, "nvidia.com/pgpu") == {}
    assert gpu_resources({**alloc, "nvidia.com/pgpu": "2"}, "nvidia.com/pgpu") == {
        "nvidia.com/pgpu": 2}


def host_with(tmp_path: Path, specs: dict[str, str], tree: str = "gpu-vfio-ready"):
    root = tmp_path / "root"
    shutil.copytree(OURS / tree, root, symlinks=True)
    cdi = root / "var/run/cdi"
    shutil.rmtree(cdi, ignore_errors=True)
    cdi.mkdir(parents=True)
    for name, text in specs.items():
        (cdi / name).write_text(text)
    return probe_local(root)


def spec(kind: str, groups: list[str], iommufd: bool = False) -> str:
    lines = ['cdiVersion: "0.5.0"', f"kind: {kind}", "devices:"]
    for g in groups:
        nodes = [f"/dev/vfio/devices/vfio{g}"] if iommufd else ["/dev/vfio/vfio", f"/dev/vfio/{g}"]
        lines += [f'- name: "{g}"', "  containerEdits:", "    deviceNodes:",
                  *(f"    - path: {n}" for n in nodes)]
    return "\n".join(lines) + "\n"


def test_per_model_spec_is_the_advertised_models_and_lists_the_groups(tmp_path):
    host = host_with(tmp_path, {"nvidia.com-pgpu.yaml": spec("nvidia.com/pgpu", ["20", "40"]),
                                "nvidia.com-GH100_H100_SXM5_80GB.yaml":
                                    spec(H100, ["20", "40"])})
    want = expected_classes(None, {H100: "2", "nvidia.com/pgpu": "0"}, host.gpus)
    assert want.classes == ("GH100_H100_SXM5_80GB",)
    assert spec_path(want.classes[0]) == "var/run/cdi/nvidia.com-GH100_H100_SXM5_80GB.yaml"
    v = check_specs(host, want, "gpu-1")
    assert v.ok and "20, 40" in v.message, v


def test_without_the_cluster_the_host_models_name_the_spec(tmp_path):
    host = host_with(tmp_path, {"nvidia.com-pgpu.yaml": spec("nvidia.com/pgpu", ["20", "40"])})
    want = expected_classes(None, None, host.gpus)
    assert want.classes == ("GH100_H100_SXM5_80GB",) and "GPU models" in want.source
    v = check_specs(host, want, "gpu-1")
    assert not v.ok
    assert "/var/run/cdi/nvidia.com-GH100_H100_SXM5_80GB.yaml" in v.message
    assert "nvidia.com-pgpu.yaml" in v.cause  # what is there instead


def test_pgpu_naming_checks_the_pgpu_spec(tmp_path):
    host = host_with(tmp_path, {"nvidia.com-GH100_H100_SXM5_80GB.yaml": spec(H100, ["20", "40"])})
    v = check_specs(host, expected_classes("nvidia.com/pgpu", {H100: "2"}, host.gpus), "gpu-1")
    assert not v.ok and "/var/run/cdi/nvidia.com-pgpu.yaml" in v.message


def test_a_spec_missing_a_gpus_group_or_of_another_kind_fails(tmp_path):
    want_of = lambda h: expected_classes(None, {H100: "2"}, h.gpus)  # noqa: E731
    host = host_with(tmp_path / "a", {"nvidia.com-GH100_H100_SXM5_80GB.yaml":
                                      spec(H100, ["0", "20"])})
    v = check_specs(host, want_of(host), "gpu-1")
    assert not v.ok and "0000:43:00.0 (group 40)" in v.message and "lists 0, 20" in v.message
    host = host_with(tmp_path / "b", {"nvidia.com-GH100_H100_SXM5_80GB.yaml":
                                      spec("nvidia.com/pgpu", ["20", "40"])})
    v = check_specs(host, want_of(host), "gpu-1")
    assert not v.ok and "kind 'nvidia.com/pgpu'" in v.message
    host = host_with(tmp_path / "c", {"nvidia.com-GH100_H100_SXM5_80GB.yaml": "kind: [\n"})
    assert "not valid YAML" in check_specs(host, want_of(host), "gpu-1").message


def test_iommufd_specs_are_counted(tmp_path):
    """Where /dev/iommu exists the devices are vfio device numbers: the count must match."""
    host = host_with(tmp_path / "a", {"nvidia.com-GH100_H100_SXM5_80GB.yaml":
                                      spec(H100, ["0", "1"], iommufd=True)})
    want = expected_classes(None, {H100: "2"}, host.gpus)
    assert check_specs(host, want, "gpu-1").ok
    host = host_with(tmp_path / "b", {"nvidia.com-GH100_H100_SXM5_80GB.yaml":
                                      spec(H100, ["0"], iommufd=True)})
    v = check_specs(host, want, "gpu-1")
    assert not v.ok and "1 device(s) for 2 GPU(s)" in v.message


def test_two_models_need_two_specs(tmp_path):
    a100 = "nvidia.com/GA100_A100_PCIE_80GB"
    host = host_with(tmp_path, {"nvidia.com-GH100_H100_SXM5_80GB.yaml": spec(H100, ["20"])})
    want = expected_classes(None, {H100: "1", a100: "1"}, host.gpus)
    assert want.classes == ("GA100_A100_PCIE_80GB", "GH100_H100_SXM5_80GB")
    v = check_specs(host, want, "gpu-1")
    assert not v.ok and "nvidia.com-GA100_A100_PCIE_80GB.yaml" in v.message


def test_the_lab_plugin_writes_what_verification_accepts(tmp_path):
    """The simulator's per-model spec (P_GPU_ALIAS="") passes the same check a host's does."""
    cfg = simulator.PolicyConfig.from_spec({"sandboxWorkloads": {"enabled": True, "mode": "kata"},
                                            "kataSandboxDevicePlugin": {"env": [
                                                {"name": "P_GPU_ALIAS", "value": ""}]}})
    (cls, members), = simulator.gpu_classes(cfg, read_host(OURS / "gpu-vfio-ready").gpus).items()
    host = host_with(tmp_path, {f"nvidia.com-{cls}.yaml": simulator.cdi_spec(cls, members)})
    v = check_specs(host, expected_classes(None, {f"nvidia.com/{cls}": "2"}, host.gpus), "gpu-1")
    assert v.ok and cls == "GH100_H100_SXM5_80GB", v
