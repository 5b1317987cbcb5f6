"""Fix `nouveau-blacklist`: keep the nouveau driver off the GPUs.

Writes /etc/modprobe.d/gpu-kata-blacklist-nouveau.conf (`blacklist nouveau`,
`options nouveau modeset=0`) and rebuilds the initramfs, because nouveau is often loaded
from the initramfs, which carries its own copy of modprobe.d (update-initramfs -u on
Debian/Ubuntu, dracut -f on the RHEL family, when present). A reboot is needed only when
nouveau is loaded now. Nothing to do without NVIDIA GPUs or when already blacklisted.
"""

from __future__ import annotations

from remote.fixes.base import FileView, HostChange, ScriptBuilder
from remote.hostfacts import HostFacts

NAME = "nouveau-blacklist"
FILE = "etc/modprobe.d/gpu-kata-blacklist-nouveau.conf"
CONTENT = ("# Written by gpu-kata-installer: GPUs go to Kata VMs through vfio-pci,\n"
           "# so the nouveau driver must never claim them.\n"
           "blacklist nouveau\n"
           "options nouveau modeset=0\n")


def blacklisted(view: FileView) -> bool:
    facts = view.facts
    paths = set(facts.modprobe_d) | {p for p in view.overrides if p.startswith("etc/modprobe.d/")}
    for p in paths:
        for ln in (view.get(p) or "").splitlines():
            if ln.split("#", 1)[0].split()[:2] == ["blacklist", "nouveau"]:
                return True
    return any(a.startswith(("modprobe.blacklist=", "module_blacklist="))
               and "nouveau" in a.split("=", 1)[1].split(",") for a in facts.cmdline_args)


def plan(facts: HostFacts, host_root: str = "/", view: FileView | None = None
         ) -> HostChange | None:
    view = view or FileView(facts)
    if not facts.gpus or blacklisted(view):
        return None
    b = ScriptBuilder(NAME, host_root)
    b.edit(FILE, view.get(FILE), CONTENT)
    view.set(FILE, CONTENT)
    if facts.os_family == "rhel" or (facts.has_tool("dracut")
                                     and not facts.has_tool("update-initramfs")):
        b.run(["dracut", "-f"], undo=["dracut", "-f"],
              when="command -v dracut >/dev/null 2>&1")
    else:
        b.run(["update-initramfs", "-u"], undo=["update-initramfs", "-u"],
              when="command -v update-initramfs >/dev/null 2>&1")
    loaded = facts.modules is not None and "nouveau" in facts.modules
    return b.change(facts.hostname, "blacklist nouveau (modprobe.d + initramfs)",
                    needs_reboot=loaded)
