"""Host and node prerequisite checks, modelled on kubeadm preflight.

Each check has a stable kebab-case name (operators put them in ignore lists and tests key
expectation tables on them), a severity (what a problem here costs: `fail` blocks the
install, `warn` does not), the evidence it read quoted verbatim (`<path>: <line>`), and a
remedy an operator can act on. Checks never read files: host facts come from the probe
(`remote.probe`), node facts (kubelet version, runtime) from the node object when a cluster
is known. Where signals disagree (domain.md's cloud guest: no vmx flag yet /dev/kvm) the
check says exactly what it saw instead of picking one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from installer.answers.checknames import CHECK_NAMES, expand_ignore
from installer.answers.versions import release_of
from remote.fixes.kubelet_gate import GATE
from remote.hostfacts import NVGRACE, FabricManager, HostFacts, PciDevice
from remote.kubelet import KubeletSettings, evidence_lines, layout_evidence, read_settings

Status = Literal["pass", "warn", "fail", "skip"]
Severity = Literal["fail", "warn"]


GATE_DEFAULT_ON = "1.34.0"
RECOMMENDED_RUNTIME_TIMEOUT_S = 20 * 60
KUBELET_DEFAULT_RUNTIME_TIMEOUT_S = 2 * 60


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. Host checks and the cluster's own (installer.engine.steps.checks)
    share it; a cluster check has no severity (None): its status alone says what it costs."""

    name: str
    status: Status
    severity: Severity | None
    summary: str
    evidence: list[str] = field(default_factory=list)
    remedy: str = ""
    ignored: bool = False

    @property
    def blocking(self) -> bool:
        """A failure that stops the run (not ignored)."""
        return self.status == "fail" and not self.ignored

    def to_dict(self) -> dict[str, Any]:
        """The verdict as it leaves the process (`check --local`, the plan's JSON, `--json`
        events, the troubleshoot bundle): the one place its JSON keys are written."""
        out: dict[str, Any] = {"name": self.name, "status": self.status}
        if self.severity is not None:
            out["severity"] = self.severity
        return {**out, "summary": self.summary, "evidence": list(self.evidence),
                "remedy": self.remedy, "ignored": self.ignored}


@dataclass(frozen=True)
class NodeInfo:
    """What the cluster says about the node: `status.nodeInfo.kubeletVersion`
    (e.g. `v1.30.4`) and `containerRuntimeVersion` (e.g. `containerd://1.7.20`)."""

    kubelet_version: str | None = None
    container_runtime: str | None = None
    # k8s, k3s, rke2, k0s or microk8s (installer.cluster.facts.distribution_of): where the kubelet
    # keeps its settings; None lets the host's own files tell.
    distribution: str | None = None


def parse_duration(s: str) -> float | None:
    """Go duration (`20m0s`, `1h`, `90s`, `0s`) in seconds; None if unparsable."""
    s = str(s).strip().strip('"')
    if not s:
        return None
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)", s, re.ASCII):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(s):
        return 0.0 if s == "0" else None
    return total


def _lines(facts: HostFacts, path: str, pred: Callable[[str], bool]) -> list[str]:
    text = facts.files.get(path)
    if text is None:
        return []
    return [f"{path}: {ln}" for ln in text.splitlines() if pred(ln)]


def _cmdline_ev(facts: HostFacts) -> str:
    return f"proc/cmdline: {facts.cmdline}" if "proc/cmdline" in facts.files else \
        "proc/cmdline: not found"


def _dev_ev(d: PciDevice) -> str:
    drv = d.driver or "(no driver)"
    grp = f", iommu_group {d.iommu_group}" if d.iommu_group else ""
    return f"sys/bus/pci/devices/{d.bdf}: {d.label}, driver {drv}{grp}"


def _iommu_arg(facts: HostFacts) -> str:
    return "amd_iommu=on" if facts.cpu_vendor == "AuthenticAMD" else "intel_iommu=on"


# ----------------------------------------------------------------------------- checks

def _arm64_virtualization(f: HostFacts) -> CheckResult:
    """arm64 has no vmx/svm flag: KVM works when the kernel was booted at EL2 (hypervisor
    mode), which /dev/kvm shows."""
    name, sev = "cpu-virtualization", "fail"
    ev = [f"architecture: {f.arch}"]
    ev += _lines(f, "proc/cpuinfo", lambda ln: ln.startswith(("CPU implementer", "CPU part")))
    ev.append("dev/kvm: " + ("present" if f.kvm_present else "absent"))
    if f.kvm_present:
        return CheckResult(name, "pass", sev, "arm64 with /dev/kvm (KVM needs no CPU flag on "
                           "arm64; the kernel runs at EL2)", ev)
    return CheckResult(name, "fail", sev, "arm64 host without /dev/kvm", ev,
                       "KVM on arm64 needs the kernel booted at EL2: check `dmesg | grep -i kvm` "
                       "for 'Hyp mode initialized', enable virtualization in the firmware, and "
                       "use a kernel with KVM built in.")


def check_cpu_virtualization(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "cpu-virtualization", "fail"
    if f.arch == "aarch64":
        return _arm64_virtualization(f)
    ev: list[str] = []
    hw = [x for x in ("vmx", "svm") if x in f.cpu_flags]
    if "proc/cpuinfo" in f.files:
        ev += _lines(f, "proc/cpuinfo", lambda ln: ln.startswith(("vendor_id", "model name")))
        ev.append("proc/cpuinfo flags: " + (" ".join(hw) if hw else "no vmx, no svm")
                  + (" (hypervisor flag set: this is a virtual machine)"
                     if "hypervisor" in f.cpu_flags else ""))
    else:
        ev.append("proc/cpuinfo: not found")
    ev.append("dev/kvm: " + ("present" if f.kvm_present else "absent"))
    if hw and f.kvm_present:
        return CheckResult(name, "pass", sev, f"{hw[0]} and /dev/kvm present", ev)
    if hw:
        mod = "kvm_intel" if "vmx" in hw else "kvm_amd"
        return CheckResult(name, "fail", sev, f"CPU has {hw[0]} but /dev/kvm is missing", ev,
                           f"Load {mod} (`modprobe {mod}`); if it fails, enable "
                           "virtualization (VT-x / AMD-V) in the firmware setup.")
    if f.kvm_present:
        return CheckResult(
            name, "warn", sev,
            "/dev/kvm exists but the CPU flags show neither vmx nor svm: KVM here is nested "
            "or paravirtualized", ev,
            "Kata can start VMs on this machine, but GPU passthrough needs a bare-metal host "
            "(hardware virtualization and an IOMMU). Use a bare-metal GPU node, or one whose "
            "hypervisor exposes VT-x/AMD-V and a vIOMMU.")
    return CheckResult(name, "fail", sev, "no hardware virtualization (no vmx/svm, no /dev/kvm)",
                       ev, "Enable VT-x / AMD-V in the firmware setup and load kvm_intel or "
                       "kvm_amd; on a VM, enable nested virtualization.")


def check_iommu_enabled(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "iommu-enabled", "fail"
    args = [a for a in f.cmdline_args if "iommu" in a]
    ev = [_cmdline_ev(f)]
    n = len(f.iommu_groups)
    if not f.iommu_groups_dir:
        ev.append("sys/kernel/iommu_groups: absent")
    else:
        ev.append(f"sys/kernel/iommu_groups: {n} group(s)" if n else
                  "sys/kernel/iommu_groups: empty")
    want = _iommu_arg(f)
    vm = " This machine is a virtual machine (hypervisor CPU flag); it needs a vIOMMU." \
        if "hypervisor" in f.cpu_flags else ""
    if n:
        return CheckResult(name, "pass", sev, f"IOMMU active: {n} groups"
                           + (f" ({' '.join(args)})" if args else ""), ev)
    if f.arch == "aarch64":
        return CheckResult(
            name, "fail", sev, "IOMMU off: no IOMMU groups (arm64: the SMMU is described by "
            "the firmware; no kernel argument turns it on)", ev,
            "Enable the SMMU in the firmware setup (Grace systems ship with it on), make sure "
            "no iommu.passthrough or arm-smmu disable argument is on the command line, and "
            "check `dmesg | grep -i smmu`.")
    if any(a in ("intel_iommu=on", "amd_iommu=on") for a in args):
        return CheckResult(
            name, "fail", sev,
            f"{' '.join(args)} is on the command line but there are no IOMMU groups", ev,
            "Enable VT-d / AMD-Vi (IOMMU) in the firmware setup and reboot." + vm)
    off = [a for a in args if a.endswith("=off")]
    return CheckResult(
        name, "fail", sev,
        "IOMMU off: no IOMMU groups" + (f" ({' '.join(off)} on the command line)" if off
                                        else f" and no {want} on the command line"),
        ev,
        f"Add {want} to the kernel command line (fix `iommu-cmdline`), reboot, and make sure "
        "VT-d / AMD-Vi is enabled in the firmware setup." + vm)


def _foreign(f: HostFacts, gpu: PciDevice) -> list[PciDevice]:
    """Members of a GPU's group that would have to go to the VM with it: anything but
    the GPU's own functions (same slot) and PCI bridges."""
    slot = gpu.bdf.rsplit(".", 1)[0]
    return [m for m in f.group_members(gpu.iommu_group or "")
            if m.bdf.rsplit(".", 1)[0] != slot and not m.is_bridge]


def check_iommu_group_isolation(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "iommu-group-isolation", "fail"
    gpus = f.gpus + f.nvswitches
    if not f.gpus:
        return CheckResult(name, "skip", sev, "no NVIDIA GPU to check")
    if not f.iommu_groups:
        return CheckResult(name, "skip", sev, "IOMMU off: no groups to check (see iommu-enabled)",
                           ["sys/kernel/iommu_groups: " + ("empty" if f.iommu_groups_dir
                                                           else "absent")])
    ev: list[str] = []
    bad: list[str] = []
    for g in gpus:
        if g.iommu_group is None:
            ev.append(f"sys/bus/pci/devices/{g.bdf}/iommu_group: absent")
            bad.append(f"{g.bdf} has no IOMMU group")
            continue
        members = f.group_members(g.iommu_group)
        ev.append(f"sys/kernel/iommu_groups/{g.iommu_group}/devices: "
                  + ", ".join(m.bdf for m in members))
        foreign = _foreign(f, g)
        for m in foreign:
            ev.append("  " + _dev_ev(m))
        if foreign:
            bad.append(f"{g.bdf} shares group {g.iommu_group} with "
                       + ", ".join(m.label for m in foreign))
    if bad:
        return CheckResult(
            name, "fail", sev, "; ".join(bad), ev,
            "A GPU can only be passed through with every device of its IOMMU group. Enable "
            "ACS (PCIe Access Control Services) in the firmware setup, or move the GPU to a "
            "slot with its own group (not behind a switch shared with other devices). "
            "Avoid pcie_acs_override in production: it hides the isolation problem.")
    return CheckResult(name, "pass", sev,
                       f"each of {len(gpus)} GPU/NVSwitch group(s) holds only that device's "
                       "functions (and bridges)", ev)


def check_gpus_present(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "gpus-present", "fail"
    if not f.devices:
        return CheckResult(name, "fail", sev, "no PCI devices found under sys/bus/pci/devices",
                           ["sys/bus/pci/devices: empty or absent"],
                           "Run the check on the GPU host itself (or point --host-root at its "
                           "root); sysfs must be mounted.")
    ev = [_dev_ev(d) for d in f.gpus]
    others = [d for d in f.devices if d.is_nvidia and not d.is_gpu]
    ev += [_dev_ev(d) for d in others]
    if not f.gpus:
        return CheckResult(name, "fail", sev,
                           f"no NVIDIA GPU among {len(f.devices)} PCI devices", ev or
                           [f"sys/bus/pci/devices: {len(f.devices)} devices, none with vendor "
                            "0x10de and class 0x0300xx/0x0302xx"],
                           "This host has no NVIDIA GPU; do not label it for Kata GPU "
                           "workloads.")
    models = sorted({(d.model.short if d.model else f"10de:{d.device}") for d in f.gpus})
    drivers = sorted({d.driver or "no driver" for d in f.gpus})
    return CheckResult(name, "pass", sev,
                       f"{len(f.gpus)} GPU(s): {', '.join(models)}; driver: {', '.join(drivers)}",
                       ev)


def check_host_nvidia_driver(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "host-nvidia-driver", "fail"
    if not f.gpus:
        return CheckResult(name, "skip", sev, "no NVIDIA GPU")
    on_nvidia = [d for d in f.gpus + f.nvswitches if d.driver and d.driver.startswith("nvidia")]
    ev = [f"sys/bus/pci/devices/{d.bdf}/driver -> {d.driver}" for d in on_nvidia]
    mods = f.nvidia_modules_loaded
    if f.modules is None:
        ev.append("proc/modules: absent (kernel without loadable modules)")
    else:
        ev += _lines(f, "proc/modules", lambda ln: ln.split()[:1] and
                     ln.split()[0] in mods)
    remedy = ("Kata passes GPUs to the VM through VFIO; a host driver holding them blocks "
              "that. Bind the GPUs to vfio-pci" + (f" ({NVGRACE} for Grace GPUs)"
                                                    if f.grace_gpus else "") +
              " (fix `vfio-bind`, or let the GPU Operator's "
              "vfio-manager do it) and keep the host driver from claiming them at boot "
              "(uninstall the NVIDIA driver, or keep vfio-pci ids= with softdep as the fix "
              "writes). Then `lsmod | grep nvidia` should be empty.")
    if on_nvidia:
        return CheckResult(name, "fail", sev,
                           f"{len(on_nvidia)} GPU(s) bound to the host NVIDIA driver"
                           + (f"; loaded: {', '.join(mods)}" if mods else ""), ev, remedy)
    if mods:
        return CheckResult(name, "warn", sev,
                           f"no GPU bound to it, but {', '.join(mods)} loaded", ev,
                           "Unload the NVIDIA modules (`modprobe -r nvidia_uvm nvidia_drm "
                           "nvidia_modeset nvidia`) and uninstall the host driver so it cannot "
                           "claim the GPUs after a reboot.")
    ev += [f"sys/bus/pci/devices/{d.bdf}/driver -> {d.driver or '(none)'}" for d in f.gpus]
    return CheckResult(name, "pass", sev, "no GPU on the nvidia driver and no nvidia module "
                       "loaded" if f.modules is not None else "no GPU on the nvidia driver", ev)


def _nouveau_blacklisted(f: HostFacts) -> list[str]:
    ev = []
    for path, text in f.modprobe_d.items():
        for ln in text.splitlines():
            w = ln.split("#", 1)[0].split()
            if w[:2] == ["blacklist", "nouveau"]:
                ev.append(f"{path}: {ln}")
    for a in f.cmdline_args:
        if a.startswith(("modprobe.blacklist=", "module_blacklist=")) and \
                "nouveau" in a.split("=", 1)[1].split(","):
            ev.append(f"proc/cmdline: {a}")
    return ev


def check_nouveau(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "nouveau", "fail"
    if not f.gpus:
        return CheckResult(name, "skip", sev, "no NVIDIA GPU")
    bound = [d for d in f.gpus if d.driver == "nouveau"]
    loaded = f.modules is not None and "nouveau" in f.modules
    ev = [f"sys/bus/pci/devices/{d.bdf}/driver -> nouveau" for d in bound]
    ev += _lines(f, "proc/modules", lambda ln: ln.startswith("nouveau "))
    bl = _nouveau_blacklisted(f)
    ev += bl or ["etc/modprobe.d: no `blacklist nouveau`; proc/cmdline: no "
                 "modprobe.blacklist=nouveau"]
    if bound or loaded:
        return CheckResult(name, "fail", sev,
                           "nouveau " + ("drives " + ", ".join(d.bdf for d in bound)
                                         if bound else "is loaded"), ev,
                           "Blacklist nouveau (fix `nouveau-blacklist`: modprobe.d + initramfs) "
                           "and reboot; then bind the GPUs to vfio-pci.")
    if not bl:
        return CheckResult(name, "warn", "warn", "nouveau not loaded, but not blacklisted", ev,
                           "Blacklist nouveau (fix `nouveau-blacklist`) so it cannot claim a GPU "
                           "after a reboot or driver removal.")
    return CheckResult(name, "pass", sev, "nouveau not loaded and blacklisted", ev)


def check_vfio_available(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "vfio-available", "fail"
    grace = f.grace_gpus
    if f.vfio_available or (grace and f.nvgrace_available):
        how = "built into the kernel" if f.vfio_builtin else (
            "loaded" if f.modules and "vfio_pci" in f.modules else "available as a module")
        summary = f"vfio-pci {how}" if f.vfio_available else "vfio-pci not found"
        ev = list(f.vfio_evidence)
        if not grace:
            return CheckResult(name, "pass", sev, summary, ev)
        ev += [_dev_ev(d) for d in grace] + list(f.nvgrace_evidence)
        if f.nvgrace_available:
            gwhat = "loaded" if f.modules and NVGRACE in f.modules else "available"
            return CheckResult(name, "pass", sev,
                               f"{summary}; {NVGRACE} {gwhat} for {len(grace)} Grace GPU(s)", ev)
        ev.append(f"{NVGRACE}: not loaded, no module file, not built in")
        return CheckResult(
            name, "warn", sev, f"{summary}, but {len(grace)} Grace GPU(s) need {NVGRACE}, "
            "which this kernel lacks", ev,
            f"A Grace GPU's memory is reached through the CPU, not a PCI BAR; {NVGRACE} (the "
            "kernel's vfio variant for GH200/GB200/GB300) hands it to the VM, vfio-pci alone "
            "does not. Use a kernel built with CONFIG_NVGRACE_GPU_VFIO_PCI (NVIDIA's Grace "
            "kernels, or a mainline kernel new enough for these device IDs).")
    ev = ["proc/modules: " + ("no vfio_pci" if f.modules is not None else "absent"),
          "sys/module/vfio_pci: absent",
          f"lib/modules/{f.kernel or '<kernel>'}/kernel/drivers/vfio/pci/vfio-pci.ko*: not found"]
    pkg = ("linux-modules-extra-$(uname -r)" if f.os_family == "debian" else
           "kernel-modules-$(uname -r)" if f.os_family == "rhel" else "your kernel's modules")
    return CheckResult(name, "fail", sev, "vfio-pci not found (not loaded, not built in, no "
                       "module file)", ev,
                       f"Install {pkg}, or use a kernel built with CONFIG_VFIO_PCI.")


def _fabric_manager_ev(fm: FabricManager) -> list[str]:
    ev = [f"{u}: present" for u in fm.units]
    ev += [f"{e}: enabled at boot" for e in fm.enabled]
    ev += ["etc/systemd/system/nvidia-fabricmanager.service -> /dev/null: masked"] \
        if fm.masked else []
    ev += [f"{fm.binary}: present"] if fm.binary else []
    ev += [f"proc/{p}/comm: nv-fabricmanage (running)" for p in fm.pids]
    return ev or ["nvidia-fabricmanager: no unit, binary or process on the host"]


def check_nvswitch(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "nvswitch", "warn"
    sw = f.nvswitches
    if not sw:
        return CheckResult(name, "pass", sev, "no NVSwitch (class 0x0680) on this host")
    ev = [_dev_ev(d) for d in sw]
    off = [d for d in sw if not d.on_vfio]
    fm = f.fabric_manager
    problems, remedies = [], []
    if fm is not None:
        ev += _fabric_manager_ev(fm)
        if fm.pids:
            problems.append("the host's nvidia-fabricmanager is running")
        elif fm.enabled and not fm.masked:
            problems.append("nvidia-fabricmanager is enabled on the host")
        if fm.pids or (fm.enabled and not fm.masked):
            remedies.append(
                "With Kata, Fabric Manager runs inside the guest (kata's NVIDIA GPU guest image "
                "ships nv-fabricmanager); on the host it needs the host driver and holds the "
                "NVSwitches, so they cannot be passed through. Stop and disable it: "
                "`systemctl disable --now nvidia-fabricmanager` (or `systemctl mask` it), and "
                "keep the host NVIDIA driver off (fix `nvidia-driver-off`).")
    if off:
        problems.append(f"{len(off)} not on vfio-pci")
        remedies.append(
            "On HGX boards multi-GPU pods need every GPU and NVSwitch in the VM (else CUDA "
            "error 802). Bind the NVSwitches to vfio-pci (fix `vfio-bind` includes them) and "
            "set BIND_NVSWITCHES=true on the GPU Operator's vfio-manager.")
    if problems:
        return CheckResult(name, "warn", sev, f"{len(sw)} NVSwitch(es): " + "; ".join(problems),
                           ev, " ".join(remedies))
    return CheckResult(name, "pass", sev, f"{len(sw)} NVSwitch(es), all on vfio-pci"
                       + ("; host fabric manager not enabled" if fm is not None and fm.present
                          else ""), ev)


def check_cc_host(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "cc-host", "warn"
    ev = []
    for path in ("sys/module/kvm_intel/parameters/tdx", "sys/module/kvm_amd/parameters/sev_snp"):
        if path in f.files:
            ev.append(f"{path}: {f.files[path].strip()}")
    on = [x for x, v in (("TDX", f.tdx), ("SEV-SNP", f.sev_snp)) if v]
    if not on:
        if f.tdx is None and f.sev_snp is None:
            ev.append("kvm_intel/kvm_amd tdx/sev_snp parameters: not present")
        return CheckResult(name, "pass", sev, "no TDX / SEV-SNP enabled in KVM", ev)
    cc = [d for d in f.gpus if d.model and d.model.cc]
    non = [d for d in f.gpus if not (d.model and d.model.cc)]
    ev += [_dev_ev(d) for d in f.gpus]
    if non:
        return CheckResult(
            name, "warn", sev,
            f"{'/'.join(on)} enabled and {len(non)} GPU(s) are not CC-capable", ev,
            "The GPU Operator's cc-manager (default mode on) fails with \"Some GPUs are not "
            "cc-capable\". Install with ccManager.defaultMode=off or label the node "
            "nvidia.com/cc.mode=off.")
    return CheckResult(
        name, "warn", sev,
        f"{'/'.join(on)} enabled with CC-capable GPU(s): cc-manager will switch them to CC mode",
        ev,
        "In CC mode plain Kata GPU pods stop matching kata-qemu-nvidia-gpu (it needs "
        "nvidia.com/cc.ready.state=false). Unless you run confidential workloads, install with "
        "ccManager.defaultMode=off or label the node nvidia.com/cc.mode=off."
        if cc else "")


def check_consumer_gpu(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "consumer-gpu", "warn"
    if not f.gpus:
        return CheckResult(name, "skip", sev, "no NVIDIA GPU")
    consumer = [d for d in f.gpus if d.model and d.model.consumer]
    if consumer:
        return CheckResult(name, "warn", sev,
                           "GeForce GPU(s): " + ", ".join(sorted({d.model.short for d in consumer
                                                                  if d.model})),
                           [_dev_ev(d) for d in consumer],
                           "GeForce GPUs are not supported for passthrough with the GPU "
                           "Operator and Kata; expect failures. Use data-center GPUs.")
    unknown = [d for d in f.gpus if d.model is None]
    return CheckResult(name, "pass", sev, "no GeForce GPU"
                       + (f" ({len(unknown)} unknown model(s))" if unknown else ""),
                       [_dev_ev(d) for d in f.gpus])


def _settings(f: HostFacts, node: NodeInfo | None) -> KubeletSettings:
    """The kubelet's settings in the layout of the node's distribution (the cluster's word),
    else of the host's own files."""
    return read_settings(f, node.distribution if node else None)


def check_kubelet_gate(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "kubelet-podresources-gate", "fail"
    s = _settings(f, node)
    lay = s.layout
    path = s.shown
    ver = release_of(node.kubelet_version if node else None)  # None: cannot tell, not on
    ev = [f"node kubeletVersion: {node.kubelet_version}"] if node and node.kubelet_version \
        else ["node kubeletVersion: unknown (no cluster node info)"]
    ev += layout_evidence(s)
    if lay.no_fix:
        remedy = (f"The kubelet-gate fix does not set it on {lay.distribution} ({lay.no_fix}). "
                  "By hand: " + lay.how_to_set(f"featureGates: {{{GATE}: true}}",
                                               f"--feature-gates={GATE}=true")
                  + ("; k0s also takes it in spec.featureGates with components: [kubelet]"
                     if lay.distribution == "k0s" else "") + ".")
    elif lay.args:
        remedy = (f"Add `--feature-gates={GATE}=true` to /{lay.args} (or extend its "
                  "--feature-gates line; fix `kubelet-gate`) and restart kubelite "
                  f"(`{' '.join(lay.restart)}`).")
    else:
        remedy = (f"Set `featureGates: {{{GATE}: true}}` in {path} (under the existing "
                  "featureGates map; fix `kubelet-gate`) and `systemctl restart kubelet`.")
    if s.error:
        return CheckResult(name, "warn", sev, s.error, [*ev, s.error],
                           "Fix the kubelet config file.")
    gate = s.feature_gates().get(GATE)
    if s.found:
        ev += evidence_lines(f, s, "featureGates", "feature-gates", GATE)
        if not any(GATE in e or "featureGates" in e or "feature-gates" in e for e in ev):
            ev.append(f"{path}: no featureGates")
    else:
        ev.append(f"{path}: not found")
    if gate is False:
        return CheckResult(name, "fail", sev, f"{GATE} is explicitly false", ev, remedy)
    if gate is True:
        return CheckResult(name, "pass", sev, f"{GATE}: true in the kubelet config", ev)
    if ver is not None and ver >= GATE_DEFAULT_ON:
        return CheckResult(name, "pass", sev,
                           f"kubelet {node.kubelet_version}: {GATE} is on by default from 1.34",
                           ev)
    if lay.distribution == "k0s" and s.found:
        ev.append("k0s passes spec.featureGates to the kubelet as flags, which its config "
                  "file does not show")
    if not s.found:
        if ver is None:
            return CheckResult(name, "skip", sev,
                               f"no kubelet config at {path} and no node info", ev)
        return CheckResult(name, "warn", sev,
                           f"kubelet {node.kubelet_version} needs {GATE}, but {path} was not "
                           "found to check it", ev,
                           f"Find this kubelet's config file and set {GATE}: true there."
                           if lay.distribution == "k8s" else remedy)
    if ver is None:
        return CheckResult(name, "warn", sev,
                           f"{GATE} not set and the kubelet version is unknown (needed below "
                           "1.34)", ev, remedy)
    return CheckResult(name, "fail", sev,
                       f"kubelet {node.kubelet_version} < 1.34 and {GATE} is not set", ev,
                       remedy)


def check_kubelet_timeout(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "kubelet-runtime-timeout", "warn"
    s = _settings(f, node)
    path = s.shown
    if s.error:
        return CheckResult(name, "skip", sev, s.error, [s.error])
    if not s.found:
        return CheckResult(name, "skip", sev, f"no kubelet config at {path}",
                           [f"{path}: not found"])
    got = s.setting("runtimeRequestTimeout", "--runtime-request-timeout")
    raw = got[0] if got else None
    ev = layout_evidence(s) + (
        evidence_lines(f, s, "runtimeRequestTimeout", "--runtime-request-timeout") or
        [f"{path}: no runtimeRequestTimeout (kubelet default 2m0s)"])
    secs = parse_duration(str(raw)) if raw is not None else None
    eff = secs if secs else KUBELET_DEFAULT_RUNTIME_TIMEOUT_S
    how = s.layout.how_to_set("runtimeRequestTimeout: 20m", "--runtime-request-timeout=20m")
    remedy = (f"Raise it to 20m: {how}. The first Kata GPU pod pulls its image inside the VM "
              "and can exceed the default.")
    if raw is not None and secs is None:
        return CheckResult(name, "warn", sev, f"runtimeRequestTimeout {raw!r} not understood",
                           ev, remedy)
    if eff < RECOMMENDED_RUNTIME_TIMEOUT_S:
        shown = f"{'unset' if raw is None else raw} (kubelet default 2m0s)" if not secs \
            else str(raw)
        return CheckResult(name, "warn", sev,
                           f"runtimeRequestTimeout {shown} < 20m", ev, remedy)
    return CheckResult(name, "pass", sev, f"runtimeRequestTimeout {raw}", ev)


def check_container_runtime(f: HostFacts, node: NodeInfo | None) -> CheckResult:
    name, sev = "container-runtime", "fail"
    remedy = "Kata with the GPU Operator supports containerd only; move this node to containerd."
    if node and node.container_runtime:
        rt = node.container_runtime
        ev = [f"node containerRuntimeVersion: {rt}"]
        if rt.startswith("containerd://"):
            return CheckResult(name, "pass", sev, f"containerd ({rt})", ev)
        return CheckResult(name, "fail", sev, f"runtime is {rt}, not containerd", ev, remedy)
    ev = ["node containerRuntimeVersion: unknown (no cluster node info)"]
    ev.append("etc/containerd/config.toml: " + ("present" if f.containerd_config else "absent"))
    ev.append("run/containerd/containerd.sock: " + ("present" if f.containerd_socket
                                                    else "absent"))
    if f.crio_socket:
        ev.append("crio.sock: present")
    got = _settings(f, node).setting("containerRuntimeEndpoint", "--container-runtime-endpoint")
    endpoint = got[0] if got else None
    if got and endpoint:
        ev.append(f"{got[1]}: containerRuntimeEndpoint: {endpoint}")
    if (endpoint and "crio" in str(endpoint)) or (f.crio_socket and not
                                                   (f.containerd_config or f.containerd_socket)):
        return CheckResult(name, "fail", sev, "CRI-O found, not containerd", ev, remedy)
    if f.containerd_config or f.containerd_socket or (endpoint and "containerd" in str(endpoint)):
        return CheckResult(name, "pass", sev, "containerd found on the host", ev)
    return CheckResult(name, "skip", sev, "no node info and no container runtime found under "
                       "the host root", ev)


CHECKS: dict[str, Callable[[HostFacts, NodeInfo | None], CheckResult]] = {
    "cpu-virtualization": check_cpu_virtualization,
    "iommu-enabled": check_iommu_enabled,
    "iommu-group-isolation": check_iommu_group_isolation,
    "gpus-present": check_gpus_present,
    "host-nvidia-driver": check_host_nvidia_driver,
    "nouveau": check_nouveau,
    "vfio-available": check_vfio_available,
    "nvswitch": check_nvswitch,
    "cc-host": check_cc_host,
    "consumer-gpu": check_consumer_gpu,
    "kubelet-podresources-gate": check_kubelet_gate,
    "kubelet-runtime-timeout": check_kubelet_timeout,
    "container-runtime": check_container_runtime,
}
assert tuple(CHECKS) == CHECK_NAMES


def run_checks(facts: HostFacts, node: NodeInfo | None = None,
               ignore: frozenset[str] = frozenset()) -> list[CheckResult]:
    """All checks in CHECK_NAMES order. Ignored checks keep their result, marked
    `ignored=True`, and never count as blocking."""
    ign = expand_ignore(ignore)
    out = []
    for name, fn in CHECKS.items():
        r = fn(facts, node)
        out.append(replace(r, ignored=True) if name in ign else r)
    return out


def blocking(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.blocking]
