"""Fix planning (pure) and the fix scripts' file semantics, exercised on copies of the
host trees with the local /bin/sh (live-system commands are skipped off `/`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from remote.fixes import FIX_NAMES, FixBlocked, kubelet_gate, plan_fixes, vfio_bind
from remote.fixes.base import LIB, FileView, ScriptBuilder, sha256
from remote.fixes.grub import add_args
from remote.probe import probe_local
from tests.fixtures.trees import OURS


def copy(tree: str, tmp: Path) -> Path:
    root = tmp / tree
    shutil.copytree(OURS / tree, root, symlinks=True)
    return root


def sh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)


def snap(root: Path) -> dict[str, bytes | str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(root))] = os.readlink(p)
        elif p.is_file():
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


EXPECTED_PLANS = {
    "gpu-vfio-ready": ([], []),
    "gpu-host-driver": (["iommu-cmdline", "nouveau-blacklist", "nvidia-driver-off",
                         "kubelet-gate", "reboot"], ["vfio-bind"]),
    "gpu-shared-group": ([], ["vfio-bind"]),
    "amd-iommu": (["nouveau-blacklist", "kubelet-gate"], []),
    "hgx-nvswitch": (["vfio-bind"], []),
    "kubelet-no-gate": (["kubelet-gate"], []),
    "consumer-gpu": (["iommu-cmdline", "nouveau-blacklist", "reboot"], ["vfio-bind"]),
    "cc-host": (["vfio-bind"], []),
    "cpu-only": ([], []),
    "cloud-gpu-guest": (["iommu-cmdline", "nouveau-blacklist", "nvidia-driver-off",
                         "kubelet-gate", "reboot"], ["vfio-bind"]),
    "rhel-iommu-off": (["iommu-cmdline", "nouveau-blacklist", "nvidia-driver-off",
                        "kubelet-gate", "reboot"], ["vfio-bind"]),
    "grace-gh200": ([], []),
    "k0s-worker": ([], ["kubelet-gate"]),  # k0s rewrites its kubelet config: by hand
    "microk8s-node": (["kubelet-gate"], []),
}


@pytest.mark.parametrize("tree", sorted(EXPECTED_PLANS))
def test_plans_per_tree(tree):
    changes, blocked = plan_fixes(probe_local(OURS / tree))
    assert ([c.name for c in changes], [b.fix for b in blocked]) == EXPECTED_PLANS[tree]
    assert all(c.name in FIX_NAMES for c in changes)
    for c in changes:
        assert c.preview.startswith(f"# {c.name} on ")
        assert c.apply_script.startswith("#!/bin/sh") and "ROOT=/\n" in c.apply_script
    assert [c.needs_consent for c in changes if c.name == "reboot"] in ([], [True])


def test_previews_are_exact():
    changes, _ = plan_fixes(probe_local(OURS / "kubelet-no-gate"))
    assert changes[0].preview == (
        "# kubelet-gate on gpu-node-06: set KubeletPodResourcesGet: true in the kubelet config "
        "and restart kubelet\n"
        "--- a/var/lib/kubelet/config.yaml\n+++ b/var/lib/kubelet/config.yaml\n"
        "@@ -22,6 +22,7 @@\n featureGates:\n   RotateKubeletServerCertificate: true\n"
        "   GracefulNodeShutdown: true\n+  KubeletPodResourcesGet: true\n"
        " fileCheckFrequency: 0s\n healthzBindAddress: 127.0.0.1\n healthzPort: 10248\n"
        "# then run:\n$ systemctl restart kubelet\n")
    amd = plan_fixes(probe_local(OURS / "rhel-iommu-off"))[0][0]
    assert '+GRUB_CMDLINE_LINUX="crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M rd.lvm.lv=rl/root ' \
           'intel_iommu=on"' in amd.preview
    assert "$ grubby --update-kernel=ALL --args=intel_iommu=on" in amd.preview


@pytest.mark.parametrize("tree", ["gpu-host-driver", "rhel-iommu-off", "kubelet-no-gate",
                                  "hgx-nvswitch", "cc-host", "cloud-gpu-guest", "amd-iommu",
                                  "microk8s-node"])
def test_apply_twice_equals_once_undo_restores_dry_run_touches_nothing(tree, tmp_path):
    root = copy(tree, tmp_path)
    s0 = snap(root)
    changes, _ = plan_fixes(probe_local(root), str(root))
    assert snap(root) == s0  # planning (the dry run) reads only
    for c in changes:
        r = sh(c.apply_script)
        assert r.returncode == 0, (c.name, r.stderr)
    s1 = snap(root)
    for c in changes:
        assert sh(c.apply_script).returncode == 0
    assert snap(root) == s1
    for c in reversed(changes):
        r = sh(c.undo_script)
        assert r.returncode == 0, (c.name, r.stderr)
    assert snap(root) == s0


def test_a_short_write_never_replaces_the_file(tmp_path):
    f = tmp_path / "conf"
    f.write_text("old\n")
    # printf "succeeds" but writes half: what a full disk can look like
    old, new = sha256("old\n"), sha256("new\n")
    script = (f"ROOT=/\n{LIB}\n"
              'printf() { if [ "${2-}" = "$GKI_NEW" ]; then command printf ne; '
              'else command printf "$@"; fi; }\n'
              f"GKI_NEW='new\n'\ngki_write {f} {old} {new} t\n")
    r = sh(script)
    assert r.returncode == 1 and "disk full" in r.stderr
    assert f.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "conf.gpu-kata-installer.t.bak"]


def test_existing_backup_is_never_overwritten(tmp_path):
    f = tmp_path / "conf"
    f.write_text("v1\n")
    bak = tmp_path / "conf.gpu-kata-installer.t.bak"
    bak.write_text("v0\n")
    v1, v2 = sha256("v1\n"), sha256("v2\n")
    r = sh(f"ROOT=/\n{LIB}\nGKI_NEW='v2\n'\ngki_write {f} {v1} {v2} t\n")
    assert r.returncode == 0 and bak.read_text() == "v0\n" and f.read_text() == "v2\n"


CASES = {
    "no map": ("a: 1\n", "a: 1\nfeatureGates:\n  KubeletPodResourcesGet: true\n"),
    "no final newline": ("a: 1", "a: 1\nfeatureGates:\n  KubeletPodResourcesGet: true\n"),
    "empty flow": ("featureGates: {}\nb: 2\n",
                   "featureGates:\n  KubeletPodResourcesGet: true\nb: 2\n"),
    "flow map": ("featureGates: {Foo: true}\n",
                 "featureGates: {Foo: true, KubeletPodResourcesGet: true}\n"),
    "block map": ("featureGates:\n    Foo: true\nz: 1\n",
                  "featureGates:\n    Foo: true\n    KubeletPodResourcesGet: true\nz: 1\n"),
    "false": ("featureGates:\n  KubeletPodResourcesGet: false  # off\nz: 1\n",
              "featureGates:\n  KubeletPodResourcesGet: true\nz: 1\n"),
    "crlf": ("featureGates:\r\n  Foo: true\r\n", "featureGates:\r\n  Foo: true\r\n"
             "  KubeletPodResourcesGet: true\r\n"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kubelet_gate_edit_never_duplicates_feature_gates(case):
    old, new = CASES[case]
    got = kubelet_gate.add_gate(old)
    assert got == new
    assert got.count("featureGates") == 1


def test_kubelet_gate_refuses_what_it_cannot_edit_safely():
    f = probe_local(OURS / "kubelet-no-gate")
    from dataclasses import replace
    dup = replace(f, kubelet_config="featureGates:\n  A: true\nfeatureGates:\n  B: true\n",
                  files={**f.files, "var/lib/kubelet/config.yaml":
                         "featureGates:\n  A: true\nfeatureGates:\n  B: true\n"})
    with pytest.raises(FixBlocked):
        kubelet_gate.plan(dup)
    assert kubelet_gate.plan(f, kubelet_version="v1.34.1") is None
    assert kubelet_gate.plan(f, kubelet_version="v1.31.0") is not None


@pytest.mark.parametrize("text", [
    "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)),
    "featureGates: &g {A: [*g]}\n",
], ids=["billion-laughs", "recursive-alias"])
def test_a_kubelet_config_alias_bomb_is_a_finding_and_blocks_the_fix(text):
    """Host files go through the same bounded loader as the answers: the check says what is
    wrong with the file, and the fix refuses to edit it."""
    from dataclasses import replace

    from installer.hosts.checks import check_kubelet_gate

    f = probe_local(OURS / "kubelet-no-gate")
    f = replace(f, kubelet_config=text, files={**f.files, f.kubelet_config_path: text})
    result = check_kubelet_gate(f, None)
    assert result.status == "warn" and f.kubelet_config_path in result.summary
    assert "aliases expand" in result.summary or "recursive alias" in result.summary
    with pytest.raises(FixBlocked, match="not valid YAML"):
        kubelet_gate.plan(f, kubelet_version="v1.31.0")


@pytest.mark.parametrize(("line", "result"), [
    ('GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="intel_iommu=on"'),
    ("GRUB_CMDLINE_LINUX='quiet'", "GRUB_CMDLINE_LINUX='quiet intel_iommu=on'"),
    ("GRUB_CMDLINE_LINUX=quiet", 'GRUB_CMDLINE_LINUX="quiet intel_iommu=on"'),
    ('GRUB_CMDLINE_LINUX="a b" # keep', 'GRUB_CMDLINE_LINUX="a b intel_iommu=on" # keep'),
    ('GRUB_CMDLINE_LINUX="$X a"', None),
    # a no-break space is no blank to sh: that line runs a command, it assigns nothing
    ('\u00a0GRUB_CMDLINE_LINUX="quiet"', 'GRUB_CMDLINE_LINUX="intel_iommu=on"'),
])
def test_grub_line_edits(line, result):
    f = probe_local(OURS / "gpu-host-driver")
    text = f.files["etc/default/grub"].replace('GRUB_CMDLINE_LINUX=""', line)
    from dataclasses import replace
    f = replace(f, files={**f.files, "etc/default/grub": text}, grub_default=text)
    b = ScriptBuilder("iommu-cmdline")
    view = FileView(f)
    if result is None:
        with pytest.raises(FixBlocked):
            add_args(b, f, view, ["intel_iommu=on"], "iommu-cmdline")
        return
    add_args(b, f, view, ["intel_iommu=on"], "iommu-cmdline")
    assert result in view.get("etc/default/grub").splitlines()


def test_grub_d_override_is_where_the_edit_goes():
    f = probe_local(OURS / "cloud-gpu-guest")
    c = plan_fixes(f)[0][0]
    # grub.d/50-cloudimg-settings.cfg sets only _DEFAULT, so GRUB_CMDLINE_LINUX in
    # /etc/default/grub is still the one that counts
    assert "+++ b/etc/default/grub\n" in c.preview


def test_vfio_bind_refuses_a_group_with_a_nic():
    with pytest.raises(FixBlocked, match="8086:1572"):
        vfio_bind.plan(probe_local(OURS / "gpu-shared-group"))


def _grace_on(driver: str | None, *, variant: bool = True):
    f = probe_local(OURS / "grace-gh200")
    return replace(f, nvgrace_available=variant,
                   pci_drivers=[d for d in f.pci_drivers if d != "nvgrace_gpu_vfio_pci"],
                   modules=[m for m in f.modules if m != "nvgrace_gpu_vfio_pci"],
                   devices=[replace(d, driver=driver) if d.is_gpu else d for d in f.devices])


def test_grace_gpus_are_bound_to_their_vfio_variant_and_kept_out_of_vfio_pci_ids():
    facts = _grace_on("nvidia")
    c = vfio_bind.plan(facts)
    assert c is not None and c.description == "bind 1 device(s) to nvgrace_gpu_vfio_pci now"
    assert "gki_bind 0009:01:00.0 nvgrace_gpu_vfio_pci" in c.apply_script
    assert "$ modprobe nvgrace_gpu_vfio_pci   (if [ ! -d " in c.preview
    assert "printf 'nvgrace_gpu_vfio_pci\\n' > /sys/bus/pci/devices/0009:01:00.0/" \
           "driver_override" in c.preview
    assert "ids=" not in c.preview and "modules-load.d" not in c.preview
    # already on either vfio driver: nothing to move, nothing to persist
    assert vfio_bind.plan(probe_local(OURS / "grace-gh200")) is None
    assert vfio_bind.plan(_grace_on("vfio-pci")) is None
    # without the variant in the kernel, vfio-pci it is (as the vfio-manager falls back)
    plain = vfio_bind.plan(_grace_on("nvidia", variant=False))
    assert plain is not None and "gki_bind 0009:01:00.0\n" in plain.apply_script
    assert "options vfio-pci ids=10de:2342" in plain.preview


def test_the_bind_library_binds_to_the_driver_it_is_given(tmp_path):
    """gki_bind's check-and-skip path on a tree: the device is already on the variant."""
    root = tmp_path / "g"
    shutil.copytree(OURS / "grace-gh200", root, symlinks=True)
    script = (f"ROOT={root}/\n{LIB}\n{vfio_bind.BIND_LIB}\n"
              "gki_bind 0009:01:00.0 nvgrace_gpu_vfio_pci\ngki_bind 0009:01:00.0\n")
    r = sh(script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "already on nvgrace_gpu_vfio_pci: 0009:01:00.0",
        f"skipped on a host tree ({root}/): bind 0009:01:00.0 to vfio-pci"]


def test_no_iommu_kernel_argument_is_planned_on_arm64():
    facts = replace(probe_local(OURS / "grace-gh200"), iommu_groups={})
    changes, blocked = plan_fixes(facts, only=frozenset({"iommu-cmdline"}))
    assert changes == [] and [b.fix for b in blocked] == ["iommu-cmdline"]
    assert "SMMU" in blocked[0].reason and "intel_iommu" not in blocked[0].remedy
