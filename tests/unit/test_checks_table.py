"""Every host tree of the repository against the expectation table below:
each verdict with the reason a reviewer can check against the tree's files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from installer.hosts.checks import CHECK_NAMES, NodeInfo, run_checks
from remote.probe import probe_local
from tests.fixtures.trees import OURS, all_trees

# tree -> check -> (status, why). Node info is absent (local mode) unless a test says so.
EXPECT: dict[str, dict[str, tuple[str, str]]] = {
    "gpu-vfio-ready": {
        "cpu-virtualization": ("pass", "vmx flag and dev/kvm"),
        "iommu-enabled": ("pass", "5 groups, intel_iommu=on"),
        "iommu-group-isolation": ("pass", "groups 20 and 40 hold one GPU each"),
        "gpus-present": ("pass", "2x 10de:2330 H100 SXM5"),
        "host-nvidia-driver": ("pass", "GPUs on vfio-pci, no nvidia in proc/modules"),
        "nouveau": ("pass", "blacklist-nouveau.conf, not loaded"),
        "vfio-available": ("pass", "vfio_pci in proc/modules"),
        "nvswitch": ("pass", "no class 0x0680 device"),
        "cc-host": ("pass", "kvm_intel tdx=N"),
        "consumer-gpu": ("pass", "H100 is a data-center part"),
        "kubelet-podresources-gate": ("pass", "featureGates: KubeletPodResourcesGet: true"),
        "kubelet-runtime-timeout": ("pass", "runtimeRequestTimeout: 20m0s"),
        "container-runtime": ("pass", "etc/containerd/config.toml present"),
    },
    "gpu-host-driver": {
        "cpu-virtualization": ("pass", "vmx and dev/kvm"),
        "iommu-enabled": ("fail", "iommu_groups empty, no intel_iommu=on"),
        "iommu-group-isolation": ("skip", "nothing to check with the IOMMU off"),
        "gpus-present": ("pass", "2x H100 on nvidia"),
        "host-nvidia-driver": ("fail", "driver -> nvidia, nvidia modules loaded"),
        "nouveau": ("warn", "not loaded but not blacklisted"),
        "vfio-available": ("pass", "sys/module/vfio_pci without a proc/modules line: built in"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "H100"),
        "kubelet-podresources-gate": ("warn", "gate unset, kubelet version unknown locally"),
        "kubelet-runtime-timeout": ("warn", "runtimeRequestTimeout: 0s = default 2m"),
        "container-runtime": ("pass", "containerd config present"),
    },
    "gpu-shared-group": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("pass", "groups 0 and 30"),
        "iommu-group-isolation": ("fail", "group 30 = bridge + A100 + X710 NIC"),
        "gpus-present": ("pass", "A100 PCIe 80GB, no driver"),
        "host-nvidia-driver": ("pass", "GPU unbound, no nvidia module"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "vfio_pci loaded"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "A100"),
        "kubelet-podresources-gate": ("pass", "gate true"),
        "kubelet-runtime-timeout": ("pass", "20m0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "amd-iommu": {
        "cpu-virtualization": ("pass", "svm and dev/kvm"),
        "iommu-enabled": ("pass", "amd_iommu=on, 4 groups"),
        "iommu-group-isolation": ("pass", "L40S groups 31 and 72 alone"),
        "gpus-present": ("pass", "2x L40S on vfio-pci"),
        "host-nvidia-driver": ("pass", "vfio-pci"),
        "nouveau": ("warn", "RHEL tree has no nouveau blacklist"),
        "vfio-available": ("pass", "vfio_pci loaded"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "kvm_amd sev_snp=N"),
        "consumer-gpu": ("pass", "L40S"),
        "kubelet-podresources-gate": ("warn", "no featureGates, version unknown"),
        "kubelet-runtime-timeout": ("pass", "20m0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "hgx-nvswitch": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("pass", "15 groups"),
        "iommu-group-isolation": ("pass", "8 GPUs + 4 NVSwitches, one device per group"),
        "gpus-present": ("pass", "8x H100 SXM5 on vfio-pci"),
        "host-nvidia-driver": ("pass", "vfio-pci"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "loaded"),
        "nvswitch": ("warn", "4x 10de:22a3 with no driver, not on vfio-pci; the host's "
                     "nvidia-fabricmanager unit is enabled (multi-user.target.wants link)"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "H100"),
        "kubelet-podresources-gate": ("pass", "gate true"),
        "kubelet-runtime-timeout": ("pass", "20m0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "kubelet-no-gate": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("pass", "4 groups"),
        "iommu-group-isolation": ("pass", "GPU alone in group 20"),
        "gpus-present": ("pass", "H100"),
        "host-nvidia-driver": ("pass", "vfio-pci"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "loaded"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "H100"),
        "kubelet-podresources-gate": ("warn", "featureGates map without the gate; version "
                                      "unknown"),
        "kubelet-runtime-timeout": ("pass", "20m0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "consumer-gpu": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("fail", "quiet splash, no groups"),
        "iommu-group-isolation": ("skip", "IOMMU off"),
        "gpus-present": ("pass", "RTX 4090 on nouveau"),
        "host-nvidia-driver": ("pass", "nouveau is not the NVIDIA driver"),
        "nouveau": ("fail", "driver -> nouveau and loaded"),
        "vfio-available": ("pass", "built in (Ubuntu)"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("warn", "10de:2684 is a GeForce RTX 4090"),
        "kubelet-podresources-gate": ("skip", "not a Kubernetes node: no kubelet config"),
        "kubelet-runtime-timeout": ("skip", "no kubelet config"),
        "container-runtime": ("skip", "no containerd, no node info"),
    },
    "cc-host": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("pass", "4 groups"),
        "iommu-group-isolation": ("pass", "GPU alone"),
        "gpus-present": ("pass", "H100"),
        "host-nvidia-driver": ("pass", "vfio-pci"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "loaded"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("warn", "kvm_intel tdx=Y with a CC-capable H100"),
        "consumer-gpu": ("pass", "H100"),
        "kubelet-podresources-gate": ("pass", "gate true"),
        "kubelet-runtime-timeout": ("pass", "20m0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "cpu-only": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("fail", "no groups (a GPU-less host does not need it, but reports it)"),
        "iommu-group-isolation": ("skip", "no GPU"),
        "gpus-present": ("fail", "3 devices, none NVIDIA"),
        "host-nvidia-driver": ("skip", "no GPU"),
        "nouveau": ("skip", "no GPU"),
        "vfio-available": ("fail", "no vfio_pci anywhere"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("skip", "no GPU"),
        "kubelet-podresources-gate": ("warn", "gate unset, version unknown"),
        "kubelet-runtime-timeout": ("warn", "0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "cloud-gpu-guest": {
        "cpu-virtualization": ("warn", "dev/kvm present but no vmx/svm (hypervisor flag)"),
        "iommu-enabled": ("fail", "no groups in a VM without vIOMMU"),
        "iommu-group-isolation": ("skip", "IOMMU off"),
        "gpus-present": ("pass", "A10G on nvidia"),
        "host-nvidia-driver": ("fail", "nvidia + nvidia_uvm loaded, GPU on nvidia"),
        "nouveau": ("warn", "not blacklisted"),
        "vfio-available": ("fail", "no vfio in proc/modules or sys/module"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "no kvm_intel/kvm_amd parameters"),
        "consumer-gpu": ("pass", "A10G"),
        "kubelet-podresources-gate": ("warn", "unset, version unknown"),
        "kubelet-runtime-timeout": ("warn", "0s"),
        "container-runtime": ("skip", "no containerd found, no node info"),
    },
    "rhel-iommu-off": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("fail", "no groups, no intel_iommu=on"),
        "iommu-group-isolation": ("skip", "IOMMU off"),
        "gpus-present": ("pass", "H100 PCIe on nvidia"),
        "host-nvidia-driver": ("fail", "driver -> nvidia"),
        "nouveau": ("warn", "not blacklisted"),
        "vfio-available": ("pass", "lib/modules/<kernel>/.../vfio-pci.ko.xz"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "H100"),
        "kubelet-podresources-gate": ("warn", "unset, version unknown"),
        "kubelet-runtime-timeout": ("warn", "0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "grace-gh200": {
        "cpu-virtualization": ("pass", "arm64 (kernel.arch aarch64, no vmx/svm flag) with dev/kvm"),
        "iommu-enabled": ("pass", "2 groups"),
        "iommu-group-isolation": ("pass", "GH200 alone in group 9"),
        "gpus-present": ("pass", "10de:2342 GH200 on nvgrace_gpu_vfio_pci"),
        "host-nvidia-driver": ("pass", "nvgrace_gpu_vfio_pci is a vfio driver, no nvidia module"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "vfio_pci and nvgrace_gpu_vfio_pci in proc/modules"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "no kvm_intel/kvm_amd parameters on arm64"),
        "consumer-gpu": ("pass", "GH200"),
        "kubelet-podresources-gate": ("pass", "gate true"),
        "kubelet-runtime-timeout": ("pass", "20m0s"),
        "container-runtime": ("pass", "containerd"),
    },
    "k0s-worker": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("pass", "4 groups"),
        "iommu-group-isolation": ("pass", "GPU alone in group 20"),
        "gpus-present": ("pass", "H100"),
        "host-nvidia-driver": ("pass", "vfio-pci"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "loaded"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "H100"),
        "kubelet-podresources-gate": ("warn", "k0s's run/k0s/kubelet/config.yaml has no gate "
                                      "(the leftover var/lib/kubelet/config.yaml is not read); "
                                      "version unknown"),
        "kubelet-runtime-timeout": ("warn", "no runtimeRequestTimeout in k0s's config: 2m"),
        "container-runtime": ("pass", "containerRuntimeEndpoint unix:///run/k0s/containerd.sock"),
    },
    "microk8s-node": {
        "cpu-virtualization": ("pass", "vmx"),
        "iommu-enabled": ("pass", "4 groups"),
        "iommu-group-isolation": ("pass", "L40S alone in group 31"),
        "gpus-present": ("pass", "L40S"),
        "host-nvidia-driver": ("pass", "vfio-pci"),
        "nouveau": ("pass", "blacklisted"),
        "vfio-available": ("pass", "loaded"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "tdx=N"),
        "consumer-gpu": ("pass", "L40S"),
        "kubelet-podresources-gate": ("warn", "args/kubelet has no --feature-gates; version "
                                      "unknown"),
        "kubelet-runtime-timeout": ("warn", "no --runtime-request-timeout: 2m"),
        "container-runtime": ("pass", "--container-runtime-endpoint .../containerd.sock"),
    },
    # captured from a real 2-vCPU AMD EPYC VM (flattened link files)
    "plain-vm": {
        "cpu-virtualization": ("warn", "dev/kvm present, no svm flag: nested/paravirtual KVM"),
        "iommu-enabled": ("fail", "no sys/kernel/iommu_groups at all"),
        "iommu-group-isolation": ("skip", "no GPU"),
        "gpus-present": ("fail", "virtio devices only"),
        "host-nvidia-driver": ("skip", "no GPU"),
        "nouveau": ("skip", "no GPU"),
        "vfio-available": ("fail", "kernel without modules and no sys/module/vfio_pci"),
        "nvswitch": ("pass", "none"),
        "cc-host": ("pass", "no kvm parameters"),
        "consumer-gpu": ("skip", "no GPU"),
        "kubelet-podresources-gate": ("skip", "no kubelet config, no node info"),
        "kubelet-runtime-timeout": ("skip", "no kubelet config"),
        "container-runtime": ("skip", "nothing found"),
    },
}


def test_every_tree_has_an_expectation_row():
    assert {t.name for t in all_trees()} == set(EXPECT)
    for name, row in EXPECT.items():
        assert set(row) == set(CHECK_NAMES), name
        assert all(why for _, why in row.values()), name


@pytest.mark.parametrize("tree", all_trees(), ids=lambda p: p.name)
def test_verdicts_match_the_table(tree: Path):
    results = run_checks(probe_local(tree))
    got = {r.name: r.status for r in results}
    want = {k: v[0] for k, v in EXPECT[tree.name].items()}
    wrong = {k: (got[k], want[k], EXPECT[tree.name][k][1]) for k in want if got[k] != want[k]}
    assert not wrong, wrong
    for r in results:
        assert r.evidence or r.status in ("pass", "skip"), r
        if r.status in ("fail", "warn"):
            assert r.remedy or r.name in ("cc-host",), r
            assert r.evidence, r


def test_evidence_quotes_what_was_read():
    by = {r.name: r for r in run_checks(probe_local(OURS / "gpu-host-driver"))}
    ev = "\n".join(by["host-nvidia-driver"].evidence)
    assert "sys/bus/pci/devices/0000:1b:00.0/driver -> nvidia" in ev
    assert "proc/modules: nvidia 56836096 2 nvidia_uvm,nvidia_modeset, Live" in ev
    assert "proc/cmdline: BOOT_IMAGE=/vmlinuz-5.15.0-113-generic" in \
        "\n".join(by["iommu-enabled"].evidence)
    cloud = {r.name: r for r in run_checks(probe_local(OURS / "cloud-gpu-guest"))}
    cpu = "\n".join(cloud["cpu-virtualization"].evidence)
    assert "no vmx, no svm (hypervisor flag set" in cpu and "dev/kvm: present" in cpu


@pytest.mark.parametrize(("version", "status"), [("v1.30.4", "fail"), ("v1.33.9+k3s1", "fail"),
                                                 ("v1.34.0", "pass"), ("v1.35.1", "pass")])
def test_kubelet_gate_depends_on_the_node_version(version, status):
    facts = probe_local(OURS / "kubelet-no-gate")
    r = {x.name: x for x in run_checks(facts, NodeInfo(kubelet_version=version))}
    assert r["kubelet-podresources-gate"].status == status
    ready = {x.name: x for x in run_checks(probe_local(OURS / "gpu-vfio-ready"),
                                           NodeInfo(kubelet_version=version))}
    assert ready["kubelet-podresources-gate"].status == "pass"


@pytest.mark.parametrize(("runtime", "status"), [("containerd://1.7.20", "pass"),
                                                 ("cri-o://1.30.2", "fail"),
                                                 ("docker://24.0.7", "fail")])
def test_container_runtime_from_the_node(runtime, status):
    r = {x.name: x for x in run_checks(probe_local(OURS / "consumer-gpu"),
                                       NodeInfo(container_runtime=runtime))}
    assert r["container-runtime"].status == status
    assert runtime in r["container-runtime"].evidence[0]


def test_ignored_checks_keep_their_result_but_do_not_block():
    facts = probe_local(OURS / "gpu-shared-group")
    plain = {r.name: r for r in run_checks(facts)}
    assert plain["iommu-group-isolation"].blocking
    ign = {r.name: r for r in run_checks(facts, ignore=frozenset({"iommu-group-isolation"}))}
    r = ign["iommu-group-isolation"]
    assert r.status == "fail" and r.ignored and not r.blocking
    assert all(x.ignored for x in run_checks(facts, ignore=frozenset({"all"})))
    with pytest.raises(ValueError, match="unknown check"):
        run_checks(facts, ignore=frozenset({"iommu-isolation"}))


def test_nvswitch_check_reports_the_host_fabric_manager():
    from remote.hostfacts import FabricManager
    facts = probe_local(OURS / "hgx-nvswitch")
    r = {x.name: x for x in run_checks(facts)}["nvswitch"]
    assert "nvidia-fabricmanager is enabled on the host" in r.summary
    assert "etc/systemd/system/multi-user.target.wants/nvidia-fabricmanager.service: enabled " \
           "at boot" in r.evidence
    assert "systemctl disable --now nvidia-fabricmanager" in r.remedy
    assert "BIND_NVSWITCHES=true" in r.remedy  # the NVSwitches are not on vfio-pci either
    running = replace(facts, fabric_manager=replace(facts.fabric_manager, pids=["4242"]))
    r = {x.name: x for x in run_checks(running)}["nvswitch"]
    assert r.status == "warn" and "the host's nvidia-fabricmanager is running" in r.summary
    assert "proc/4242/comm: nv-fabricmanage (running)" in r.evidence
    # NVSwitches on vfio-pci and the host unit masked: nothing left to say
    on_vfio = [replace(d, driver="vfio-pci") if d.is_nvswitch else d for d in facts.devices]
    done = replace(facts, devices=on_vfio, fabric_manager=FabricManager(
        units=facts.fabric_manager.units, enabled=facts.fabric_manager.enabled, masked=True))
    r = {x.name: x for x in run_checks(done)}["nvswitch"]
    assert r.status == "pass" and "host fabric manager not enabled" in r.summary
    assert "etc/systemd/system/nvidia-fabricmanager.service -> /dev/null: masked" in r.evidence


def test_a_grace_gpu_without_its_vfio_variant_is_warned_of():
    facts = probe_local(OURS / "grace-gh200")
    bare = replace(facts, nvgrace_available=False, nvgrace_evidence=[],
                   devices=[replace(d, driver=None) for d in facts.devices])
    r = {x.name: x for x in run_checks(bare)}
    assert r["vfio-available"].status == "warn"
    assert "1 Grace GPU(s) need nvgrace_gpu_vfio_pci" in r["vfio-available"].summary
    assert "CONFIG_NVGRACE_GPU_VFIO_PCI" in r["vfio-available"].remedy
    on_nvidia = replace(facts, devices=[replace(d, driver="nvidia") if d.is_gpu else d
                                        for d in facts.devices])
    drv = {x.name: x for x in run_checks(on_nvidia)}["host-nvidia-driver"]
    assert drv.status == "fail" and "nvgrace_gpu_vfio_pci for Grace GPUs" in drv.remedy


def test_arm64_without_kvm_or_iommu_says_what_arm64_needs():
    facts = probe_local(OURS / "grace-gh200")
    off = replace(facts, kvm_present=False, iommu_groups={}, iommu_groups_dir=True)
    r = {x.name: x for x in run_checks(off)}
    assert r["cpu-virtualization"].status == "fail"
    assert "EL2" in r["cpu-virtualization"].remedy
    assert "CPU part\t: 0xd4f" in "\n".join(r["cpu-virtualization"].evidence)
    assert r["iommu-enabled"].status == "fail" and "SMMU" in r["iommu-enabled"].remedy
    assert "intel_iommu" not in r["iommu-enabled"].remedy
