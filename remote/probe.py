"""The host probe: one shell script that prints facts, one pure parser that types them.

Why split this way: the script runs anywhere a POSIX shell does (over SSH, locally, under
a mounted or captured host root) and needs nothing on the host; the parser never touches
a host, so every captured output or fixture tree is a plain unit test. A live host and a
tree go through exactly the same code.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from importlib import resources
from pathlib import Path

from remote.hostfacts import VIRT_FLAGS, Backup, FabricManager, HostFacts, PciDevice
from remote.kubelet import MARKER_PATHS

PROBE_SCRIPT: str = resources.files("remote").joinpath("probe.sh").read_text()


def probe_command(host_root: str = "/") -> str:
    """The command line that runs the probe on a host (for SSH exec)."""
    return shlex.join(["sh", "-c", PROBE_SCRIPT, "gki-probe", host_root])


LOCAL_PROBE_SECONDS = 60.0  # a whole host tree reads in well under a second


class ProbeTimeout(TimeoutError):
    """The local probe did not finish in time (a hung mount under the host root)."""

    def __init__(self, root: str, limit: float) -> None:
        super().__init__(f"the probe of {root} did not finish within {limit:g} s")
        self.root, self.limit = root, limit


def probe_local(host_root: Path | str = "/", timeout: float | None = None) -> HostFacts:
    """Run the probe on this machine against `host_root` and parse it. The script runs in
    a session of its own, so at the limit it is stopped with anything it started."""
    root = str(Path(host_root).resolve())  # the script cd-s to / first
    limit = timeout if timeout is not None else LOCAL_PROBE_SECONDS
    proc = subprocess.Popen(["/bin/sh", "-c", PROBE_SCRIPT, "gki-probe", root],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProbeTimeout(root, limit) from None
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C): do not leave the probe behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return parse_probe(out)


def _decode(b: bytes) -> str:
    # Verbatim but never failing: bytes that are not UTF-8 show as \xNN.
    return b.decode("utf-8", errors="backslashreplace")


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines with optional single or double quotes (os-release(5))."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        try:
            parts = shlex.split(v)
            v = parts[0] if parts else ""
        except ValueError:
            v = v.strip("\"'")
        out[k.strip()] = v
    return out


def _yn(text: str | None) -> bool | None:
    if text is None:
        return None
    v = text.strip().upper()
    if v in ("Y", "1", "YES"):
        return True
    if v in ("N", "0", "NO"):
        return False
    return None


def _hex(v: str) -> str:
    return v.strip().lower().removeprefix("0x")


def parse_probe(output: bytes | str) -> HostFacts:
    """Turn probe output into HostFacts. Pure; tolerant of missing files, truncated output
    (`complete=False`) and bytes that are not UTF-8."""
    text = output if isinstance(output, str) else _decode(output)
    files: dict[str, str] = {}
    backups: dict[str, str] = {}  # a backup's path -> its content (tag @backup)
    missing: list[str] = []
    unreadable: list[str] = []
    exists: set[str] = set()
    drivers: list[str] = []
    vfio_nodes: list[str] = []
    cdi: list[str] = []
    validations: list[str] = []
    tools: list[str] = []
    builtin_lines: list[str] = []
    groups: dict[str, list[str]] = {}
    devs: list[dict[str, str]] = []
    fm: dict[str, list[str]] | None = None
    root = "/"
    done = False
    cur_file: str | None = None
    cur_into = files
    cur_lines: list[str] = []
    nonl = False

    for line in text.split("\n"):
        if cur_file is not None:
            if line.startswith("|"):
                cur_lines.append(line[1:])
                continue
            if line == "@nonl":
                nonl = True
                continue
            # "@end" or anything else closes the file (truncated output included).
            body = "\n".join(cur_lines)
            cur_into[cur_file] = body if nonl or not cur_lines else body + "\n"
            cur_file, cur_lines, nonl = None, [], False
            if line == "@end":
                continue
        if not line.startswith("@"):
            continue
        tag, _, rest = line.partition(" ")
        if tag in ("@file", "@backup"):
            cur_file, cur_into = rest, files if tag == "@file" else backups
        elif tag == "@missing":
            missing.append(rest)
        elif tag == "@unreadable":
            unreadable.append(rest)
        elif tag == "@exists":
            exists.add(rest)
        elif tag == "@driver":
            drivers.append(rest)
        elif tag == "@vfio":
            vfio_nodes.append(rest)
        elif tag == "@cdi":
            cdi.append(rest)
        elif tag == "@validation":
            validations.append(rest)
        elif tag == "@tool":
            tools.append(rest)
        elif tag == "@builtin":
            builtin_lines.append(rest)
        elif tag == "@root":
            root = rest
        elif tag == "@group":
            g, _, bdf = rest.partition(" ")
            groups.setdefault(g, []).append(bdf)
        elif tag == "@dev":
            devs.append({"bdf": rest})
        elif tag == "@attr" and devs:
            k, _, v = rest.partition(" ")
            devs[-1][k] = v
        elif tag == "@link" and devs:
            k, _, v = rest.partition(" ")
            if v:
                devs[-1]["link_" + k] = v
        elif tag == "@fm":
            kind, _, what = rest.partition(" ")
            fm = fm if fm is not None else {}
            if what:
                fm.setdefault(kind, []).append(what)
        elif tag == "@done":
            done = True
    if cur_file is not None:  # output cut inside a file
        cur_into[cur_file] = "\n".join(cur_lines)
        if cur_into is backups:  # a backup cut short is not the file before: no revert
            del backups[cur_file]

    osr = parse_os_release(files.get("etc/os-release", ""))
    hostname = (files.get("etc/hostname") or files.get("proc/sys/kernel/hostname") or "")
    hostname = hostname.strip().splitlines()[0] if hostname.strip() else ""
    kernel = (files.get("proc/sys/kernel/osrelease") or "").strip()
    if not kernel and files.get("proc/version"):
        words = files["proc/version"].split()
        kernel = words[2] if len(words) > 2 and words[:2] == ["Linux", "version"] else ""

    cpu: dict[str, str] = {}
    for ln in files.get("proc/cpuinfo", "").splitlines():
        k, sep, v = ln.partition(":")
        if sep:
            cpu.setdefault(k.strip(), v.strip())
    flags = sorted(set(cpu.get("flags", "").split()) & VIRT_FLAGS)

    modules: list[str] | None = None
    if "proc/modules" in files:
        modules = [ln.split()[0] for ln in files["proc/modules"].splitlines() if ln.strip()]

    devices = []
    for d in devs:
        ov = d.get("driver_override", "").strip()
        devices.append(PciDevice(
            bdf=d["bdf"],
            vendor=_hex(d.get("vendor", "")),
            device=_hex(d.get("device", "")),
            class_code=_hex(d.get("class", "")),
            driver=d.get("link_driver") or None,
            iommu_group=d.get("link_iommu_group") or None,
            subsystem_vendor=_hex(d.get("subsystem_vendor", "")),
            subsystem_device=_hex(d.get("subsystem_device", "")),
            driver_override=None if ov in ("", "(null)") else ov,
            numa_node=d.get("numa_node"),
        ))
    devices.sort(key=lambda x: x.bdf)
    groups = {g: sorted(m) for g, m in sorted(groups.items(), key=lambda kv: _gkey(kv[0]))}

    vfio_ev: list[str] = []
    mods = modules or []
    if "vfio_pci" in mods:
        vfio_ev.append("proc/modules: vfio_pci loaded")
    builtin = False
    if "sys/module/vfio_pci" in exists and "vfio_pci" not in mods:
        builtin = True
        vfio_ev.append("sys/module/vfio_pci exists" +
                       (" and vfio_pci is not in proc/modules (built into the kernel)"
                        if modules is not None else ""))
    if "vfio-pci" in drivers:
        vfio_ev.append("sys/bus/pci/drivers/vfio-pci exists")
    ko = sorted(p for p in exists if "/vfio-pci.ko" in p)
    vfio_ev += [f"{p} exists" for p in ko]
    vfio_builtin_lines = [ln for ln in builtin_lines if ln.endswith("/vfio-pci.ko")]
    if vfio_builtin_lines:
        builtin = True
        vfio_ev += [f"modules.builtin: {ln}" for ln in vfio_builtin_lines]
    vfio_available = bool(vfio_ev)

    grace_ev: list[str] = []
    if "nvgrace_gpu_vfio_pci" in mods:
        grace_ev.append("proc/modules: nvgrace_gpu_vfio_pci loaded")
    if "nvgrace_gpu_vfio_pci" in drivers:
        grace_ev.append("sys/bus/pci/drivers/nvgrace_gpu_vfio_pci exists")
    if "sys/module/nvgrace_gpu_vfio_pci" in exists and "nvgrace_gpu_vfio_pci" not in mods:
        grace_ev.append("sys/module/nvgrace_gpu_vfio_pci exists")
    grace_ev += [f"{p} exists" for p in sorted(exists) if "/nvgrace-gpu-vfio-pci.ko" in p]
    grace_ev += [f"modules.builtin: {ln}" for ln in builtin_lines
                 if ln.endswith("/nvgrace-gpu-vfio-pci.ko")]

    return HostFacts(
        hostname=hostname,
        host_root=root,
        os_id=osr.get("ID", ""),
        os_like=osr.get("ID_LIKE", "").split(),
        os_version=osr.get("VERSION_ID", ""),
        os_pretty=osr.get("PRETTY_NAME", ""),
        kernel=kernel,
        cmdline=files.get("proc/cmdline", "").strip(),
        cpu_vendor=cpu.get("vendor_id", ""),
        cpu_model=cpu.get("model name", ""),
        cpu_flags=flags,
        kvm_present="dev/kvm" in exists,
        iommu_groups_dir="sys/kernel/iommu_groups" in exists,
        iommu_groups=groups,
        devices=devices,
        modules=modules,
        modprobe_d={k: v for k, v in files.items() if k.startswith("etc/modprobe.d/")},
        modules_load_d={k: v for k, v in files.items()
                        if k.startswith("etc/modules-load.d/") or k == "etc/modules"},
        grub_default=files.get("etc/default/grub"),
        grub_d={k: v for k, v in files.items() if k.startswith("etc/default/grub.d/")},
        kubelet_config=files.get("var/lib/kubelet/config.yaml"),
        tdx=_yn(files.get("sys/module/kvm_intel/parameters/tdx")),
        sev_snp=_yn(files.get("sys/module/kvm_amd/parameters/sev_snp")),
        sev=_yn(files.get("sys/module/kvm_amd/parameters/sev")),
        vfio_available=vfio_available,
        vfio_builtin=builtin,
        vfio_evidence=vfio_ev,
        nvgrace_available=bool(grace_ev),
        nvgrace_evidence=grace_ev,
        arch=_arch(files, cpu),
        markers=[p for p in MARKER_PATHS if p in exists],
        fabric_manager=None if fm is None else FabricManager(
            units=fm.get("unit", []), enabled=fm.get("enabled", []), masked=bool(fm.get("masked")),
            binary=(fm.get("binary") or [None])[0], pids=fm.get("pid", [])),
        pci_drivers=sorted(drivers),
        vfio_dev_nodes=sorted(vfio_nodes),
        cdi_specs=sorted(cdi),
        validations=sorted(validations),
        containerd_config="etc/containerd/config.toml" in exists,
        containerd_socket="run/containerd/containerd.sock" in exists,
        crio_socket="var/run/crio/crio.sock" in exists or "run/crio/crio.sock" in exists,
        boot_id=(files.get("proc/sys/kernel/random/boot_id") or "").strip() or None,
        bls_entries={k: v for k, v in files.items() if k.startswith("boot/loader/entries/")},
        tools=sorted(set(tools)),
        backups=[b for path, text in sorted(backups.items())
                 if (b := Backup.parse(path, text)) is not None],
        files=files,
        missing=missing,
        unreadable=unreadable,
        complete=done,
    )


def _arch(files: dict[str, str], cpu: dict[str, str]) -> str:
    """The machine architecture: the kernel's `kernel.arch` sysctl where it has one, else the
    shape of the first cpuinfo block (x86 names a vendor_id, arm64 a "CPU architecture")."""
    arch = (files.get("proc/sys/kernel/arch") or "").strip()
    if arch:
        return arch
    if "vendor_id" in cpu:
        return "x86_64"
    if cpu.get("CPU architecture") == "8":
        return "aarch64"
    return ""


def _gkey(g: str) -> tuple[int, str]:
    return (int(g), g) if g.isascii() and g.isdigit() else (1 << 30, g)
