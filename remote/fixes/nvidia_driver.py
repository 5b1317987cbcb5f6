"""Fix `nvidia-driver-off`: keep the host NVIDIA driver off a Kata GPU host.

Kata hands GPUs to VMs through vfio-pci; a loaded host driver makes the GPU Operator mark
the node `gpu.deploy.driver=pre-installed` and its sandbox validator crash-loop. Writes
/etc/modprobe.d/gpu-kata-blacklist-nvidia.conf (blacklist plus `install ... /bin/false`,
since driver packages load the modules explicitly, not only by alias), rebuilds the
initramfs, and unloads the modules now when the host root is live and no GPU is bound to
them (otherwise the reboot removes them). Nothing to do when no NVIDIA module is loaded: a
host without the driver needs no blacklist.
"""

from __future__ import annotations

from remote.fixes.base import FileView, HostChange, ScriptBuilder
from remote.hostfacts import HostFacts

NAME = "nvidia-driver-off"
FILE = "etc/modprobe.d/gpu-kata-blacklist-nvidia.conf"
MODULES = ("nvidia_drm", "nvidia_modeset", "nvidia_uvm", "nvidia_peermem", "nvidia")
CONTENT = ("# Written by gpu-kata-installer: GPUs go to Kata VMs through vfio-pci,\n"
           "# so the host NVIDIA driver must not load.\n"
           + "".join(f"blacklist {m}\ninstall {m} /bin/false\n" for m in MODULES))


def _bound(facts: HostFacts) -> list[str]:
    return [g.bdf for g in facts.gpus if g.driver == "nvidia"]


def pending_reboot(facts: HostFacts, view: FileView) -> bool:
    """Blacklisted already, but the loaded driver holds GPUs: only a reboot removes it."""
    return bool(facts.nvidia_modules_loaded and _bound(facts) and view.get(FILE) == CONTENT)


def plan(facts: HostFacts, host_root: str = "/", view: FileView | None = None
         ) -> HostChange | None:
    view = view or FileView(facts)
    loaded = facts.nvidia_modules_loaded
    if not facts.gpus or not loaded or pending_reboot(facts, view):
        return None
    b = ScriptBuilder(NAME, host_root)
    if view.get(FILE) != CONTENT:
        b.edit(FILE, view.get(FILE), CONTENT)
        view.set(FILE, CONTENT)
        tool = ("dracut" if facts.os_family == "rhel" or (
            facts.has_tool("dracut") and not facts.has_tool("update-initramfs"))
            else "update-initramfs")
        argv = ["dracut", "-f"] if tool == "dracut" else ["update-initramfs", "-u"]
        b.run(argv, undo=argv, when=f"command -v {tool} >/dev/null 2>&1")
    if bound := _bound(facts):
        # A module holding devices cannot be removed; the reboot starts without it.
        return b.change(facts.hostname, "blacklist the host NVIDIA driver (loaded: "
                        f"{', '.join(loaded)}; it holds {', '.join(bound)}, so it goes at "
                        "the next reboot)", needs_reboot=True)
    order = [m for m in MODULES if m in loaded]
    b.run(["modprobe", "-r", *order], undo=["modprobe", "-a", *reversed(order)],
          when="gki_live")
    return b.change(facts.hostname, "unload and blacklist the host NVIDIA driver "
                    f"({', '.join(loaded)})")
