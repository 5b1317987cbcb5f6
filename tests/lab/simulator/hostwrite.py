"""The few host changes real components make, applied to a simulated host's tree.

kata-deploy copies artifacts to /opt/kata; the vfio manager binds GPUs to vfio-pci; the
device plugin writes a CDI spec; the validator writes /run/nvidia/validations/*. Every path is
resolved inside the host root, following the tree's own symlinks (e.g. var/run -> /run) as the
host would, so nothing is ever written outside it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .hoststate import inside
from .logic import kata_shim_config


def write_file(root: Path, rel: str, content: str) -> bool:
    """Write if different; True when the file changed."""
    path = inside(root, rel)
    try:
        if path.read_text() == content:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.lab-tmp")
    tmp.write_text(content)
    os.replace(tmp, path)
    return True


def install_kata(root: Path, shims: tuple[str, ...]) -> None:
    base = "opt/kata/share/defaults/kata-containers"
    write_file(root, "opt/kata/bin/containerd-shim-kata-v2", "#!/bin/sh\n# lab stand-in\n")
    write_file(root, "opt/kata/VERSION", "3.29.0\n")
    for shim in shims:
        write_file(root, f"{base}/configuration-{shim}.toml", kata_shim_config(shim))


NYDUS_SERVICE = "etc/systemd/system/nydus-for-kata-tee.service"


def install_snapshotters(root: Path, names: tuple[str, ...]) -> None:
    """`EXPERIMENTAL_SETUP_SNAPSHOTTER`: kata-deploy's install_nydus_snapshotter writes a
    systemd unit for nydus-for-kata-tee on the host and starts it
    (tools/packaging/kata-deploy/binary/src/artifacts/snapshotters.rs, 3.29.0)."""
    if "nydus" in names:
        write_file(root, NYDUS_SERVICE, "[Unit]\nDescription=nydus-for-kata-tee (lab stand-in)\n")
        write_file(root, "opt/kata/nydus-for-kata-tee/containerd-nydus-grpc", "#!/bin/sh\n")


def uninstall_kata(root: Path) -> None:
    """kata-deploy's cleanup: the artifacts, and the snapshotter unit it set up
    (uninstall_nydus_snapshotter in snapshotters.rs, 3.29.0)."""
    path = inside(root, "opt/kata")
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    inside(root, NYDUS_SERVICE).unlink(missing_ok=True)


def kata_installed(root: Path) -> bool:
    return inside(root, "opt/kata/bin/containerd-shim-kata-v2").exists()


def _detach(devices: Path, drivers: Path, bdf: str) -> None:
    """A device off its driver: its `driver` link and the driver's link back to it gone."""
    link = devices / bdf / "driver"
    if link.is_symlink():
        back = drivers / os.path.basename(os.readlink(link)) / bdf
        if back.is_symlink():
            back.unlink()
    if link.is_symlink() or link.exists():
        link.unlink()


def unbind_vfio(root: Path, bdfs: tuple[str, ...]) -> None:
    """What `vfio-manage unbind` does to each device: unbound from its driver, no override
    (k8s-driver-manager cmd/vfio-manage/unbind.go, v0.12.0); the host driver is not reloaded."""
    devices = inside(root, "sys/bus/pci/devices")
    drivers = inside(root, "sys/bus/pci/drivers")
    for bdf in bdfs:
        _detach(devices, drivers, bdf)
        override = devices / bdf / "driver_override"
        if override.exists():
            override.write_text("\n")


def bind_vfio(root: Path, bdfs: tuple[str, ...]) -> None:
    """What writing driver_override + drivers_probe does: move each device to vfio-pci."""
    if not bdfs:
        return
    devices = inside(root, "sys/bus/pci/devices")
    drivers = inside(root, "sys/bus/pci/drivers")
    for bdf in bdfs:
        dev = devices / bdf
        link = dev / "driver"
        _detach(devices, drivers, bdf)
        os.symlink("../../drivers/vfio-pci", link)
        (drivers / "vfio-pci").mkdir(parents=True, exist_ok=True)
        back = drivers / "vfio-pci" / bdf
        if not back.is_symlink():
            os.symlink(f"../../devices/{bdf}", back)
        group_link = dev / "iommu_group"
        if group_link.is_symlink():
            group = os.path.basename(os.readlink(group_link))
            write_file(root, f"dev/vfio/{group}", "")
    if not inside(root, "dev/vfio/vfio").exists():
        write_file(root, "dev/vfio/vfio", "")
    modules = inside(root, "proc/modules")
    try:
        text = modules.read_text()
    except OSError:
        return  # a kernel without module support: vfio-pci is built in
    names = {line.split()[0] for line in text.splitlines() if line.strip()}
    add = [m for m in ("vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "vfio") if m not in names]
    if add:
        extra = "".join(f"{m} 16384 0 - Live 0x0000000000000000\n" for m in add)
        write_file(
            root, "proc/modules", text + ("" if text.endswith("\n") or not text else "\n") + extra
        )
