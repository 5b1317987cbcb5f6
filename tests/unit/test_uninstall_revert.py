"""Uninstall and the host: the backups the fixes left are found by the probe, reverted byte
for byte with consent, listed as left in place without it; GPUs the v26.3.x vfio-manager
leaves on vfio-pci are unbound (or released by the revert's reboot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers, parse_answers
from installer.cluster.facts import Facts, ReleaseFacts
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.uninstall import build_uninstall_plan
from remote.fixes import plan_fixes
from remote.fixes.revert import BACKUP_DIRS, file_reverts, plan_revert
from remote.hostfacts import BACKUP_INFIX
from remote.probe import PROBE_SCRIPT, parse_probe, probe_local
from tests.fixtures.trees import OURS

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
ANSWERS = (EXAMPLES / "answers.yaml").read_text()
KATA_DRIVER_HOST = "gpu-node-2"  # a Kata node of the example answers


def sh(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every regular file outside the simulated kernel trees, by path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.relative_to(root).parts[0]
            not in ("sys", "proc", "dev")}


def fixed_tree(tmp_path: Path, tree: str = "gpu-host-driver") -> tuple[Path, dict[str, bytes]]:
    """A copy of a fixture host after the installer's fixes ran on it (files only), and its
    files' bytes from before."""
    root = tmp_path / tree
    shutil.copytree(OURS / tree, root, symlinks=True)
    before = tree_bytes(root)
    changes, _ = plan_fixes(probe_local(root), str(root), kubelet_version="v1.33.2")
    assert changes, "the fixture needs fixes"
    for c in changes:
        ran = sh(c.apply_script)
        assert ran.returncode == 0, ran.stderr
    return root, before


# --- the probe ----------------------------------------------------------------------------

def test_the_probe_reports_each_backup_with_its_fix_and_content():
    out = ("@probe 1\n@file etc/default/grub\n|GRUB_CMDLINE_LINUX=\"intel_iommu=on\"\n@end\n"
           "@backup etc/default/grub.gpu-kata-installer.iommu-cmdline.bak\n"
           "|GRUB_CMDLINE_LINUX=\"\"\n|# no newline\n@nonl\n@end\n"
           "@backup etc/modprobe.d/x.conf.gpu-kata-installer.nouveau-blacklist.absent\n@end\n"
           "@backup etc/odd-name.bak\n|x\n@end\n@done\n")
    f = parse_probe(out)
    assert [(b.path, b.fix, b.content) for b in f.backups] == [
        ("etc/default/grub", "iommu-cmdline", 'GRUB_CMDLINE_LINUX=""\n# no newline'),
        ("etc/modprobe.d/x.conf", "nouveau-blacklist", None)]
    assert f.files == {"etc/default/grub": 'GRUB_CMDLINE_LINUX="intel_iommu=on"\n'}
    assert f.complete


def test_a_backup_cut_short_is_not_taken_for_the_file_before():
    f = parse_probe("@probe 1\n@backup etc/default/grub.gpu-kata-installer.iommu-cmdline.bak\n"
                    "|GRUB_CMDLINE")
    assert f.backups == [] and not f.complete


def test_an_older_parser_reads_the_new_output_unchanged():
    """The tag is new: a parser that does not know it skips its lines (format 1 kept)."""
    new = ("@probe 1\n@backup etc/default/grub.gpu-kata-installer.iommu-cmdline.bak\n"
           "|@file etc/passwd\n@end\n@file etc/hostname\n|h1\n@end\n@done\n")
    old = "\n".join(ln for ln in new.splitlines() if not ln.startswith(("@backup", "|@", "@end"))
                    or ln == "@end")
    assert parse_probe(new).files == parse_probe(old).files == {"etc/hostname": "h1\n"}


def test_the_probe_looks_for_backups_in_every_folder_the_fixes_edit():
    loop = re.search(r"for d in (etc [^;]*?); do\n  for b in", PROBE_SCRIPT, re.S)
    assert loop is not None
    assert tuple(loop.group(1).replace("\\\n", " ").split()) == BACKUP_DIRS


def test_the_probe_finds_the_backups_real_fixes_leave(tmp_path):
    root, before = fixed_tree(tmp_path)
    f = probe_local(root)
    found = {(b.path, b.fix) for b in f.backups}
    assert ("etc/default/grub", "iommu-cmdline") in found
    assert ("etc/modprobe.d/gpu-kata-blacklist-nvidia.conf", "nvidia-driver-off") in found
    for b in f.backups:
        assert b.content == (before[b.path].decode() if b.path in before else None)
    on_disk = {str(p.relative_to(root)) for p in root.rglob(f"*{BACKUP_INFIX}*")}
    assert on_disk == {b.backup for b in f.backups}


# --- the revert ---------------------------------------------------------------------------

def test_the_revert_restores_every_file_byte_for_byte_and_removes_the_backups(tmp_path):
    root, before = fixed_tree(tmp_path)
    change = plan_revert(probe_local(root), str(root))
    assert change is not None and change.needs_reboot
    assert "--- a/etc/default/grub" in change.preview and "-GRUB_CMDLINE_LINUX" in change.preview
    assert "+++ /dev/null" in change.preview  # the blacklist file the fix created goes
    ran = sh(change.apply_script)
    assert ran.returncode == 0, ran.stderr
    assert tree_bytes(root) == before
    assert not list(root.rglob(f"*{BACKUP_INFIX}*"))
    assert plan_revert(probe_local(root), str(root)) is None  # nothing left to revert
    again = sh(change.apply_script)  # the same script, re-run: changes nothing
    assert again.returncode == 0 and tree_bytes(root) == before


def test_a_file_changed_since_the_probe_stops_the_whole_revert(tmp_path):
    root, _ = fixed_tree(tmp_path)
    change = plan_revert(probe_local(root), str(root))
    assert change is not None
    grub = root / "etc/default/grub"
    grub.write_text(grub.read_text() + "# the operator's own edit\n")
    ran = sh(change.apply_script)
    assert ran.returncode != 0 and "changed since it was read" in ran.stderr
    assert len(list(root.rglob(f"*{BACKUP_INFIX}*"))) == len(file_reverts(probe_local(root)))


def test_two_fixes_on_one_file_revert_to_the_file_before_the_first(tmp_path):
    root = tmp_path / "h"
    shutil.copytree(OURS / "gpu-host-driver", root, symlinks=True)
    grub = root / "etc/default/grub"
    original = grub.read_bytes()
    (root / "etc/default/grub.gpu-kata-installer.iommu-cmdline.bak").write_bytes(original)
    grub.write_bytes(original + b'GRUB_CMDLINE_LINUX="intel_iommu=on"\n')
    (root / "etc/default/grub.gpu-kata-installer.vfio-bind.bak").write_bytes(grub.read_bytes())
    grub.write_bytes(original + b'GRUB_CMDLINE_LINUX="intel_iommu=on vfio-pci.ids=10de:2330"\n')
    (r,) = file_reverts(probe_local(root))
    assert r.fixes == ("vfio-bind", "iommu-cmdline") and r.restored == original.decode()
    change = plan_revert(probe_local(root), str(root))
    assert change is not None
    assert change.apply_script.index("grub vfio-bind") < \
        change.apply_script.index("grub iommu-cmdline")
    assert sh(change.apply_script).returncode == 0 and grub.read_bytes() == original


# --- the uninstall plan -------------------------------------------------------------------

def facts_with(host_tree: Path | None, *, operator: str | None = None) -> Facts:
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    hosts = dict(facts.hosts)
    if host_tree is not None:
        hosts[KATA_DRIVER_HOST] = probe_local(host_tree)
    cluster = facts.cluster
    assert cluster is not None
    if operator:
        cluster = replace(cluster, releases=[ReleaseFacts(
            "gpu-operator", "gpu-operator", "gpu-operator", operator, "deployed")])
    return replace(facts, cluster=cluster, hosts=hosts)


def host_steps(plan) -> list:
    return [s for s in plan.steps if s.id.startswith("revert/")]


def test_without_consent_the_plan_lists_the_host_changes_and_changes_no_host(tmp_path):
    root, _ = fixed_tree(tmp_path)
    plan = build_uninstall_plan(load_answers(EXAMPLES / "answers.yaml"), facts_with(root))
    (step,) = host_steps(plan)
    assert step.id == f"revert/{KATA_DRIVER_HOST}" and step.changes == ()
    assert "/etc/default/grub (iommu-cmdline)" in step.note
    assert not [c for c in plan.changes if c.kind == "host"]
    (said,) = [w for w in plan.warnings if w.startswith(KATA_DRIVER_HOST)]
    assert "host changes left in place: " in said and "--revert-hosts" in said


@pytest.mark.parametrize("how", ["flag", "answers"])
def test_with_consent_only_backed_up_hosts_get_a_revert_then_a_reboot(tmp_path, how):
    root, _ = fixed_tree(tmp_path)
    text = ANSWERS.replace("revertHosts: false", "revertHosts: true") if how == "answers" \
        else ANSWERS
    answers = parse_answers(text, "answers.yaml")
    plan = build_uninstall_plan(answers, facts_with(root), revert_hosts=how == "flag")
    steps = host_steps(plan)
    assert [s.id for s in steps] == [f"revert/{KATA_DRIVER_HOST}",
                                     f"revert/{KATA_DRIVER_HOST}/reboot"]  # gpu-node-1: none
    ids = [s.id for s in plan.steps]
    assert ids.index("uninstall/kata-deploy") < ids.index(steps[0].id)  # charts go first
    revert, boot = (s.changes[0] for s in steps)
    assert revert.kind == "host" and revert.ask_first and revert.detail["fix"] == "revert"
    assert "/etc/default/grub" in revert.detail["files"]
    assert boot.detail["fix"] == "reboot" and "the kernel command line" in boot.description
    data = json.loads(json.dumps(plan.to_dict()))  # the dry-run's JSON
    step = next(s for s in data["steps"] if s["id"] == f"revert/{KATA_DRIVER_HOST}")
    assert step["changes"][0]["detail"]["preview"].startswith("# revert on ")
    assert "--- a/etc/default/grub" in step["changes"][0]["detail"]["preview"]


def test_a_host_the_installer_never_changed_gets_no_step():
    plan = build_uninstall_plan(load_answers(EXAMPLES / "answers.yaml"), facts_with(None),
                                revert_hosts=True)
    assert host_steps(plan) == [] and not [c for c in plan.changes if c.kind == "host"]


@pytest.mark.parametrize(("operator", "left"), [("v26.3.1", True), ("v26.7.0", False)])
def test_gpus_the_defective_vfio_manager_leaves_are_unbound_with_consent(operator, left):
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = facts_with(OURS / "gpu-vfio-ready", operator=operator)  # GPUs on vfio-pci
    told = build_uninstall_plan(answers, facts)
    said = [w for w in told.warnings if "on vfio-pci after it is removed" in w]
    assert bool(said) == left
    plan = build_uninstall_plan(answers, facts, revert_hosts=True)
    steps = host_steps(plan)
    if not left:
        assert steps == []
        return
    # no backups on these hosts (both Kata nodes): no reboot, the GPUs are unbound instead
    assert [s.title for s in steps] == [f"Unbind {n}'s GPUs from vfio-pci"
                                        for n in ("gpu-node-1", KATA_DRIVER_HOST)]
    change = steps[1].params.fix.change
    assert "gki_release 0000:1b:00.0" in change.apply_script and not change.needs_reboot
    assert "unbind 0000:1b:00.0" in change.preview


def test_a_revert_with_a_reboot_says_the_reboot_releases_the_gpus(tmp_path):
    root, _ = fixed_tree(tmp_path)
    facts = probe_local(root)
    on_vfio = replace(facts, devices=[replace(d, driver="vfio-pci") if d.is_gpu else d
                                      for d in facts.devices])
    change = plan_revert(on_vfio, release_vfio=True)
    assert change is not None and change.needs_reboot
    assert "0000:1b:00.0, 0000:43:00.0): the reboot releases them" in change.preview
    assert "gki_release" not in change.apply_script
    unbound = plan_revert(replace(on_vfio, backups=[]), release_vfio=True)
    assert unbound is not None and "gki_release 0000:1b:00.0" in unbound.apply_script


def test_the_kata_hosts_are_probed_first_and_only_the_ones_in_the_cluster():
    answers = parse_answers(ANSWERS.replace("choice: traditional", "choice: kata").replace(
        "    - name: gpu-node-1\n", "    - name: gone-node\n      choice: kata\n"
        "    - name: gpu-node-1\n"), "answers.yaml")
    facts = replace(facts_with(None), hosts={})
    plan = build_uninstall_plan(answers, facts)
    (probe,) = plan.phase("gather")
    assert plan.steps[0] is probe and probe.id == "probe/hosts"
    assert [t.node for t in probe.params.targets] == ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
    assert build_uninstall_plan(answers, facts_with(OURS / "cpu-only")).phase("gather") == ()


@pytest.mark.parametrize("consent", [False, True])
def test_refused_ssh_credentials_stop_an_uninstall_only_when_it_was_asked_to_revert(consent):
    """Without a revert the hosts are read only to list what is left: a host SSH refuses is
    said and the uninstall goes on. Asked to revert, it stops before anything changes."""
    import asyncio

    from installer.cluster.facts import ProbeFailure
    from installer.engine.events import Recorder
    from installer.engine.runner import Context, Engine
    from installer.errors import UserError

    facts = facts_with(None)
    facts = replace(facts, hosts={**facts.hosts,
                                  KATA_DRIVER_HOST: ProbeFailure("auth", "permission denied")})

    class Yes:
        async def confirm(self, *_a, **_k) -> bool:
            return True

    rec = Recorder()
    engine = Engine(load_answers(EXAMPLES / "answers.yaml"),
                    Context(dry_run=True, sinks=[rec], decider=Yes()), {},
                    lambda a, f: build_uninstall_plan(a, f, revert_hosts=consent))
    if consent:
        with pytest.raises(UserError, match="SSH refused the credentials"):
            asyncio.run(engine.run(facts))
    else:
        assert asyncio.run(engine.run(facts)) == 0
        assert any(KATA_DRIVER_HOST in w and "could not be read" in w
                   for w in engine.plan.warnings)
