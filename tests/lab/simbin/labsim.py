#!/usr/bin/python3
"""Simulated host commands for the SSH lab (one program, dispatched on the name it is
called by): update-grub, grub-mkconfig, grub2-mkconfig, grubby, modprobe, rmmod, lsmod,
systemctl, reboot, shutdown, udevadm, update-initramfs, dracut.

They run INSIDE a simulated host's chroot (see tests/lab/hosts.py), as root via sudo, and
act only on files under `/` of that chroot, i.e. the host's tree. They refuse to run where
the lab marker `/.lab/state.json` is missing, so they can never act on a real machine.

The "kernel" they emulate is deliberately small: module load/unload as lines in
/proc/modules plus driver folders in /sys/bus/pci/drivers; driver binding as the
`driver` symlinks of the tree; sysfs writes (`driver_override`, `<driver>/unbind`,
`<driver>/bind`, `<driver>/new_id`, `drivers_probe`) take effect when `udevadm settle`
(or `udevadm trigger`, `modprobe`, `reboot`) runs - a real host's kernel applies them at
write time, and a real `udevadm settle` then waits for the resulting events. HOSTS.md
documents this contract and its limits.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid

ROOT = "/"
LAB = "/.lab"
STATE = "/.lab/state.json"
PCI = "/sys/bus/pci"

# Which driver folder a module registers, for the modules the lab knows.
MODULE_DRIVER = {"vfio_pci": "vfio-pci", "nvidia": "nvidia", "nouveau": "nouveau",
                 "mlx5_core": "mlx5_core", "i40e": "i40e", "ast": "ast",
                 "snd_hda_intel": "snd_hda_intel", "nvgrace_gpu_vfio_pci": "nvgrace_gpu_vfio_pci"}
MODULE_DEPS = {"vfio_pci": ["vfio_pci_core", "vfio_iommu_type1", "vfio"],
               "vfio_pci_core": ["vfio"], "vfio_iommu_type1": ["vfio"],
               "nvidia_uvm": ["nvidia"], "nvidia_modeset": ["nvidia"],
               "nvidia_drm": ["nvidia_modeset", "nvidia"]}
KNOWN_MODULES = set(MODULE_DRIVER) | set(MODULE_DEPS) | {"vfio", "kvm", "kvm_intel",
                                                         "kvm_amd", "nvidia_peermem"}


def die(msg: str, code: int = 1) -> None:
    print(msg, file=sys.stderr)
    sys.exit(code)


def event(line: str) -> None:
    with open(f"{LAB}/events", "a") as f:
        f.write(line + "\n")


def read(path: str, default: str | None = None) -> str | None:
    try:
        with open(path, errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return default


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.labsim.{os.getpid()}"
    with open(tmp, "w", errors="surrogateescape") as f:
        f.write(text)
    os.replace(tmp, path)


def load_state() -> dict:
    with open(STATE) as f:
        return json.load(f)


def save_state(st: dict) -> None:
    write(STATE, json.dumps(st, indent=1, sort_keys=True))


# ----------------------------------------------------------------------------- modules

def norm(mod: str) -> str:
    return mod.strip().replace("-", "_")


def loaded_modules() -> list[str] | None:
    text = read("/proc/modules")
    if text is None:
        return None
    return [ln.split()[0] for ln in text.splitlines() if ln.strip()]


def module_line(name: str) -> str:
    return f"{name} 16384 0 - Live 0x0000000000000000"


def modprobe_conf() -> dict:
    """Parse /etc/modprobe.d/*.conf (+ /lib/modprobe.d is the real system's, ignored):
    blacklists, options, softdeps."""
    conf: dict = {"blacklist": set(), "options": {}, "softdep_pre": {}}
    for path in sorted(glob.glob("/etc/modprobe.d/*.conf")):
        for raw in (read(path) or "").splitlines():
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            if words[0] == "blacklist" and len(words) > 1:
                conf["blacklist"].add(norm(words[1]))
            elif words[0] == "options" and len(words) > 2:
                conf["options"].setdefault(norm(words[1]), []).extend(words[2:])
            elif words[0] == "softdep" and len(words) > 2:
                mod, rest = norm(words[1]), words[2:]
                pre, mode = [], None
                for w in rest:
                    if w in ("pre:", "post:"):
                        mode = w
                    elif mode == "pre:":
                        pre.append(norm(w))
                conf["softdep_pre"].setdefault(mod, []).extend(pre)
    return conf


def vfio_ids(conf: dict, cmdline: str) -> set[str]:
    ids: set[str] = set()
    for opt in conf["options"].get("vfio_pci", []):
        if opt.startswith("ids="):
            ids |= {i.lower() for i in opt[4:].split(",") if i}
    for tok in cmdline.split():
        if tok.startswith(("vfio-pci.ids=", "vfio_pci.ids=")):
            ids |= {i.lower() for i in tok.split("=", 1)[1].split(",") if i}
    return ids


def insert_modules(names: list[str], st: dict) -> None:
    mods = loaded_modules()
    if mods is None:
        for n in names:
            if n in MODULE_DRIVER and MODULE_DRIVER[n] in st["builtin_drivers"]:
                continue
            kernel = (read("/proc/sys/kernel/osrelease") or "").strip()
            die(f"modprobe: FATAL: Module {n} not found in directory /lib/modules/{kernel}")
        return
    lines = [ln for ln in (read("/proc/modules") or "").splitlines() if ln.strip()]
    order: list[str] = []

    def want(n: str) -> None:
        for dep in MODULE_DEPS.get(n, []):
            want(dep)
        if n not in order:
            order.append(n)

    for n in names:
        want(n)
    builtin = {m for m, d in MODULE_DRIVER.items() if d in st["builtin_drivers"]}
    for n in order:
        if n in builtin or (n in MODULE_DEPS.get("vfio_pci", []) and "vfio_pci" in builtin):
            continue
        if n not in mods:
            lines.insert(0, module_line(n))
            mods.append(n)
        drv = MODULE_DRIVER.get(n)
        if drv:
            os.makedirs(f"{PCI}/drivers/{drv}", exist_ok=True)
        if n == "vfio_pci":
            os.makedirs("/sys/module/vfio_pci/parameters", exist_ok=True)
            ids = ",".join(sorted(vfio_ids(modprobe_conf(), "")))
            write("/sys/module/vfio_pci/parameters/ids", ids + "\n")
            write("/dev/vfio/vfio", "")
    write("/proc/modules", "\n".join(lines) + "\n")


def cmd_modprobe(args: list[str]) -> None:
    remove = False
    names: list[str] = []
    params: list[str] = []
    it = iter(args)
    for a in it:
        if a in ("-r", "--remove"):
            remove = True
        elif a.startswith("-"):
            continue
        elif "=" in a and names:
            params.append(a)
        else:
            names.append(norm(a))
    if not names:
        die("modprobe: ERROR: missing module name")
    if len(names) > 1 and "-a" not in args and "--all" not in args and not remove:
        params = names[1:]
        names = names[:1]
    st = load_state()
    for n in names:
        if n not in KNOWN_MODULES:
            kernel = (read("/proc/sys/kernel/osrelease") or "").strip()
            die(f"modprobe: FATAL: Module {n} not found in directory /lib/modules/{kernel}")
    if remove:
        cmd_rmmod(names)
        return
    insert_modules(names, st)
    event("modprobe " + " ".join(names))
    probe_unbound(st)


def cmd_rmmod(names: list[str]) -> None:
    mods = loaded_modules()
    if mods is None:
        die("rmmod: ERROR: Module is builtin")
    lines = [ln for ln in (read("/proc/modules") or "").splitlines() if ln.strip()]
    for n in names:
        n = norm(n)
        if n not in mods:
            continue
        drv = MODULE_DRIVER.get(n)
        if drv and glob.glob(f"{PCI}/drivers/{drv}/0000:*"):
            die(f"modprobe: FATAL: Module {n} is in use.")
        users = [ln.split()[0] for ln in lines if n in MODULE_DEPS.get(ln.split()[0], [])]
        if users:
            die(f"modprobe: FATAL: Module {n} is in use by: {' '.join(users)}")
        lines = [ln for ln in lines if ln.split()[0] != n]
        if drv:
            with contextlib.suppress(OSError):
                for f in os.listdir(f"{PCI}/drivers/{drv}"):
                    os.unlink(f"{PCI}/drivers/{drv}/{f}")
                os.rmdir(f"{PCI}/drivers/{drv}")
        event(f"rmmod {n}")
    write("/proc/modules", "\n".join(lines) + "\n")


def cmd_lsmod(_args: list[str]) -> None:
    print("Module                  Size  Used by")
    for ln in (read("/proc/modules") or "").splitlines():
        f = ln.split()
        if len(f) >= 4:
            print(f"{f[0]:<24}{f[1]:>8}  {f[2]} {'' if f[3] == '-' else f[3].rstrip(',')}")


# ----------------------------------------------------------------------------- devices

def devices() -> list[str]:
    return sorted(os.listdir(f"{PCI}/devices")) if os.path.isdir(f"{PCI}/devices") else []


def attr(bdf: str, name: str) -> str:
    return (read(f"{PCI}/devices/{bdf}/{name}") or "").strip()


def bound(bdf: str) -> str | None:
    link = f"{PCI}/devices/{bdf}/driver"
    if os.path.islink(link):
        return os.path.basename(os.readlink(link))
    return None


def driver_available(drv: str) -> bool:
    return os.path.isdir(f"{PCI}/drivers/{drv}")


def group_of(bdf: str) -> str | None:
    link = f"{PCI}/devices/{bdf}/iommu_group"
    return os.path.basename(os.readlink(link)) if os.path.islink(link) else None


def bind(bdf: str, drv: str) -> bool:
    if bound(bdf) or not driver_available(drv):
        return False
    if drv == "vfio-pci" and group_of(bdf) is None:
        return False  # vfio-pci cannot take a device without an IOMMU group
    os.symlink(f"../../drivers/{drv}", f"{PCI}/devices/{bdf}/driver")
    with contextlib.suppress(FileExistsError):
        os.symlink(f"../../devices/{bdf}", f"{PCI}/drivers/{drv}/{bdf}")
    if drv == "vfio-pci":
        write(f"/dev/vfio/{group_of(bdf)}", "")
    return True


def unbind(bdf: str) -> None:
    drv = bound(bdf)
    if not drv:
        return
    os.unlink(f"{PCI}/devices/{bdf}/driver")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{PCI}/drivers/{drv}/{bdf}")
    if drv == "vfio-pci":
        g = group_of(bdf)
        if g and not any(bound(o) == "vfio-pci" and group_of(o) == g for o in devices()):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"/dev/vfio/{g}")


def ident(bdf: str) -> str:
    return f"{attr(bdf, 'vendor').removeprefix('0x')}:{attr(bdf, 'device').removeprefix('0x')}"


def override(bdf: str) -> str | None:
    v = attr(bdf, "driver_override")
    return None if v in ("", "(null)") else v


def preferred_driver(bdf: str, st: dict, conf: dict, cmdline: str) -> str | None:
    """What the kernel would bind an unbound device to: an override wins; then vfio-pci
    when its ids (module option, cmdline, new_id) match; then the device's native driver."""
    ov = override(bdf)
    if ov:
        return ov
    ids = vfio_ids(conf, cmdline) | set(st.get("dynamic_ids", {}).get("vfio-pci", []))
    if ident(bdf) in ids and driver_available("vfio-pci"):
        return "vfio-pci"
    nat = st["native_drivers"].get(bdf)
    if nat and driver_available(nat):
        return nat
    return None


def probe(bdf: str, st: dict, conf: dict, cmdline: str) -> None:
    if bound(bdf):
        return
    drv = preferred_driver(bdf, st, conf, cmdline)
    if drv:
        bind(bdf, drv)


def probe_unbound(st: dict) -> None:
    conf = modprobe_conf()
    cmdline = read("/proc/cmdline") or ""
    for bdf in devices():
        probe(bdf, st, conf, cmdline)


def _take_lines(path: str) -> list[str]:
    """Read and consume an action file written by the host's scripts."""
    text = read(path)
    if text is None:
        return []
    os.unlink(path)
    return [w for w in text.split() if w]


def settle() -> None:
    """Apply pending sysfs writes in kernel order: override normalisation, unbinds,
    new_id, binds, then drivers_probe."""
    st = load_state()
    conf = modprobe_conf()
    cmdline = read("/proc/cmdline") or ""
    for bdf in devices():
        p = f"{PCI}/devices/{bdf}/driver_override"
        if os.path.exists(p) and (read(p) or "").strip() == "":
            write(p, "(null)\n")
    drv_dirs = sorted(glob.glob(f"{PCI}/drivers/*"))
    for d in drv_dirs:
        for bdf in _take_lines(f"{d}/unbind"):
            if bound(bdf) == os.path.basename(d):
                unbind(bdf)
    for d in drv_dirs:
        text = read(f"{d}/new_id")
        if text is not None:
            os.unlink(f"{d}/new_id")
            f = text.split()
            if len(f) >= 2:
                st.setdefault("dynamic_ids", {}).setdefault(os.path.basename(d), [])
                st["dynamic_ids"][os.path.basename(d)].append(f"{f[0]}:{f[1]}".lower())
                save_state(st)
                for bdf in devices():
                    if not bound(bdf) and ident(bdf) == f"{f[0]}:{f[1]}".lower():
                        bind(bdf, os.path.basename(d))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{d}/remove_id")
        for bdf in _take_lines(f"{d}/bind"):
            bind(bdf, os.path.basename(d))
    for bdf in _take_lines(f"{PCI}/drivers_probe"):
        if os.path.isdir(f"{PCI}/devices/{bdf}"):
            probe(bdf, st, conf, cmdline)


def cmd_udevadm(args: list[str]) -> None:
    if args and args[0] in ("settle", "trigger"):
        settle()
        return
    if args and args[0] == "info":
        return
    die(f"udevadm: lab simulation supports settle/trigger, not {' '.join(args)}")


# ----------------------------------------------------------------------------- boot config

def grub_values() -> tuple[str, str]:
    """GRUB_CMDLINE_LINUX and _DEFAULT exactly as grub-mkconfig sees them: by sourcing
    /etc/default/grub and then /etc/default/grub.d/*.cfg."""
    script = ('. /etc/default/grub; for f in /etc/default/grub.d/*.cfg; do '
              '[ -e "$f" ] && . "$f"; done; '
              'printf "%s\\n%s\\n" "$GRUB_CMDLINE_LINUX" "$GRUB_CMDLINE_LINUX_DEFAULT"')
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"/etc/default/grub: {r.stderr.strip()}")
    lines = r.stdout.split("\n")
    return lines[0], lines[1] if len(lines) > 1 else ""


def boot_prefix() -> list[str]:
    """BOOT_IMAGE, root= and ro/rw of the running kernel's cmdline: what grub-mkconfig
    would put before the GRUB_CMDLINE_* values."""
    cur = (read("/proc/cmdline") or "").split()
    return [t for t in cur if t.startswith(("BOOT_IMAGE=", "root=")) or t in ("ro", "rw")]


def cmd_grub_mkconfig(args: list[str], default_out: str) -> None:
    out = default_out
    for i, a in enumerate(args):
        if a == "-o" and i + 1 < len(args):
            out = args[i + 1]
        elif a.startswith("--output="):
            out = a.split("=", 1)[1]
    linux, default = grub_values()
    pre = boot_prefix()
    image = next((t.split("=", 1)[1] for t in pre if t.startswith("BOOT_IMAGE=")), "/vmlinuz")
    rest = [t for t in pre if not t.startswith("BOOT_IMAGE=")]
    args_line = " ".join([*rest, *linux.split(), *default.split()])
    write(out, "# generated by the lab's grub-mkconfig simulation\n"
               "menuentry 'Linux' {\n"
               f"\tlinux\t{image} {args_line}\n"
               "}\n")
    print("Generating grub configuration file ...", file=sys.stderr)
    print("done", file=sys.stderr)
    event(f"grub-mkconfig -o {out}")


BLS_DIR = "/boot/loader/entries"


def cmd_grubby(args: list[str]) -> None:
    add: list[str] = []
    rm: list[str] = []
    info = False
    for a in args:
        if a.startswith("--args="):
            add += shlex.split(a.split("=", 1)[1])
        elif a.startswith("--remove-args="):
            rm += shlex.split(a.split("=", 1)[1])
        elif a.startswith("--info") or a == "--default-kernel":
            info = True
    entries = sorted(glob.glob(f"{BLS_DIR}/*.conf"))
    if not entries:
        cur = [t for t in (read("/proc/cmdline") or "").split()
               if not t.startswith("BOOT_IMAGE=")]
        kernel = (read("/proc/sys/kernel/osrelease") or "linux").strip()
        path = f"{BLS_DIR}/lab-{kernel}.conf"
        write(path, f"title Linux ({kernel})\nversion {kernel}\nlinux /vmlinuz-{kernel}\n"
                    f"options {' '.join(cur)}\n")
        entries = [path]
    for path in entries:
        lines = (read(path) or "").splitlines()
        for i, ln in enumerate(lines):
            if ln.startswith("options "):
                opts = ln.split()[1:]
                names_rm = {r.split("=")[0] for r in rm}
                opts = [o for o in opts if o not in rm and o.split("=")[0] not in names_rm]
                for a in add:
                    key = a.split("=")[0]
                    opts = [o for o in opts if o.split("=")[0] != key]
                    opts.append(a)
                lines[i] = "options " + " ".join(opts)
                if info:
                    print(f'args="{" ".join(opts)}"')
        if add or rm:
            write(path, "\n".join(lines) + "\n")
    if add or rm:
        event("grubby " + " ".join(args))


def next_cmdline() -> str | None:
    """The command line the next boot will use: BLS entries (RHEL family) win over
    grub.cfg; without either the running command line stays."""
    entries = sorted(glob.glob(f"{BLS_DIR}/*.conf"))
    if entries:
        for ln in (read(entries[-1]) or "").splitlines():
            if ln.startswith("options "):
                image = next((ln2.split()[1] for ln2 in (read(entries[-1]) or "").splitlines()
                              if ln2.startswith("linux ")), "/vmlinuz")
                return f"BOOT_IMAGE={image} " + ln.split(" ", 1)[1].strip()
    for cfg in ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"):
        text = read(cfg)
        if text:
            for ln in text.splitlines():
                f = ln.split()
                if f and f[0] == "linux" and len(f) >= 2:
                    return " ".join([f"BOOT_IMAGE={f[1]}", *f[2:]])
    return None


# ----------------------------------------------------------------------------- boot

def boot() -> None:
    """Emulate a reboot of the host's kernel on the host's tree."""
    st = load_state()
    cmdline = next_cmdline() or (read("/proc/cmdline") or "").strip()
    write("/proc/cmdline", cmdline + "\n")
    toks = cmdline.split()
    conf = modprobe_conf()
    cm_black = set()
    for t in toks:
        if t.startswith(("modprobe.blacklist=", "module_blacklist=")):
            cm_black |= {norm(x) for x in t.split("=", 1)[1].split(",") if x}
    # Modules: what the installed system loads at boot, minus blacklisted, plus
    # modules-load.d and softdep pre-dependencies.
    if st["boot_modules"] is not None:
        base = [ln.split()[0] for ln in st["boot_modules"]]
        black = conf["blacklist"] | cm_black
        want = [m for m in base if m not in black and m not in cm_black]
        extra: list[str] = []
        for path in [*sorted(glob.glob("/etc/modules-load.d/*.conf")), "/etc/modules"]:
            for ln in (read(path) or "").splitlines():
                w = ln.split("#", 1)[0].strip()
                if w and norm(w) not in cm_black:
                    extra.append(norm(w))
        for m in list(want):
            extra += [d for d in conf["softdep_pre"].get(m, []) if d not in cm_black]
        final: list[str] = []

        def add(n: str) -> None:
            for dep in MODULE_DEPS.get(n, []):
                add(dep)
            if n not in final:
                final.append(n)

        for m in extra + want:
            add(m)
        old = {ln.split()[0]: ln for ln in st["boot_modules"]}
        write("/proc/modules", "\n".join(old.get(m, module_line(m)) for m in final) + "\n")
        loaded = set(final)
    else:
        loaded = set()
    # Drivers present: built-in ones plus those of loaded modules.
    drivers = set(st["builtin_drivers"]) | {MODULE_DRIVER[m] for m in loaded if m in MODULE_DRIVER}
    os.makedirs(f"{PCI}/drivers", exist_ok=True)
    for d in os.listdir(f"{PCI}/drivers"):
        path = f"{PCI}/drivers/{d}"
        for f in os.listdir(path):
            os.unlink(f"{path}/{f}")
        if d not in drivers:
            os.rmdir(path)
    for d in drivers:
        os.makedirs(f"{PCI}/drivers/{d}", exist_ok=True)
    if "vfio_pci" in loaded:
        os.makedirs("/sys/module/vfio_pci/parameters", exist_ok=True)
        write("/sys/module/vfio_pci/parameters/ids",
              ",".join(sorted(vfio_ids(conf, cmdline))) + "\n")
    elif "vfio-pci" not in st["builtin_drivers"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink("/sys/module/vfio_pci/parameters/ids")
            os.rmdir("/sys/module/vfio_pci/parameters")
            os.rmdir("/sys/module/vfio_pci")
    # IOMMU: on with intel_iommu=on on Intel; on by default on AMD unless turned off.
    if st["cpu_vendor"] == "amd":
        iommu = not any(t in ("amd_iommu=off", "iommu=off") for t in toks)
    else:
        iommu = "intel_iommu=on" in toks and "iommu=off" not in toks
    groups_dir = "/sys/kernel/iommu_groups"
    os.makedirs(groups_dir, exist_ok=True)
    for g in os.listdir(groups_dir):
        with contextlib.suppress(FileNotFoundError):
            for m in os.listdir(f"{groups_dir}/{g}/devices"):
                os.unlink(f"{groups_dir}/{g}/devices/{m}")
            os.rmdir(f"{groups_dir}/{g}/devices")
        with contextlib.suppress(OSError):
            os.rmdir(f"{groups_dir}/{g}")
    for f in glob.glob("/dev/vfio/*"):
        os.unlink(f)
    devs = devices()
    assigned = dict(st.get("iommu_groups") or {})
    if iommu and not assigned:
        # No recorded topology: functions of one device share a group, devices don't.
        slots: dict[str, str] = {}
        for bdf in devs:
            slot = bdf.rsplit(".", 1)[0]
            slots.setdefault(slot, str(len(slots)))
            assigned[bdf] = slots[slot]
        st["iommu_groups"] = assigned
        save_state(st)
    for bdf in devs:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{PCI}/devices/{bdf}/driver")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{PCI}/devices/{bdf}/iommu_group")
        if os.path.exists(f"{PCI}/devices/{bdf}/driver_override"):
            write(f"{PCI}/devices/{bdf}/driver_override", "(null)\n")
        if iommu and bdf in assigned:
            g = assigned[bdf]
            os.makedirs(f"{groups_dir}/{g}/devices", exist_ok=True)
            os.symlink(f"../../../../kernel/iommu_groups/{g}", f"{PCI}/devices/{bdf}/iommu_group")
            os.symlink(f"../../../../bus/pci/devices/{bdf}", f"{groups_dir}/{g}/devices/{bdf}")
    st["dynamic_ids"] = {}
    save_state(st)
    if "vfio_pci" in loaded or "vfio-pci" in st["builtin_drivers"]:
        write("/dev/vfio/vfio", "")
    for bdf in devs:
        probe(bdf, st, conf, cmdline)


def cmd_reboot(_args: list[str]) -> None:
    boot()
    sys.stdout.flush()
    sys.stderr.flush()
    # Like a real reboot, every session on the host ends. kill(-1) in this PID namespace
    # reaches only this host's processes (never this one); its init (the listening sshd)
    # stays up, so the host "comes back" at once.
    time.sleep(0.05)
    os.kill(-1, signal.SIGKILL)
    # A real machine takes its time to come back (firmware, the GPUs' option ROMs): a lab
    # that models it says how long in /.lab/boot-seconds, and the new boot id shows after it.
    time.sleep(boot_seconds())
    # Only then the new boot id: whoever reads it connected after the reboot, as on a real
    # host, and is not cut off by it (under load the kill could come long after the write).
    write("/proc/sys/kernel/random/boot_id", str(uuid.uuid4()) + "\n")
    event("reboot")


def boot_seconds() -> float:
    try:
        with open("/.lab/boot-seconds") as f:
            return max(0.0, float(f.read().strip() or 0))
    except (OSError, ValueError):
        return 0.0


def cmd_systemctl(args: list[str]) -> None:
    words = [a for a in args if not a.startswith("-")]
    if not words:
        die("systemctl: lab simulation needs a verb")
    verb = words[0]
    if verb in ("reboot", "kexec"):
        cmd_reboot([])
        return
    if verb in ("restart", "start", "stop", "reload", "try-restart", "daemon-reload",
                "enable", "disable"):
        event("systemctl " + " ".join(words))
        return
    if verb == "is-active":
        print("active")
        return
    if verb == "is-system-running":
        print("running")
        return
    die(f"systemctl: lab simulation does not support {verb}")


def cmd_shutdown(args: list[str]) -> None:
    if "-r" in args or "--reboot" in args:
        cmd_reboot([])
        return
    die("shutdown: the lab only simulates reboots (-r)")


def cmd_record(name: str, args: list[str]) -> None:
    event(" ".join([name, *args]))


def main() -> None:
    name = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    if not os.path.isfile(STATE):
        die(f"{name}: lab simulation refused: {STATE} missing (not a simulated host root)", 99)
    if os.geteuid() != 0 and name not in ("lsmod",):
        die(f"{name}: must be run as root (simulated)", 1)
    if name == "modprobe":
        cmd_modprobe(args)
    elif name == "rmmod":
        cmd_rmmod([a for a in args if not a.startswith("-")])
    elif name == "lsmod":
        cmd_lsmod(args)
    elif name == "update-grub":
        cmd_grub_mkconfig(["-o", "/boot/grub/grub.cfg"], "/boot/grub/grub.cfg")
    elif name == "grub-mkconfig" or name == "grub2-mkconfig":
        cmd_grub_mkconfig(args, "/dev/stdout")
    elif name == "grubby":
        cmd_grubby(args)
    elif name == "udevadm":
        cmd_udevadm(args)
    elif name == "systemctl":
        cmd_systemctl(args)
    elif name == "reboot":
        cmd_reboot(args)
    elif name == "shutdown":
        cmd_shutdown(args)
    elif name in ("update-initramfs", "dracut"):
        cmd_record(name, args)
    else:
        die(f"labsim: unknown command {name}")


if __name__ == "__main__":
    main()
