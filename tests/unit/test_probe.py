"""The probe script and its parser, over every fixture tree and over hostile output."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from remote.hostfacts import HostFacts
from remote.probe import PROBE_SCRIPT, parse_probe, probe_command, probe_local
from tests.fixtures.trees import OURS, all_trees

ALL = all_trees()


@pytest.mark.parametrize("tree", ALL, ids=lambda p: p.name)
def test_every_tree_parses_completely(tree: Path):
    f = probe_local(tree)
    assert isinstance(f, HostFacts) and f.complete
    assert f.os_id and f.kernel and f.cmdline
    assert f.hostname or tree.name == "plain-vm"  # the captured VM has no etc/hostname
    assert f.devices, "every tree has PCI devices"
    for d in f.devices:
        assert len(d.vendor) == 4 and len(d.device) == 4 and len(d.class_code) == 6, d
    # a device's group link and the group folder agree
    for g, members in f.iommu_groups.items():
        for bdf in members:
            assert f.device(bdf).iommu_group == g


def test_specific_facts():
    f = probe_local(OURS / "gpu-vfio-ready")
    assert f.os_family == "debian" and f.os_id == "ubuntu" and f.os_version == "22.04"
    assert [g.bdf for g in f.gpus] == ["0000:1b:00.0", "0000:43:00.0"]
    assert {g.model.short for g in f.gpus} == {"H100 SXM5 80GB"}
    assert f.iommu_groups["20"] == ["0000:1b:00.0"] and f.vfio_dev_nodes == ["20", "40", "vfio"]
    assert f.cpu_flags == ["ept", "tme", "vmx"] and f.tdx is False and f.sev_snp is None
    assert f.cdi_specs == ["var/run/cdi/nvidia.com-pgpu.yaml"]
    # the device plugin's specs are read whole: verification checks the groups they list
    assert "kind: nvidia.com/pgpu" in f.files["var/run/cdi/nvidia.com-pgpu.yaml"]
    amd = probe_local(OURS / "amd-iommu")
    assert amd.os_family == "rhel" and amd.cpu_vendor == "AuthenticAMD" and "svm" in amd.cpu_flags
    hgx = probe_local(OURS / "hgx-nvswitch")
    assert len(hgx.gpus) == 8 and len(hgx.nvswitches) == 4
    vm = probe_local(OURS / "plain-vm")  # links stored as files holding their target
    assert vm.modules is None and vm.device("0000:00:01.0").driver == "virtio-pci"
    assert not vm.iommu_groups_dir and vm.kvm_present and vm.cpu_flags == ["hypervisor"]


def test_parser_survives_non_utf8_missing_files_and_truncation(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(OURS / "gpu-host-driver", root, symlinks=True)
    (root / "proc/cmdline").write_bytes(b"ro quiet label=\xff\xfe intel_iommu=on\n")
    (root / "etc/os-release").unlink()
    (root / "proc/cpuinfo").write_text("processor\t: 0\nflags\t\t: svm\n")  # no final block
    (root / "etc/hostname").write_bytes(b"no-newline-host")
    f = probe_local(root)
    assert f.complete and f.cmdline == "ro quiet label=\\xff\\xfe intel_iommu=on"
    assert "etc/os-release" in f.missing and f.os_family == "unknown"
    assert f.hostname == "no-newline-host" and f.files["etc/hostname"] == "no-newline-host"
    assert f.cpu_flags == ["svm"]
    out = PROBE_SCRIPT and __import__("subprocess").run(
        ["/bin/sh", "-c", PROBE_SCRIPT, "p", str(root)], capture_output=True).stdout
    cut = parse_probe(out[: len(out) // 2])
    assert not cut.complete  # truncated output is flagged, not trusted
    assert parse_probe(b"").complete is False and parse_probe("garbage\n\x00\n").devices == []


def test_probe_reads_without_forks_or_writes(tmp_path):
    root = tmp_path / "r"
    shutil.copytree(OURS / "gpu-vfio-ready", root, symlinks=True)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if not p.is_symlink()}
    probe_local(root)
    assert before == {p: p.stat().st_mtime_ns for p in root.rglob("*") if not p.is_symlink()}
    assert "$(" not in PROBE_SCRIPT.split("readlink")[0]  # builtins only in the common path


def test_probe_command_quotes_the_root():
    cmd = probe_command("/srv/x y;$(id)")
    assert cmd.startswith("sh -c '") and cmd.endswith("gki-probe '/srv/x y;$(id)'")


def test_grace_host_facts_and_where_its_vfio_variant_is_found(tmp_path):
    f = probe_local(OURS / "grace-gh200")
    (gpu,) = f.gpus
    assert f.arch == "aarch64" and gpu.is_grace and gpu.on_vfio
    assert gpu.driver == "nvgrace_gpu_vfio_pci" and f.vfio_driver_for(gpu) == gpu.driver
    assert f.nvgrace_available and "proc/modules: nvgrace_gpu_vfio_pci loaded" in \
        f.nvgrace_evidence
    assert f.cpu_vendor == "" and f.cpu_flags == []  # arm64 cpuinfo has neither
    root = tmp_path / "g"
    shutil.copytree(OURS / "grace-gh200", root, symlinks=True)
    (root / "proc/sys/kernel/arch").unlink()  # older kernels: the cpuinfo shape tells
    assert probe_local(root).arch == "aarch64"
    # not loaded: found as a module file of the running kernel, or built in
    shutil.rmtree(root / "sys/module/nvgrace_gpu_vfio_pci")
    shutil.rmtree(root / "sys/bus/pci/drivers/nvgrace_gpu_vfio_pci")
    (root / "sys/bus/pci/devices/0009:01:00.0/driver").unlink()
    mods = root / "proc/modules"
    mods.write_text("".join(ln for ln in mods.read_text().splitlines(True)
                            if not ln.startswith("nvgrace")))
    bare = probe_local(root)
    assert not bare.nvgrace_available and bare.vfio_driver_for(bare.gpus[0]) == "vfio-pci"
    kdir = root / "lib/modules/6.8.0-1013-nvidia-64k"
    ko = kdir / "kernel/drivers/vfio/pci/nvgrace-gpu/nvgrace-gpu-vfio-pci.ko.zst"
    ko.parent.mkdir(parents=True)
    ko.write_text("")
    f2 = probe_local(root)
    assert f2.nvgrace_available and f2.nvgrace_evidence == [
        "lib/modules/6.8.0-1013-nvidia-64k/kernel/drivers/vfio/pci/nvgrace-gpu/"
        "nvgrace-gpu-vfio-pci.ko.zst exists"]
    assert f2.vfio_driver_for(f2.gpus[0]) == "nvgrace_gpu_vfio_pci"
    ko.unlink()
    (kdir / "modules.builtin").write_text("kernel/drivers/vfio/pci/nvgrace-gpu/"
                                          "nvgrace-gpu-vfio-pci.ko\n")
    f3 = probe_local(root)
    assert f3.nvgrace_available and not f3.vfio_builtin  # vfio-pci's own state is apart
    # an x86 host is never searched for it (the probe looks only where a Grace GPU is)
    assert not probe_local(OURS / "gpu-vfio-ready").nvgrace_available


def test_the_probes_grace_ids_are_the_model_tables():
    from remote.gpu_models import GRACE_IDS
    block = PROBE_SCRIPT.split("case $a:$ven:$v in", 1)[1].split("esac", 1)[0]
    assert set(re.findall(r"device:0x10de:0x([0-9a-f]{4})", block)) == GRACE_IDS


def test_fabric_manager_is_read_on_nvswitch_hosts_only(tmp_path):
    hgx = probe_local(OURS / "hgx-nvswitch")
    fm = hgx.fabric_manager
    assert fm is not None and fm.units == ["lib/systemd/system/nvidia-fabricmanager.service"]
    assert fm.enabled == ["etc/systemd/system/multi-user.target.wants/"
                          "nvidia-fabricmanager.service"]
    assert not fm.masked and fm.binary is None and fm.pids == []
    assert probe_local(OURS / "gpu-vfio-ready").fabric_manager is None
    root = tmp_path / "h"
    shutil.copytree(OURS / "hgx-nvswitch", root, symlinks=True)
    for pid, comm in (("4242", "nv-fabricmanage"), ("77", "sshd"), ("1", "systemd")):
        (root / "proc" / pid).mkdir(parents=True)
        (root / "proc" / pid / "comm").write_text(comm + "\n")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/nv-fabricmanager").write_text("#!/bin/sh\n")
    (root / "usr/bin/nv-fabricmanager").chmod(0o755)
    (root / "etc/systemd/system/nvidia-fabricmanager.service").symlink_to("/dev/null")
    fm = probe_local(root).fabric_manager
    assert fm.pids == ["4242"] and fm.binary == "usr/bin/nv-fabricmanager" and fm.masked
