"""Read what a simulated host looks like from its tree on disk (paths relative to its root).

Only reads; the layout is the one in tests/fixtures/hosts/README.md (domain.md section 5).
A missing tree reads as an empty host (no devices, no modules), never as an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

NVIDIA = "0x10de"


@dataclass(frozen=True)
class PciDevice:
    bdf: str
    vendor: str
    device: str
    pci_class: str
    driver: str | None = None
    iommu_group: str | None = None

    @property
    def is_nvidia(self) -> bool:
        return self.vendor == NVIDIA

    @property
    def is_gpu(self) -> bool:
        return self.is_nvidia and self.pci_class[:6] in ("0x0300", "0x0302")

    @property
    def is_nvswitch(self) -> bool:
        return self.is_nvidia and self.pci_class[:6] == "0x0680"

    @property
    def is_bridge(self) -> bool:
        return self.pci_class[:6] == "0x0604"

    @property
    def slot(self) -> str:
        """Domain:bus:device without the function: functions of one card share it."""
        return self.bdf.rsplit(".", 1)[0]


@dataclass(frozen=True)
class HostState:
    devices: tuple[PciDevice, ...] = ()
    iommu_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    modules: frozenset[str] = frozenset()
    cmdline: str = ""
    tdx: bool = False
    sev_snp: bool = False
    kata: bool = False  # kata-deploy's artifacts under /opt/kata
    kata_shims: frozenset[str] = frozenset()
    cdi_specs: frozenset[str] = frozenset()
    kubelet_config: str = ""
    exists: bool = True

    @property
    def gpus(self) -> tuple[PciDevice, ...]:
        return tuple(d for d in self.devices if d.is_gpu)

    @property
    def nvswitches(self) -> tuple[PciDevice, ...]:
        return tuple(d for d in self.devices if d.is_nvswitch)

    @property
    def host_driver_loaded(self) -> bool:
        return "nvidia" in self.modules

    @property
    def iommu_enabled(self) -> bool:
        return bool(self.iommu_groups)

    @property
    def tee(self) -> bool:
        return self.tdx or self.sev_snp

    def device(self, bdf: str) -> PciDevice | None:
        return next((d for d in self.devices if d.bdf == bdf), None)

    def group_viable(self, dev: PciDevice) -> bool:
        """A GPU's IOMMU group may hold only its own functions, NVIDIA devices and bridges."""
        if dev.iommu_group is None or dev.iommu_group not in self.iommu_groups:
            return False
        for member in self.iommu_groups[dev.iommu_group]:
            other = self.device(member)
            if other is None:
                continue
            if other.slot == dev.slot or other.is_nvidia or other.is_bridge:
                continue
            return False
        return True


def inside(root: str | os.PathLike[str], rel: str) -> Path:
    """`rel` resolved as the host would see it (following the tree's own symlinks, absolute
    ones relative to the host root), but never leaving `root`."""
    root = Path(root)
    cur = root
    parts = [p for p in rel.strip("/").split("/") if p]
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            cur = cur.parent if cur != root else root
            continue
        nxt = cur / part
        if nxt.is_symlink() and hops < 40:
            hops += 1
            target = os.readlink(nxt)
            if target.startswith("/"):
                cur = root
            parts = [p for p in target.strip("/").split("/") if p] + parts
            continue
        cur = nxt
    return cur


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _link_name(path: Path) -> str | None:
    try:
        return os.path.basename(os.readlink(path).rstrip("/"))
    except OSError:
        return None


def _flag(path: Path) -> bool:
    return _read(path) in ("Y", "y", "1")


def read_host(root: str | os.PathLike[str]) -> HostState:
    root = Path(root)
    if not root.is_dir():
        return HostState(exists=False)
    devices = []
    devdir = root / "sys/bus/pci/devices"
    if devdir.is_dir():
        for entry in sorted(devdir.iterdir()):
            devices.append(
                PciDevice(
                    bdf=entry.name,
                    vendor=_read(entry / "vendor").lower(),
                    device=_read(entry / "device").lower(),
                    pci_class=_read(entry / "class").lower(),
                    driver=_link_name(entry / "driver"),
                    iommu_group=_link_name(entry / "iommu_group"),
                )
            )
    groups: dict[str, tuple[str, ...]] = {}
    gdir = root / "sys/kernel/iommu_groups"
    if gdir.is_dir():
        for g in sorted(gdir.iterdir()):
            members = g / "devices"
            groups[g.name] = (
                tuple(sorted(m.name for m in members.iterdir())) if members.is_dir() else ()
            )
    modules = frozenset(
        line.split()[0] for line in _read(root / "proc/modules").splitlines() if line.strip()
    )
    kata_dir = inside(root, "opt/kata/share/defaults/kata-containers")
    shims = frozenset(
        p.name[len("configuration-") : -len(".toml")]
        for p in (kata_dir.iterdir() if kata_dir.is_dir() else ())
        if p.name.startswith("configuration-") and p.name.endswith(".toml")
    )
    cdi_dir = inside(root, "var/run/cdi")
    cdi = frozenset(p.name for p in cdi_dir.iterdir()) if cdi_dir.is_dir() else frozenset()
    return HostState(
        devices=tuple(devices),
        iommu_groups=groups,
        modules=modules,
        cmdline=_read(root / "proc/cmdline"),
        tdx=_flag(root / "sys/module/kvm_intel/parameters/tdx"),
        sev_snp=_flag(root / "sys/module/kvm_amd/parameters/sev_snp"),
        kata=inside(root, "opt/kata/bin/containerd-shim-kata-v2").exists(),
        kata_shims=shims,
        cdi_specs=cdi,
        kubelet_config=_read(root / "var/lib/kubelet/config.yaml"),
    )
