"""Reverting what the host fixes changed, from the backups they left on the host.

Why the host is the record: only the fixes write `<file>.gpu-kata-installer.<fix>.bak` and
`.absent` (base.py gki_write), each before that fix's first edit of the file and never over
an existing one, so the backups the probe finds are exactly the files the installer changed,
and the backup of the first fix that edited a file holds the file as it was before the
installer. A file without a backup is never touched. The revert script uses the fixes' own
shell library: a guard per file (the content the plan was made from, or the content it
restores to, so a re-run after an interruption is safe), then `gki_restore` per fix, newest
edit first, which puts each backup back byte for byte and removes it; then the commands that
make the restored files take effect (boot config, initramfs, kubelet restart).

GPUs left on vfio-pci (the GPU Operator v26.3.0 - v26.3.3 vfio-manager, whose preStop hook
cannot run) are released here as its fixed hook does (`vfio-manage unbind --all`: clear
driver_override, unbind; the host driver is not reloaded) - unless the host reboots anyway.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass

from remote.fixes import iommu_cmdline, kubelet_gate, nouveau_blacklist, nvidia_driver, vfio_bind
from remote.fixes.base import FileView, FixBlocked, HostChange, ScriptBuilder, sha256
from remote.fixes.grub import GRUB, current_args, regenerate
from remote.hostfacts import VFIO_DRIVERS, Backup, HostFacts, PciDevice
from remote.kubelet import read_settings

NAME = "revert"
# The folders the fixes edit files in (grub and grub.d, modprobe.d, modules-load.d and
# /etc/modules, every kubelet layout's config and flags files, boot loader entries); the
# probe looks for backups in exactly these (remote/probe.sh, kept equal by a test).
BACKUP_DIRS: tuple[str, ...] = (
    "etc", "etc/default", "etc/default/grub.d", "etc/modprobe.d", "etc/modules-load.d",
    "var/lib/kubelet", "run/k0s/kubelet", "var/lib/k0s", "var/snap/microk8s/current/args",
    "var/lib/rancher/k3s/agent/etc/kubelet.conf.d",
    "var/lib/rancher/rke2/agent/etc/kubelet.conf.d", "boot/loader/entries")
# The order the fixes run in (remote.fixes.plan_fixes): reverts go the other way.
ORDER: tuple[str, ...] = (iommu_cmdline.NAME, nouveau_blacklist.NAME, nvidia_driver.NAME,
                          vfio_bind.NAME, kubelet_gate.NAME)
# What reverting each fix changes that only a reboot brings back to the running system: the
# kernel command line, a module blacklist (the module loads again at boot), vfio-pci's claim.
NEEDS_REBOOT: dict[str, str] = {
    iommu_cmdline.NAME: "the kernel command line",
    nouveau_blacklist.NAME: "the nouveau blacklist",
    nvidia_driver.NAME: "the host NVIDIA driver blacklist",
    vfio_bind.NAME: "the vfio-pci binding",
}
# The initramfs carries its own copy of modprobe.d (nouveau_blacklist, nvidia_driver).
INITRAMFS_FIXES = frozenset({nouveau_blacklist.NAME, nvidia_driver.NAME})

RELEASE_LIB = r"""
gki_release() {
  d="${ROOT}sys/bus/pci/devices/$1"
  [ -d "$d" ] || gki_fail "PCI device $1 not found"
  if ! gki_live; then
    printf 'skipped on a host tree (%s): unbind %s from vfio\n' "$ROOT" "$1"; return 0
  fi
  cur=$(gki_drv "$d")
  case $cur in vfio-pci|nvgrace_gpu_vfio_pci) ;;
    *) printf 'not on vfio: %s (%s)\n' "$1" "${cur:-no driver}"; return 0 ;;
  esac
  printf '+ unbind %s from %s\n' "$1" "$cur"
  if [ -e "$d/driver_override" ]; then
    printf '\n' > "$d/driver_override" || gki_fail "cannot clear driver_override of $1"
  fi
  printf '%s\n' "$1" > "$d/driver/unbind" || gki_fail "cannot unbind $1 from $cur (in use?)"
  gki_settle
  cur=$(gki_drv "$d")
  case $cur in vfio-pci|nvgrace_gpu_vfio_pci) gki_fail "$1 is still on $cur" ;; esac
}
"""


def _rank(fix: str) -> int:
    return ORDER.index(fix) if fix in ORDER else len(ORDER)


@dataclass(frozen=True)
class FileRevert:
    """One file back to what it was before the installer: `fixes` in the order they are
    undone (the newest edit first); `restored` None removes the file (a fix created it)."""

    path: str
    fixes: tuple[str, ...]
    current: str | None
    restored: str | None

    def diff(self) -> str:
        a = (self.current or "").splitlines(keepends=True)
        b = (self.restored or "").splitlines(keepends=True)
        lines = difflib.unified_diff(
            a, b, fromfile="/dev/null" if self.current is None else f"a/{self.path}",
            tofile="/dev/null" if self.restored is None else f"b/{self.path}")
        return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n"
                       for ln in lines)


def file_reverts(facts: HostFacts) -> list[FileRevert]:
    """Every file the fixes changed on this host, as the backups say, in path order."""
    by_path: dict[str, list[Backup]] = {}
    for b in facts.backups:
        by_path.setdefault(b.path, []).append(b)
    out = []
    for path, found in sorted(by_path.items()):
        found.sort(key=lambda b: (_rank(b.fix), b.fix))
        out.append(FileRevert(path, tuple(b.fix for b in reversed(found)),
                              facts.files.get(path), found[0].content))
    return out


def left_in_place(facts: HostFacts) -> list[str]:
    """The host changes found, one line each: `/etc/default/grub (iommu-cmdline)`."""
    return [f"/{r.path} ({', '.join(reversed(r.fixes))})" for r in file_reverts(facts)]


def vfio_held(facts: HostFacts) -> list[PciDevice]:
    """The GPUs and NVSwitches on a vfio driver now."""
    return [d for d in facts.gpus + facts.nvswitches if d.driver in VFIO_DRIVERS]


def reboot_reasons(facts: HostFacts) -> list[str]:
    """What of the revert takes effect only at the next boot (empty: no reboot needed)."""
    fixes = {f for r in file_reverts(facts) for f in r.fixes}
    return [why for fix, why in NEEDS_REBOOT.items() if fix in fixes]


def _regenerate_boot(b: ScriptBuilder, facts: HostFacts, reverts: list[FileRevert]) -> str:
    """Regenerate the boot config from the restored GRUB defaults, as the fixes' own undo
    does (grub.regenerate's undo commands). Returns a note when that cannot be planned."""
    grub = [r for r in reverts if r.path == GRUB or r.path.startswith("etc/default/grub.d/")]
    if not grub:
        return ""
    after = FileView(facts, {r.path: r.restored for r in grub})
    removed = [a for a in current_args(FileView(facts)) if a not in current_args(after)]
    scratch = ScriptBuilder(NAME, b.root)
    try:
        regenerate(scratch, facts, NAME, removed)
    except FixBlocked as e:
        return f"# {e.reason}: regenerate the boot configuration by hand"
    if not removed and any(c.startswith("grubby") for c in scratch.undo_commands):
        return ""  # grubby edits arguments only: none to take away
    for line, shown in zip(scratch.undo, scratch.undo_commands, strict=True):
        b.raw(line, shown=shown)
    return ""


def _initramfs(b: ScriptBuilder, facts: HostFacts) -> None:
    tool = ("dracut" if facts.os_family == "rhel" or (
        facts.has_tool("dracut") and not facts.has_tool("update-initramfs"))
        else "update-initramfs")
    b.run(["dracut", "-f"] if tool == "dracut" else ["update-initramfs", "-u"],
          when=f"command -v {tool} >/dev/null 2>&1")


def plan_revert(facts: HostFacts, host_root: str = "/", *, release_vfio: bool = False,
                distribution: str | None = None) -> HostChange | None:
    """The change that puts every backed-up file back and makes it take effect, plus (with
    `release_vfio`, and no reboot to do it) the unbinding of GPUs held on vfio. None when
    there is nothing to do. `needs_reboot` says the reverted fixes need one."""
    reverts = file_reverts(facts)
    reboot = reboot_reasons(facts)
    held = vfio_held(facts) if release_vfio else []
    if not reverts and not held:
        return None
    b = ScriptBuilder(NAME, host_root)
    for r in reverts:  # every guard first: a file changed since the probe stops it all
        ok = " ".join(sorted({sha256(r.current), sha256(r.restored)}))
        b.raw(f's=$(gki_sum {b.path(r.path)}); case " {ok} " in *" $s "*) ;; '
              f'*) gki_fail "/{r.path} changed since it was read (sha256 $s); probe again" '
              ";; esac")
    for r in reverts:
        b.files.append("/" + r.path)
        b.diffs.append(r.diff())
        for fix in r.fixes:
            b.raw(f"gki_restore {b.path(r.path)} {shlex.quote(fix)}",
                  shown=f"gki_restore /{r.path} {fix}   (the {fix} backup back, then removed)")
    notes = [_regenerate_boot(b, facts, reverts)]
    fixes = {f for r in reverts for f in r.fixes}
    if fixes & INITRAMFS_FIXES:
        _initramfs(b, facts)
    gate = next((r for r in reverts if kubelet_gate.NAME in r.fixes), None)
    if gate is not None:
        lay = read_settings(facts, distribution).layout
        b.run(list(lay.restart if gate.path == lay.args else
                   ("systemctl", "restart", "kubelet")))
    what = []
    if reverts:
        what.append(f"restore {len(reverts)} file(s) from their backups")
    if held and reboot:
        notes.append("# GPUs on vfio now (" + ", ".join(d.bdf for d in held)
                     + "): the reboot releases them")
    elif held:
        b.raw(vfio_bind.BIND_LIB.strip("\n") + "\n" + RELEASE_LIB.strip("\n"))
        for d in held:
            b.raw(f"gki_release {shlex.quote(d.bdf)}",
                  shown=f"unbind {d.label} from {d.driver} (clear driver_override, "
                        "write the address to driver/unbind)")
        what.append(f"unbind {len(held)} device(s) from vfio")
    b.undo.append('printf "a revert is undone by installing again\\n"')
    change = b.change(facts.hostname, ", ".join(what), needs_reboot=bool(reboot))
    extra = [n for n in notes if n]
    if reboot:
        extra.append("# the reboot after it is for " + ", ".join(reboot))
    if extra:
        change = HostChange(change.name, change.host, change.description,
                            change.preview + "\n".join(extra) + "\n", change.apply_script,
                            change.undo_script, change.needs_reboot, change.needs_consent,
                            change.files)
    return change
