"""Host fixes over real sshd + sudo on simulated hosts: idempotence, byte-exact undo,
reboots, interrupted writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from installer.hosts.checks import run_checks
from remote.fixes import plan_fixes
from remote.fixes.base import HostChange, apply_change, undo_change
from remote.fixes.reboot import reboot_and_wait
from remote.hostfacts import HostFacts
from remote.probe import PROBE_SCRIPT, parse_probe
from remote.ssh import Script, run_on_hosts
from remote.targets import HostTarget
from tests.integration.conftest import known_hosts_for, options
from tests.lab import hosts

pytestmark = pytest.mark.lab


def snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file and symlink under a host root, except the lab's own bookkeeping."""
    out: dict[str, tuple[str, bytes | str]] = {}
    for dp, dns, fns in os.walk(root):
        rel_dp = os.path.relpath(dp, root)
        if rel_dp == ".lab" or rel_dp.startswith(".lab/"):
            dns[:] = []
            continue
        for n in fns + [d for d in dns if os.path.islink(os.path.join(dp, d))]:
            p = os.path.join(dp, n)
            rel = os.path.normpath(os.path.join(rel_dp, n))
            out[rel] = ("L", os.readlink(p)) if os.path.islink(p) else ("F", Path(p).read_bytes())
    return out


def changed(a: dict, b: dict) -> set[str]:
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


class Host:
    """A started simulated host plus the SSH plumbing to probe and change it."""

    def __init__(self, sim: hosts.SimHost, keys, tmp: Path) -> None:
        self.sim = sim
        self.target = HostTarget(sim.name, sim.address)
        self.opts = options(keys, known_hosts_for(tmp / f"kh-{sim.name}", sim))

    async def probe(self) -> HostFacts:
        r = (await run_on_hosts([self.target], Script(PROBE_SCRIPT, ("/",)), self.opts))
        res = r[self.target.name]
        assert res.ok, res
        return parse_probe(res.stdout)

    async def apply(self, c: HostChange) -> None:
        r = await apply_change(c, self.target, self.opts)
        assert r.ok, (c.name, r.error, r.stdout.decode(), r.stderr.decode())

    async def undo(self, c: HostChange) -> None:
        r = await undo_change(c, self.target, self.opts)
        assert r.ok, (c.name, r.error, r.stdout.decode(), r.stderr.decode())

    async def sh(self, cmd: str) -> str:
        r = (await run_on_hosts([self.target], cmd, self.opts))[self.target.name]
        assert r.ok, r
        return r.text()


@pytest.fixture
def host(new_host, lab_keys, tmp_path):
    def make(tree: str, **kw) -> Host:
        return Host(new_host(tree, **kw), lab_keys, tmp_path)
    return make


TREES = ["gpu-host-driver", "rhel-iommu-off", "kubelet-no-gate", "hgx-nvswitch", "cc-host",
         "amd-iommu", "cloud-gpu-guest", "consumer-gpu"]


@pytest.mark.parametrize("tree", TREES)
async def test_apply_twice_equals_once_and_undo_restores_bytes(host, tree):
    h = host(tree)
    facts = await h.probe()
    changes, _ = plan_fixes(facts)
    changes = [c for c in changes if c.name != "reboot"]
    assert changes, f"{tree}: expected something to fix"
    before = snapshot(h.sim.root)
    for c in changes:
        await h.apply(c)
    once = snapshot(h.sim.root)
    for c in changes:
        await h.apply(c)
    twice = snapshot(h.sim.root)
    assert changed(once, twice) == set(), tree
    for c in changes:
        for f in c.files:
            assert f.lstrip("/") in changed(before, once), (c.name, f)
    # planned again from a fresh probe: nothing left but the reboot it may be waiting for
    again, _ = plan_fixes(await h.probe())
    assert [c.name for c in again if c.name != "reboot"] == []
    if any(c.name == "kubelet-gate" for c in changes):
        assert "systemctl restart kubelet" in h.sim.events()
    for c in reversed(changes):
        await h.undo(c)
    after = snapshot(h.sim.root)
    for c in changes:
        for f in c.files:
            rel = f.lstrip("/")
            assert after.get(rel) == before.get(rel), (c.name, rel)
    leftovers = [k for k in after if ".gpu-kata-installer." in k or "/.gki-" in "/" + k]
    assert leftovers == []
    if tree == "hgx-nvswitch":  # the NVSwitches went back to no driver
        f2 = await h.probe()
        assert all(d.driver is None for d in f2.nvswitches)


def _grace_on_the_host_driver(tmp: Path) -> Path:
    """grace-gh200 as it arrives: the GH200 on the host NVIDIA driver, the kernel's
    nvgrace_gpu_vfio_pci shipped as a module file and not loaded."""
    tree = tmp / "grace-on-nvidia"
    shutil.copytree(hosts.FIXTURES / "grace-gh200", tree, symlinks=True)
    pci = tree / "sys/bus/pci"
    gpu = "0009:01:00.0"
    shutil.rmtree(pci / "drivers/nvgrace_gpu_vfio_pci")
    shutil.rmtree(tree / "sys/module/nvgrace_gpu_vfio_pci")
    (pci / "devices" / gpu / "driver").unlink()
    (pci / "devices" / gpu / "driver").symlink_to("../../drivers/nvidia")
    (pci / "drivers/nvidia").mkdir()
    (pci / "drivers/nvidia" / gpu).symlink_to(f"../../devices/{gpu}")
    mods = tree / "proc/modules"
    mods.write_text("nvidia 56836096 0 - Live 0x0000000000000000 (POE)\n" + "".join(
        ln for ln in mods.read_text().splitlines(True) if not ln.startswith("nvgrace")))
    ko = tree / ("lib/modules/6.8.0-1013-nvidia-64k/kernel/drivers/vfio/pci/nvgrace-gpu/"
                 "nvgrace-gpu-vfio-pci.ko.zst")
    ko.parent.mkdir(parents=True)
    ko.write_text("")
    return tree


async def test_a_grace_gpu_is_bound_to_its_vfio_variant_and_returned(host, tmp_path):
    h = host(_grace_on_the_host_driver(tmp_path))
    facts = await h.probe()
    assert facts.arch == "aarch64" and [g.driver for g in facts.gpus] == ["nvidia"]
    assert facts.nvgrace_available and not facts.vfio_builtin
    (c,) = plan_fixes(facts, only=frozenset({"vfio-bind"}))[0]
    assert c.description == "bind 1 device(s) to nvgrace_gpu_vfio_pci now"
    assert "ids=" not in c.preview
    await h.apply(c)
    assert "modprobe nvgrace_gpu_vfio_pci" in h.sim.events()
    after = await h.probe()
    assert [g.driver for g in after.gpus] == ["nvgrace_gpu_vfio_pci"]
    assert {r.name: r.status for r in run_checks(after)}["vfio-available"] == "pass"
    assert plan_fixes(after, only=frozenset({"vfio-bind"})) == ([], [])  # done: nothing left
    await h.undo(c)
    assert [g.driver for g in (await h.probe()).gpus] == ["nvidia"]


async def test_dry_run_plans_and_previews_without_touching_anything(host):
    h = host("gpu-host-driver")
    before = snapshot(h.sim.root)
    events = h.sim.events()
    changes, _ = plan_fixes(await h.probe())
    text = "\n".join(c.preview for c in changes)
    assert '+GRUB_CMDLINE_LINUX="intel_iommu=on"' in text
    assert "+featureGates:\n+  KubeletPodResourcesGet: true" in text
    assert "$ update-grub" in text and "$ systemctl restart kubelet" in text
    assert snapshot(h.sim.root) == before and h.sim.events() == events


async def test_reboot_after_iommu_fix_makes_groups_appear(host):
    h = host("gpu-host-driver")
    facts = await h.probe()
    assert facts.iommu_groups == {}
    changes, blocked = plan_fixes(facts, only=frozenset({"iommu-cmdline", "reboot"}))
    assert [c.name for c in changes] == ["iommu-cmdline", "reboot"]
    await h.apply(changes[0])
    assert "intel_iommu=on" in (h.sim.root / "boot/grub/grub.cfg").read_text()
    rr = await reboot_and_wait(changes[1], h.target, h.opts, poll=0.5, timeout=60)
    assert rr.ok, rr
    assert rr.new_boot_id != rr.old_boot_id
    facts = await h.probe()
    assert "intel_iommu=on" in facts.cmdline_args
    assert len(facts.iommu_groups) == 5 and all(g.iommu_group for g in facts.gpus)
    status = {r.name: r.status for r in run_checks(facts)}
    assert status["iommu-enabled"] == "pass" and status["iommu-group-isolation"] == "pass"
    # Now vfio-bind can be planned: vfio-pci is built into this (Ubuntu) kernel, so it
    # persists through vfio-pci.ids= on the command line and binds the GPUs right away.
    changes, blocked = plan_fixes(facts, only=frozenset({"vfio-bind"}))
    assert [c.name for c in changes] == ["vfio-bind"] and not blocked
    assert "vfio-pci.ids=10de:2330" in changes[0].preview
    await h.apply(changes[0])
    facts = await h.probe()
    assert {d.driver for d in facts.gpus} == {"vfio-pci"}
    assert sorted(facts.vfio_dev_nodes) == sorted(["vfio", *{d.iommu_group for d in facts.gpus}])
    # ... and across a reboot, although the nvidia module still loads at boot
    rr = await reboot_and_wait(_reboot(facts), h.target, h.opts, poll=0.5, timeout=60)
    assert rr.ok, rr
    facts = await h.probe()
    assert "vfio-pci.ids=10de:2330" in facts.cmdline_args
    assert {d.driver for d in facts.gpus} == {"vfio-pci"}
    assert "nvidia" in (facts.modules or [])
    # the driver still loads at boot but holds no GPU now: it is unloaded and blacklisted
    assert {c.name for c in plan_fixes(facts)[0]} == {"nouveau-blacklist", "nvidia-driver-off",
                                                      "kubelet-gate"}


def _reboot(facts: HostFacts) -> HostChange:
    from remote.fixes import reboot
    return reboot.plan(facts)


async def test_rhel_family_uses_grubby_and_the_vfio_module(host):
    h = host("rhel-iommu-off")
    facts = await h.probe()
    assert facts.os_family == "rhel"
    changes, _ = plan_fixes(facts, only=frozenset({"iommu-cmdline", "reboot"}))
    assert "$ grubby --update-kernel=ALL --args=intel_iommu=on" in changes[0].preview
    await h.apply(changes[0])
    assert any(e.startswith("grubby") for e in h.sim.events())
    assert (await reboot_and_wait(changes[1], h.target, h.opts, poll=0.5, timeout=60)).ok
    facts = await h.probe()
    assert facts.iommu_groups and "intel_iommu=on" in facts.cmdline_args
    assert not facts.vfio_builtin and facts.vfio_available
    changes, blocked = plan_fixes(facts, only=frozenset({"vfio-bind"}))
    assert not blocked
    c = changes[0]
    assert "options vfio-pci ids=10de:2331" in c.preview and "$ modprobe vfio-pci" in c.preview
    await h.apply(c)
    facts = await h.probe()
    assert [d.driver for d in facts.gpus] == ["vfio-pci"] and "vfio_pci" in facts.modules
    assert (await reboot_and_wait(_reboot(facts), h.target, h.opts, poll=0.5, timeout=60)).ok
    facts = await h.probe()
    assert [d.driver for d in facts.gpus] == ["vfio-pci"]  # modprobe.d ids + modules-load.d
    assert "nvidia" in facts.modules and "vfio_pci" in facts.modules


async def test_write_to_a_full_disk_leaves_the_file_whole(host):
    h = host("kubelet-no-gate", full_dirs=("var/lib/kubelet",))
    facts = await h.probe()
    c = plan_fixes(facts, only=frozenset({"kubelet-gate"}))[0][0]
    listing = await h.sh("ls -a /var/lib/kubelet; sha256sum /var/lib/kubelet/config.yaml")
    r = await apply_change(c, h.target, h.opts)
    assert r.exit_status == 1 and b"disk full" in r.stderr, r
    assert await h.sh("ls -a /var/lib/kubelet; sha256sum /var/lib/kubelet/config.yaml") == listing
    assert "systemctl restart kubelet" not in h.sim.events()


async def test_write_to_a_read_only_dir_leaves_the_file_whole(host):
    h = host("gpu-host-driver", readonly_dirs=("etc/default",))
    facts = await h.probe()
    c = plan_fixes(facts, only=frozenset({"iommu-cmdline"}))[0][0]
    listing = await h.sh("ls -a /etc/default; sha256sum /etc/default/grub")
    r = await apply_change(c, h.target, h.opts)
    assert r.exit_status == 1 and b"gpu-kata-installer:" in r.stderr, r
    assert await h.sh("ls -a /etc/default; sha256sum /etc/default/grub") == listing
    assert not any(e.startswith("grub-mkconfig") for e in h.sim.events())


async def test_file_changed_since_probe_is_not_overwritten(host):
    h = host("kubelet-no-gate")
    c = plan_fixes(await h.probe(), only=frozenset({"kubelet-gate"}))[0][0]
    cfg = h.sim.root / "var/lib/kubelet/config.yaml"
    cfg.write_text(cfg.read_text() + "# edited by someone else\n")
    before = cfg.read_bytes()
    r = await apply_change(c, h.target, h.opts)
    assert r.exit_status == 1 and b"changed since it was read" in r.stderr
    assert cfg.read_bytes() == before


def test_simulated_commands_refuse_to_run_outside_a_lab_host():
    for cmd in ("reboot", "modprobe", "update-grub", "systemctl"):
        r = subprocess.run([str(hosts.SIMBIN / cmd), "vfio-pci"], capture_output=True, text=True)
        assert r.returncode == 99 and "refused" in r.stderr, (cmd, r)
