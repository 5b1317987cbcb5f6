"""Typed facts about one host, as read by the probe (remote/probe.sh).

Why frozen dataclasses with the raw file texts kept alongside: checks must quote exactly
what they read (evidence), fixes must compute byte-exact edits from what was read, and both
must work the same for a live host, a host over SSH and a captured tree. Nothing here reads
files or runs commands; `remote.probe.parse_probe` builds these from probe output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from remote import gpu_models

NVIDIA = "10de"
VFIO_PCI = "vfio-pci"
# The vfio variant driver of Grace superchip GPUs (sysfs driver name = module name).
NVGRACE = "nvgrace_gpu_vfio_pci"
# Drivers that hand a device to a VM. The GPU Operator's sandbox validator accepts exactly
# these (cmd/nvidia-validator/main.go VfioPCI.runValidation, v26.3.0 - v26.7.0).
VFIO_DRIVERS: tuple[str, ...] = (VFIO_PCI, NVGRACE)

# CPU flags that matter for virtualization and confidential computing; the rest of the
# (long) flags line is not kept.
VIRT_FLAGS = frozenset({
    "vmx", "svm", "hypervisor", "ept", "npt", "sev", "sev_es", "sev_snp", "sme",
    "tdx_guest", "tme",
})


@dataclass(frozen=True)
class PciDevice:
    """One PCI function. IDs are lowercase hex without `0x` (`10de`, `2330`, `030200`)."""

    bdf: str
    vendor: str
    device: str
    class_code: str
    driver: str | None
    iommu_group: str | None
    subsystem_vendor: str = ""
    subsystem_device: str = ""
    driver_override: str | None = None
    numa_node: str | None = None

    @property
    def ident(self) -> str:
        """`vendor:device`, the form `vfio-pci ids=` and `lspci -d` use."""
        return f"{self.vendor}:{self.device}"

    @property
    def is_nvidia(self) -> bool:
        return self.vendor == NVIDIA

    @property
    def is_gpu(self) -> bool:
        """NVIDIA display controller: VGA (0x0300xx) or 3D controller (0x0302xx)."""
        return self.is_nvidia and self.class_code[:4] in ("0300", "0302")

    @property
    def is_nvswitch(self) -> bool:
        """NVIDIA "other bridge" (0x0680xx): the NVSwitches of an HGX board."""
        return self.is_nvidia and self.class_code[:4] == "0680"

    @property
    def is_grace(self) -> bool:
        """A Grace superchip's GPU (GH200, GB200, GB300): nvgrace_gpu_vfio_pci's devices."""
        return self.is_nvidia and self.device in gpu_models.GRACE_IDS

    @property
    def on_vfio(self) -> bool:
        """Bound to a driver that passes it to a VM (vfio-pci or the Grace variant)."""
        return self.driver in VFIO_DRIVERS

    @property
    def is_bridge(self) -> bool:
        """PCI bridges (0x0604xx) may share a GPU's IOMMU group without harm: vfio only
        needs the endpoints of a group, and bridges stay on pcieport."""
        return self.class_code[:4] == "0604"

    @property
    def model(self) -> gpu_models.GpuModel | None:
        return gpu_models.lookup(self.device) if self.is_nvidia else None

    @property
    def label(self) -> str:
        """`0000:1b:00.0 H100 SXM5 80GB (10de:2330)` for messages."""
        if self.is_nvidia:
            return f"{self.bdf} {gpu_models.describe(self.device)}"
        return f"{self.bdf} ({self.ident}, class 0x{self.class_code})"


# The names the host fixes give their backups (remote/fixes/base.py gki_write):
# <file>.gpu-kata-installer.<fix>.bak holds the file before that fix's first edit, and
# <file>.gpu-kata-installer.<fix>.absent marks a file the fix created.
BACKUP_INFIX = ".gpu-kata-installer."


@dataclass(frozen=True)
class Backup:
    """One backup a host fix left (paths relative to the host root). `content` is the file
    before the fix (None: the fix created the file, an `.absent` marker)."""

    path: str  # the file the fix edited
    fix: str
    backup: str  # the backup's own path
    content: str | None

    @staticmethod
    def parse(backup: str, content: str) -> Backup | None:
        """From a backup's path (None: not a name the fixes write)."""
        target, sep, rest = backup.rpartition(BACKUP_INFIX)
        fix, _, kind = rest.rpartition(".")
        if not sep or not target or not fix or kind not in ("bak", "absent"):
            return None
        return Backup(target, fix, backup, content if kind == "bak" else None)


@dataclass(frozen=True)
class FabricManager:
    """The host side of NVIDIA Fabric Manager (package nvidia-fabricmanager): its systemd
    unit, whether the unit is enabled or masked, its binary, and running `nv-fabricmanager`
    processes (their comm is cut to 15 characters: `nv-fabricmanage`). Paths are relative to
    the host root."""

    units: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)  # *.wants/ links to the unit
    masked: bool = False
    binary: str | None = None
    pids: list[str] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.units or self.binary or self.pids)


@dataclass(frozen=True)
class HostFacts:
    """Everything the checks and fixes know about a host.

    `files` holds the verbatim text of every file the probe read, keyed by its path
    relative to the host root (e.g. `proc/cmdline`); `missing` lists paths it looked for
    and did not find, `unreadable` those it found but could not read. Fields that are
    None mean "could not tell" (e.g. `modules` is None when the kernel has no
    /proc/modules), which checks must report as such rather than guess."""

    hostname: str
    host_root: str = "/"
    os_id: str = ""
    os_like: list[str] = field(default_factory=list)
    os_version: str = ""
    os_pretty: str = ""
    kernel: str = ""
    cmdline: str = ""
    cpu_vendor: str = ""
    cpu_model: str = ""
    cpu_flags: list[str] = field(default_factory=list)
    kvm_present: bool = False
    iommu_groups_dir: bool = False
    iommu_groups: dict[str, list[str]] = field(default_factory=dict)
    devices: list[PciDevice] = field(default_factory=list)
    modules: list[str] | None = None
    modprobe_d: dict[str, str] = field(default_factory=dict)
    modules_load_d: dict[str, str] = field(default_factory=dict)
    grub_default: str | None = None
    grub_d: dict[str, str] = field(default_factory=dict)
    kubelet_config: str | None = None
    kubelet_config_path: str = "var/lib/kubelet/config.yaml"
    tdx: bool | None = None
    sev_snp: bool | None = None
    sev: bool | None = None
    vfio_available: bool = False
    vfio_builtin: bool = False
    vfio_evidence: list[str] = field(default_factory=list)
    # nvgrace_gpu_vfio_pci: loaded, registered, shipped as a module or built in (looked for
    # only on hosts with Grace GPUs), with what showed it.
    nvgrace_available: bool = False
    nvgrace_evidence: list[str] = field(default_factory=list)
    arch: str = ""  # x86_64, aarch64, ... ("" when neither the kernel nor cpuinfo says)
    # Folders that mark a Kubernetes distribution's install (remote.kubelet.MARKER_PATHS).
    markers: list[str] = field(default_factory=list)
    fabric_manager: FabricManager | None = None  # looked for on hosts with NVSwitches
    pci_drivers: list[str] = field(default_factory=list)
    vfio_dev_nodes: list[str] = field(default_factory=list)
    cdi_specs: list[str] = field(default_factory=list)
    validations: list[str] = field(default_factory=list)
    containerd_config: bool = False
    containerd_socket: bool = False
    crio_socket: bool = False
    boot_id: str | None = None
    bls_entries: dict[str, str] = field(default_factory=dict)
    tools: list[str] = field(default_factory=list)
    # What the installer's host fixes changed, as their backups on the host say.
    backups: list[Backup] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    complete: bool = True

    # -- derived views
    @property
    def gpus(self) -> list[PciDevice]:
        return [d for d in self.devices if d.is_gpu]

    @property
    def nvswitches(self) -> list[PciDevice]:
        return [d for d in self.devices if d.is_nvswitch]

    @property
    def grace_gpus(self) -> list[PciDevice]:
        return [d for d in self.gpus if d.is_grace]

    def vfio_driver_for(self, dev: PciDevice) -> str:
        """The driver that should hold `dev` for passthrough, as the GPU Operator's
        vfio-manager chooses it: the Grace variant for a Grace GPU when the kernel has it
        (its modules.alias entry matches closer than vfio-pci's), vfio-pci otherwise."""
        return NVGRACE if dev.is_grace and self.nvgrace_available else VFIO_PCI

    @property
    def cmdline_args(self) -> list[str]:
        return self.cmdline.split()

    def device(self, bdf: str) -> PciDevice | None:
        return next((d for d in self.devices if d.bdf == bdf), None)

    def group_members(self, group: str) -> list[PciDevice]:
        """Devices of an IOMMU group (members listed by the group folder, falling back to
        the devices' own iommu_group links)."""
        bdfs = self.iommu_groups.get(group)
        if bdfs is None:
            bdfs = [d.bdf for d in self.devices if d.iommu_group == group]
        out = []
        for b in bdfs:
            d = self.device(b)
            out.append(d if d else PciDevice(b, "", "", "", None, group))
        return out

    @property
    def os_family(self) -> str:
        """`debian` (Debian, Ubuntu and derivatives), `rhel` (RHEL, Rocky, Alma, CentOS,
        Fedora, ...) or `unknown`, from os-release ID and ID_LIKE."""
        ids = [self.os_id, *self.os_like]
        if any(i in ("debian", "ubuntu") for i in ids):
            return "debian"
        if any(i in ("rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn")
               for i in ids):
            return "rhel"
        return "unknown"

    @property
    def nvidia_modules_loaded(self) -> list[str]:
        if self.modules is None:
            return []
        return [m for m in self.modules if m == "nvidia" or m.startswith("nvidia_")]

    def has_tool(self, name: str) -> bool:
        return name in self.tools
