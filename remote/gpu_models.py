"""NVIDIA PCI device IDs -> model names, and what matters about each model here.

Why a table of our own: hosts being prepared for passthrough often have no NVIDIA driver
(so no nvidia-smi) and no pci.ids database; the PCI device ID in sysfs is always there.
Names follow the public PCI ID database (pci-ids.ucw.cz). `cc` marks models NVIDIA supports
in confidential-computing mode (Hopper and Blackwell data-center parts), which is what makes
the GPU Operator's cc-manager switch them on a TDX / SEV-SNP host. `consumer` marks GeForce
parts, which NVIDIA does not support for passthrough with these components. `grace` marks the
GPUs of Grace superchips (GH200, GB200, GB300), whose memory the CPU reaches coherently: the
kernel's vfio variant driver `nvgrace_gpu_vfio_pci` exists for exactly these device IDs
(linux drivers/vfio/pci/nvgrace-gpu/main.c, nvgrace_gpu_vfio_pci_table: 0x2342, 0x2345, then
0x2348 (v6.13), 0x2941, 0x31c2 (v6.18)), and the GPU Operator's vfio-manager binds them to it
when the kernel has it (k8s-driver-manager internal/nvpassthrough/nvpassthrough.go@v0.10.0).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuModel:
    device_id: str  # 4 lowercase hex digits, vendor 10de implied
    # pci.ids name, e.g. "GH100 [H100 SXM5 80GB]": the Kata device plugin's per-model resource
    # is made from it (installer.charts.devplugin.model_class), so it must be the database's text.
    name: str
    short: str  # e.g. "H100 SXM5 80GB"
    consumer: bool = False
    cc: bool = False
    nvswitch: bool = False
    grace: bool = False


_MODELS = [
    # Volta / Turing
    GpuModel("1db1", "GV100GL [Tesla V100 SXM2 16GB]", "V100 SXM2 16GB"),
    GpuModel("1db4", "GV100GL [Tesla V100 PCIe 16GB]", "V100 PCIe 16GB"),
    GpuModel("1db5", "GV100GL [Tesla V100 SXM2 32GB]", "V100 SXM2 32GB"),
    GpuModel("1db6", "GV100GL [Tesla V100 PCIe 32GB]", "V100 PCIe 32GB"),
    GpuModel("1eb8", "TU104GL [Tesla T4]", "T4"),
    # Ampere
    GpuModel("20b0", "GA100 [A100 SXM4 40GB]", "A100 SXM4 40GB"),
    GpuModel("20b2", "GA100 [A100 SXM4 80GB]", "A100 SXM4 80GB"),
    GpuModel("20b5", "GA100 [A100 PCIe 80GB]", "A100 PCIe 80GB"),
    GpuModel("20f1", "GA100 [A100 PCIe 40GB]", "A100 PCIe 40GB"),
    GpuModel("20b7", "GA100GL [A30 PCIe]", "A30"),
    GpuModel("2235", "GA102GL [A40]", "A40"),
    GpuModel("2236", "GA102GL [A10]", "A10"),
    GpuModel("2237", "GA102GL [A10G]", "A10G"),
    GpuModel("25b6", "GA107GL [A2 / A16]", "A2 / A16"),
    GpuModel("2230", "GA102GL [RTX A6000]", "RTX A6000"),
    # Ada
    GpuModel("26b5", "AD102GL [L40]", "L40"),
    GpuModel("26b9", "AD102GL [L40S]", "L40S"),
    GpuModel("27b8", "AD104GL [L4]", "L4"),
    GpuModel("26b1", "AD102GL [RTX 6000 Ada Generation]", "RTX 6000 Ada"),
    # Hopper
    GpuModel("2330", "GH100 [H100 SXM5 80GB]", "H100 SXM5 80GB", cc=True),
    GpuModel("2331", "GH100 [H100 PCIe]", "H100 PCIe", cc=True),
    # Sold as H100 NVL; the PCI ID database (and so the device plugin's per-model resource
    # nvidia.com/GH100_H100L_94GB) says H100L 94GB: go-nvlib pciids/default_pci.ids as
    # vendored in sandbox-device-plugin v0.0.2 - v0.0.5.
    GpuModel("2321", "GH100 [H100L 94GB]", "H100 NVL", cc=True),
    GpuModel("2324", "GH100 [H800]", "H800", cc=True),
    GpuModel("2335", "GH100 [H200 SXM 141GB]", "H200 SXM 141GB", cc=True),
    GpuModel("233b", "GH100 [H200 NVL]", "H200 NVL", cc=True),
    # Grace superchips (names from the kernel's nvgrace_gpu_vfio_pci_table comments)
    GpuModel("2342", "GH100 [GH200 120GB / 480GB]", "GH200", cc=True, grace=True),
    GpuModel("2345", "GH100 [GH200 480GB]", "GH200 480GB", cc=True, grace=True),
    GpuModel("2348", "GH100 [GH200]", "GH200 (2348)", cc=True, grace=True),
    # Blackwell
    GpuModel("2901", "GB100 [B200]", "B200", cc=True),
    GpuModel("29bc", "GB102 [B100]", "B100", cc=True),
    GpuModel("2941", "GB100 [GB200]", "GB200", cc=True, grace=True),
    GpuModel("31c2", "Blackwell Ultra [GB300]", "GB300", cc=True, grace=True),
    # NVSwitches (class 0x0680, "Bridge")
    GpuModel("1af1", "GA100 [A100 NVSwitch]", "A100 NVSwitch", nvswitch=True),
    GpuModel("22a3", "GH100 [H100 NVSwitch]", "H100 NVSwitch", nvswitch=True),
    # GeForce (consumer)
    GpuModel("2204", "GA102 [GeForce RTX 3090]", "GeForce RTX 3090", consumer=True),
    GpuModel("2206", "GA102 [GeForce RTX 3080]", "GeForce RTX 3080", consumer=True),
    GpuModel("2684", "AD102 [GeForce RTX 4090]", "GeForce RTX 4090", consumer=True),
    GpuModel("2704", "AD103 [GeForce RTX 4080]", "GeForce RTX 4080", consumer=True),
    GpuModel("2b85", "GB202 [GeForce RTX 5090]", "GeForce RTX 5090", consumer=True),
]

MODELS: dict[str, GpuModel] = {m.device_id: m for m in _MODELS}
GRACE_IDS: frozenset[str] = frozenset(m.device_id for m in _MODELS if m.grace)


def lookup(device_id: str) -> GpuModel | None:
    """Model for an NVIDIA device ID as read from sysfs (`0x2330`, `2330`, any case)."""
    return MODELS.get(device_id.strip().lower().removeprefix("0x"))


def describe(device_id: str) -> str:
    m = lookup(device_id)
    did = device_id.strip().lower().removeprefix("0x")
    return f"{m.short} (10de:{did})" if m else f"unknown NVIDIA device 10de:{did}"
