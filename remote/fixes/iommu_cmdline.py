"""Fix `iommu-cmdline`: turn the IOMMU on through the kernel command line.

Adds `intel_iommu=on` (Intel) or `amd_iommu=on` (AMD) to GRUB_CMDLINE_LINUX and
regenerates the boot config (update-grub on Debian/Ubuntu; grubby or grub2-mkconfig on the
RHEL family, chosen from os-release). Takes effect after a reboot (the `reboot` fix).
Nothing to do when IOMMU groups already exist or the argument is already configured.
Refused on arm64: its IOMMU (the SMMU) is described by the firmware, and no kernel argument
turns it on (intel_iommu= / amd_iommu= mean nothing there).
"""

from __future__ import annotations

from remote.fixes.base import FileView, FixBlocked, HostChange, ScriptBuilder
from remote.fixes.grub import add_args, current_args, regenerate
from remote.hostfacts import HostFacts

NAME = "iommu-cmdline"


def iommu_arg(facts: HostFacts) -> str:
    return "amd_iommu=on" if facts.cpu_vendor == "AuthenticAMD" else "intel_iommu=on"


def pending_reboot(facts: HostFacts) -> bool:
    """The boot config carries the argument but the running kernel does not."""
    if facts.arch == "aarch64":
        return False
    arg = iommu_arg(facts)
    return arg in current_args(FileView(facts)) and arg not in facts.cmdline_args


def plan(facts: HostFacts, host_root: str = "/", view: FileView | None = None
         ) -> HostChange | None:
    view = view or FileView(facts)
    if facts.iommu_groups or not facts.gpus:
        return None
    if facts.arch == "aarch64":
        raise FixBlocked(NAME, "arm64 has no kernel argument that turns the IOMMU (SMMU) on",
                         "Enable the SMMU in the firmware setup and check `dmesg | grep -i "
                         "smmu`; then plan again.")
    arg = iommu_arg(facts)
    if arg in facts.cmdline_args:
        raise FixBlocked(NAME, f"{arg} is already on the running command line, yet there are "
                         "no IOMMU groups",
                         "Enable VT-d / AMD-Vi in the firmware setup; no kernel argument fixes "
                         "a disabled IOMMU.")
    b = ScriptBuilder(NAME, host_root)
    added = add_args(b, facts, view, [arg], NAME)
    if not added:
        return None
    regenerate(b, facts, NAME, added)
    return b.change(facts.hostname, f"add {arg} to the kernel command line",
                    needs_reboot=True)
