"""Fix `vfio-bind`: put every GPU (and NVSwitch) on vfio-pci, with every device of its
IOMMU group, now and across reboots. A Grace superchip's GPU goes to the kernel's vfio
variant `nvgrace_gpu_vfio_pci` instead when the kernel has it, as the GPU Operator's
vfio-manager chooses (k8s-driver-manager internal/nvpassthrough/nvpassthrough.go@v0.10.0,
FindBestVFIOVariant); a device already on either driver stays where it is.

Now: for each device not yet on vfio-pci, write `vfio-pci` to its driver_override, unbind
it from its current driver, ask the kernel to probe it again, `udevadm settle`, and verify
the `driver` link (domain.md section 5). Bridges in a group stay on pcieport. A group that
also holds a non-NVIDIA endpoint (a NIC, an NVMe) is refused: taking it from the host
could cut the host off.

Across reboots: with vfio-pci as a module, `options vfio-pci ids=...` plus `softdep nvidia
pre: vfio-pci` (and nouveau) in /etc/modprobe.d/gpu-kata-vfio.conf and vfio-pci in
/etc/modules-load.d, so vfio-pci claims the devices before a host driver can; an existing
`options vfio-pci ids=` line is extended instead (two lines would fight: the last one
wins). With vfio-pci built into the kernel, module options do not apply and `vfio-pci.ids=`
goes on the kernel command line (GRUB) instead. Grace GPUs are left out of `ids=` (vfio-pci
would claim them at boot): the variant driver binds only through driver_override, which the
GPU Operator's vfio-manager sets again at every start.

Undo restores the files and moves the devices that were moved back to their previous
driver (by clearing driver_override and re-probing). If vfio-pci was loaded with ids=
covering a device, the kernel may keep it on vfio-pci until the next reboot; undo warns.
"""

from __future__ import annotations

import shlex

from remote.fixes.base import AfterReboot, FileView, FixBlocked, HostChange, ScriptBuilder
from remote.fixes.grub import add_args, current_args, regenerate
from remote.hostfacts import NVGRACE, VFIO_DRIVERS, VFIO_PCI, HostFacts, PciDevice

NAME = "vfio-bind"
CONF = "etc/modprobe.d/gpu-kata-vfio.conf"
LOAD = "etc/modules-load.d/gpu-kata-vfio.conf"

BIND_LIB = r"""
gki_drv() {
  if [ -L "$1/driver" ]; then x=$(cd -P "$1/driver" 2>/dev/null && pwd); echo "${x##*/}"; fi
}
gki_settle() { if command -v udevadm >/dev/null 2>&1; then udevadm settle || :; fi; }
gki_bind() {
  d="${ROOT}sys/bus/pci/devices/$1"; w=${2:-vfio-pci}
  [ -d "$d" ] || gki_fail "PCI device $1 not found"
  cur=$(gki_drv "$d")
  if [ "$cur" = "$w" ]; then printf 'already on %s: %s\n' "$w" "$1"; return 0; fi
  if ! gki_live; then
    printf 'skipped on a host tree (%s): bind %s to %s\n' "$ROOT" "$1" "$w"; return 0
  fi
  printf '+ bind %s (now: %s) to %s\n' "$1" "${cur:-no driver}" "$w"
  printf '%s\n' "$w" > "$d/driver_override" || gki_fail "cannot set driver_override of $1"
  if [ -n "$cur" ]; then
    printf '%s\n' "$1" > "$d/driver/unbind" || gki_fail "cannot unbind $1 from $cur (in use?)"
  fi
  printf '%s\n' "$1" > "${ROOT}sys/bus/pci/drivers_probe" \
    || gki_fail "drivers_probe failed for $1"
  gki_settle
  cur=$(gki_drv "$d")
  [ "$cur" = "$w" ] || gki_fail "$1 is on '${cur:-no driver}' after binding, not $w"
}
gki_unbind() {
  d="${ROOT}sys/bus/pci/devices/$1"
  [ -d "$d" ] || gki_fail "PCI device $1 not found"
  if ! gki_live; then
    printf 'skipped on a host tree (%s): return %s to %s\n' "$ROOT" "$1" "${2:-no driver}"
    return 0
  fi
  cur=$(gki_drv "$d")
  if [ "$cur" = "$2" ]; then printf 'already on %s: %s\n' "${2:-no driver}" "$1"; return 0; fi
  printf '+ return %s (now: %s) to %s\n' "$1" "${cur:-no driver}" "${2:-no driver}"
  printf '\n' > "$d/driver_override" || gki_fail "cannot clear driver_override of $1"
  case $cur in vfio-pci|nvgrace_gpu_vfio_pci)
    printf '%s\n' "$1" > "$d/driver/unbind" || gki_fail "cannot unbind $1 from $cur" ;;
  esac
  printf '%s\n' "$1" > "${ROOT}sys/bus/pci/drivers_probe" || :
  gki_settle
  cur=$(gki_drv "$d")
  [ "$cur" = "$2" ] || printf 'warning: %s is on %s, was on %s; a reboot restores it\n' \
    "$1" "${cur:-no driver}" "${2:-no driver}" >&2
}
"""


def _shown_bind(root: str, d: PciDevice, to: str) -> str:
    """The exact sysfs writes gki_bind performs for one device, for the preview."""
    dev = f"{root}sys/bus/pci/devices/{d.bdf}"
    steps = [f"printf '{to}\\n' > {dev}/driver_override"]
    if d.driver:
        steps.append(f"printf '{d.bdf}\\n' > {dev}/driver/unbind   # from {d.driver}")
    steps += [f"printf '{d.bdf}\\n' > {root}sys/bus/pci/drivers_probe",
              "udevadm settle", f"# verify: {dev}/driver -> {to}   ({d.label})"]
    return "\n$ ".join(steps)


def bind_set(facts: HostFacts) -> list[PciDevice]:
    """GPUs, NVSwitches and every non-bridge device sharing their IOMMU groups, in group
    order. Raises FixBlocked when that set is unsafe or impossible."""
    anchors = facts.gpus + facts.nvswitches
    if not facts.iommu_groups:
        raise FixBlocked(NAME, "the IOMMU is off (no IOMMU groups): vfio-pci cannot take devices",
                         "Turn the IOMMU on first (fix iommu-cmdline, then reboot) and plan again.")
    out: dict[str, PciDevice] = {}
    for a in anchors:
        if a.iommu_group is None:
            raise FixBlocked(NAME, f"{a.label} has no IOMMU group",
                             "Check the IOMMU / ACS settings in the firmware.")
        members = facts.group_members(a.iommu_group)
        foreign = [m for m in members if not m.is_bridge and not m.is_nvidia]
        if foreign:
            raise FixBlocked(
                NAME, f"IOMMU group {a.iommu_group} of {a.bdf} also holds "
                + ", ".join(f"{m.label} (driver {m.driver or 'none'})" for m in foreign),
                "Binding the group would take those devices from the host. Enable ACS or move "
                "the GPU to a slot with its own group (see check iommu-group-isolation).")
        for m in members:
            if not m.is_bridge:
                out[m.bdf] = m
    return sorted(out.values(), key=lambda d: (int(d.iommu_group or 0)
                                               if (d.iommu_group or "0").isascii()
                                               and (d.iommu_group or "0").isdigit() else 0, d.bdf))


AFTER_REBOOT = "after the reboot, if the re-probe finds the IOMMU on"


def after_reboot(facts: HostFacts) -> AfterReboot:
    """What this fix will do once the IOMMU is on, from what is known before the reboot.

    The devices to bind are known now (the GPUs and NVSwitches); their IOMMU groups, and so
    the exact script, only exist after the reboot - which is why the run asks again then."""
    anchors = facts.gpus + facts.nvswitches
    ids = ",".join(sorted({d.ident for d in anchors if facts.vfio_driver_for(d) == VFIO_PCI}))
    persist = (f"vfio-pci.ids={ids} on the kernel command line (GRUB)" if facts.vfio_builtin
               else f"options vfio-pci ids={ids} in /{CONF} (and vfio-pci in /{LOAD})")
    lines = [f"# {NAME} on {facts.hostname}, {AFTER_REBOOT}:",
             "# bind to vfio-pci, with every other device of their IOMMU groups (refused if a "
             "group also holds a non-NVIDIA device):"]
    lines += [f"#   {d.label}  (now: {d.driver or 'no driver'})"
              + ("" if (to := facts.vfio_driver_for(d)) == VFIO_PCI else f"  -> {to}")
              for d in anchors]
    lines += [f"# and keep them there across reboots: {persist}",
              "# the exact script is shown, and consent asked for again, once the re-probe "
              "has the IOMMU groups"]
    return AfterReboot(f"{AFTER_REBOOT}: bind {', '.join(d.bdf for d in anchors)} to vfio-pci",
                       "\n".join(lines))


def _ids_lines(view: FileView) -> list[tuple[str, int, list[str]]]:
    """(file, line index, ids) of every `options vfio-pci ids=` line."""
    out = []
    paths = sorted(set(view.facts.modprobe_d) | {p for p in view.overrides
                                                  if p.startswith("etc/modprobe.d/")})
    for p in paths:
        for i, ln in enumerate((view.get(p) or "").splitlines()):
            w = ln.split("#", 1)[0].split()
            if len(w) >= 3 and w[0] == "options" and w[1] in ("vfio-pci", "vfio_pci"):
                for opt in w[2:]:
                    if opt.startswith("ids="):
                        out.append((p, i, [x.lower() for x in opt[4:].split(",") if x]))
    return out


def _loads_at_boot(view: FileView) -> bool:
    paths = set(view.facts.modules_load_d) | {p for p in view.overrides
                                               if p.startswith("etc/modules-load.d/")}
    for p in paths:
        for ln in (view.get(p) or "").splitlines():
            if ln.split("#", 1)[0].strip() in ("vfio-pci", "vfio_pci"):
                return True
    return False


def plan(facts: HostFacts, host_root: str = "/", view: FileView | None = None
         ) -> HostChange | None:
    view = view or FileView(facts)
    if not facts.gpus:
        return None
    unavailable = FixBlocked(NAME, "vfio-pci is not available on this kernel",
                             "Install the kernel's extra modules package (see check "
                             "vfio-available).")
    only_grace = facts.nvgrace_available and all(d.is_grace
                                                 for d in facts.gpus + facts.nvswitches)
    if not facts.vfio_available and not only_grace:
        raise unavailable
    devs = bind_set(facts)
    if not facts.vfio_available and any(facts.vfio_driver_for(d) == VFIO_PCI for d in devs):
        raise unavailable
    # Grace GPUs stay out of ids=: vfio-pci would claim them at boot before their variant.
    ids = sorted({d.ident for d in devs if facts.vfio_driver_for(d) == VFIO_PCI})
    b = ScriptBuilder(NAME, host_root)
    persisted = []
    if facts.vfio_builtin:
        arg = "vfio-pci.ids=" + ",".join(ids)
        have = [a for a in current_args(view) if a.startswith(("vfio-pci.ids=", "vfio_pci.ids="))]
        have_ids = {x.lower() for a in have for x in a.split("=", 1)[1].split(",")}
        if ids and not set(ids) <= have_ids:
            if have:
                raise FixBlocked(NAME, f"the GRUB defaults already carry {have[0]}",
                                 f"Change it to {arg} by hand and regenerate the boot config.")
            added = add_args(b, facts, view, [arg], NAME)
            if added:
                regenerate(b, facts, NAME, added)
                persisted.append(f"{arg} on the kernel command line")
    else:
        lines = _ids_lines(view)
        have_ids = {x for _, _, xs in lines for x in xs}
        if ids and not set(ids) <= have_ids:
            if lines:
                path, idx, old_ids = lines[-1]
                old = view.get(path) or ""
                text_lines = old.splitlines(keepends=True)
                ln = text_lines[idx]
                union = ",".join(sorted(set(old_ids) | set(ids)))
                text_lines[idx] = ln.replace("ids=" + ",".join(old_ids), "ids=" + union, 1)
                new = "".join(text_lines)
                if new == old:
                    raise FixBlocked(NAME, f"/{path}: cannot extend `{ln.strip()}`",
                                     f"Set ids={union} there by hand.")
                b.edit(path, old, new)
                view.set(path, new)
            else:
                new = ("# Written by gpu-kata-installer: these devices go to Kata VMs, so\n"
                       "# vfio-pci claims them at boot before any host driver can.\n"
                       f"options vfio-pci ids={','.join(ids)}\n"
                       "softdep nvidia pre: vfio-pci\n"
                       "softdep nouveau pre: vfio-pci\n")
                b.edit(CONF, view.get(CONF), new)
                view.set(CONF, new)
            persisted.append("options vfio-pci ids=" + ",".join(ids))
        if ids and not _loads_at_boot(view):
            b.edit(LOAD, view.get(LOAD), "vfio-pci\n")
            view.set(LOAD, "vfio-pci\n")
            persisted.append("vfio-pci in modules-load.d")
    moving = [d for d in devs if d.driver not in VFIO_DRIVERS]
    targets = {d.bdf: facts.vfio_driver_for(d) for d in moving}
    if moving:
        if VFIO_PCI in targets.values() and not (
                facts.vfio_builtin or (facts.modules and "vfio_pci" in facts.modules)):
            b.run(["modprobe", "vfio-pci"],
                  when='[ ! -d "${ROOT}sys/bus/pci/drivers/vfio-pci" ]')
        if NVGRACE in targets.values() and NVGRACE not in facts.pci_drivers:
            b.run(["modprobe", NVGRACE],
                  when=f'[ ! -d "${{ROOT}}sys/bus/pci/drivers/{NVGRACE}" ]')
        b.raw(BIND_LIB.strip("\n"))
        for d in moving:
            to = targets[d.bdf]
            b.raw(f"gki_bind {shlex.quote(d.bdf)}" + ("" if to == VFIO_PCI else f" {to}"),
                  f"gki_unbind {shlex.quote(d.bdf)} {shlex.quote(d.driver or '')}",
                  shown=_shown_bind(b.root, d, to),
                  shown_undo=f"return {d.bdf} to {d.driver or 'no driver'}")
        b.undo.insert(0, BIND_LIB.strip("\n"))
    if not moving and not persisted:
        return None
    what = []
    if moving:
        drivers = " / ".join(sorted(set(targets.values()), key=lambda x: x != VFIO_PCI))
        what.append(f"bind {len(moving)} device(s) to {drivers} now")
    if persisted:
        what.append("persist across reboots (" + "; ".join(persisted) + ")")
    return b.change(facts.hostname, ", ".join(what), needs_consent=bool(moving))
