"""Uninstall with revert on the lab: the host gpu-node-3 gets its fixes over SSH at install
(kernel command line, driver blacklist, vfio binding, a reboot); `uninstall --revert-hosts
--yes` puts every file the fixes edited back byte for byte, leaves no backup behind, reboots
it, and unbinds the GPUs GPU Operator v26.3.1's vfio-manager leaves on vfio-pci on the other
Kata hosts; a second uninstall changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remote.hostfacts import BACKUP_INFIX
from tests.integration.cli_run import installer, write_answers

pytestmark = pytest.mark.lab
FIXED = "gpu-node-3"  # gpu-host-driver: the host driver loaded, the IOMMU off
KERNEL_TREES = ("sys", "proc", "dev", ".lab")


def host_files(root: Path) -> dict[str, bytes]:
    """Every regular file of a host tree outside its simulated kernel and lab state."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.relative_to(root).parts[0] not in KERNEL_TREES and p.is_file()
            and not p.is_symlink()}


def backups(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(f"*{BACKUP_INFIX}*")
                  if p.relative_to(root).parts[0] not in KERNEL_TREES)


def gpu_drivers(root: Path) -> dict[str, str | None]:
    out = {}
    for dev in sorted((root / "sys/bus/pci/devices").iterdir()):
        if (dev / "vendor").read_text().strip() == "0x10de" and \
                (dev / "class").read_text().strip().startswith("0x0302"):
            link = dev / "driver"
            out[dev.name] = Path(link.readlink()).name if link.is_symlink() else None
    return out


def test_uninstall_with_revert_restores_the_hosts_byte_for_byte(lab_bare, tmp_path):
    lab = lab_bare
    if not lab.node(FIXED).ssh:
        pytest.skip("lab runs without sshd")
    roots = {n.name: Path(n.host_root) for n in lab.nodes if n.ssh}
    before = {name: host_files(root) for name, root in roots.items()}
    drivers_before = gpu_drivers(roots[FIXED])
    answers = write_answers(lab, tmp_path)

    first = installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    made = backups(roots[FIXED])
    edited = {b.rpartition(BACKUP_INFIX)[0] for b in made}
    assert "etc/default/grub" in edited and len(edited) >= 3, made
    assert [n for n in roots if n != FIXED and backups(roots[n])] == []

    # Without consent: the plan lists each change as left in place and reverts nothing.
    told = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--dry-run",
                     "--json")
    assert told.returncode == 0, told.stdout[-3000:] + told.stderr[-2000:]
    events = [json.loads(line) for line in told.stdout.splitlines()]
    said = [e["message"] for e in events if e["kind"] == "warning"]
    assert any(m.startswith(f"{FIXED}: host changes left in place: /etc/default/grub")
               for m in said), said
    assert any("gpu-node-1: GPU Operator v26.3.1 leaves" in m for m in said), said
    # The dry-run with consent shows each host's diff back to its backup.
    shown = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--dry-run",
                      "--json", "--revert-hosts")
    plans = [e["plan"] for e in map(json.loads, shown.stdout.splitlines()) if e["kind"] == "plan"]
    plan = plans[-1]  # the plan made once the hosts are probed
    step = next(s for s in plan["steps"] if s["id"] == f"revert/{FIXED}")
    assert "--- a/etc/default/grub" in step["changes"][0]["detail"]["preview"]
    assert backups(roots[FIXED]) == made  # a dry-run changes nothing

    gone = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--revert-hosts",
                     "--yes")
    assert gone.returncode == 0, gone.stdout[-4000:] + gone.stderr[-2000:]
    assert f"revert/{FIXED}/reboot" in gone.stdout
    after = host_files(roots[FIXED])
    for path in sorted(edited):
        assert after.get(path) == before[FIXED].get(path), path
    for folder in ("etc/default/", "etc/modprobe.d/", "etc/modules-load.d/", "var/lib/kubelet/"):
        assert {p: b for p, b in after.items() if p.startswith(folder)} == \
            {p: b for p, b in before[FIXED].items() if p.startswith(folder)}, folder
    assert [n for n, root in roots.items() if backups(root)] == []
    assert gpu_drivers(roots[FIXED]) == drivers_before  # back on the host driver after boot
    for name in ("gpu-node-1", "gpu-node-2"):  # left on vfio-pci by v26.3.1: unbound
        assert set(gpu_drivers(roots[name]).values()) == {None}, name

    again = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--revert-hosts",
                      "--yes")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "everything was already in place, nothing changed" in again.stdout
    assert host_files(roots[FIXED]) == after
