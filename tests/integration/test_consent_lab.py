"""Consent on the lab: gpu-node-3 needs host fixes (IOMMU off, host driver loaded), and a
headless run that has no consent for them changes no byte on any host - not without --yes
(exit 2 before anything runs), not with --yes when the answers say `ask` and there is no
terminal to ask on, not when they say `skip` (then no fix is planned). Both exit 3: the
checks the fixes would have fixed still fail. The cluster is left as it was too. And an
uninstall asked for as a dry run is one, wherever --dry-run stands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration import cli_run
from tests.integration.conftest import tree_digest
from tests.lab.answers import lab_answers

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def host_bytes(lab) -> dict[str, str]:
    return {f"{node.name}:{rel}": digest for node in lab.nodes
            for rel, digest in tree_digest(Path(node.host_root)).items()}


def cluster_state(lab) -> tuple[list[str], dict[str, dict[str, str]]]:
    releases = sorted(r["name"] for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout))
    nodes = json.loads(lab.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return releases, {n["metadata"]["name"]: n["metadata"]["labels"] for n in nodes}


CASES = [  # (fix policy, flags, exit code, what it says)
    ("apply", (), 2, "refusing to change the cluster without consent"),
    ("ask", ("--yes",), 3, "'iommu-cmdline' was not allowed (policy ask)"),
    ("skip", ("--yes",), 3, "prerequisite checks failed"),
]


def test_no_host_changes_without_consent(lab_bare, tmp_path):
    """One bare lab for the three cases (none of them changes it: that is the point)."""
    lab = lab_bare
    env = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state")}

    def installer(policy: str, *flags: str) -> subprocess.CompletedProcess:
        answers = tmp_path / f"answers-{policy}.yaml"
        answers.write_text(yaml.safe_dump(lab_answers(lab.info, fixes=policy)))
        return subprocess.run([sys.executable, "-m", "installer", "--answers",
                               str(answers), *flags], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)

    hosts_before, cluster_before = host_bytes(lab), cluster_state(lab)
    assert any(k.startswith("gpu-node-3:") for k in hosts_before)
    plan = installer("apply", "--dry-run")
    assert "[fix/gpu-node-3/iommu-cmdline]" in plan.stdout, plan.stdout[-3000:]
    for policy, flags, code, words in CASES:
        out = installer(policy, *flags)
        assert out.returncode == code, (policy, out.stdout[-3000:] + out.stderr[-2000:])
        assert words in out.stdout + out.stderr, policy
        assert "Traceback" not in out.stderr, policy
        assert host_bytes(lab) == hosts_before, policy
        assert cluster_state(lab) == cluster_before, policy


def test_dry_run_before_uninstall_leaves_an_installed_lab_as_it_is(lab_bare, tmp_path):
    """`--dry-run uninstall --answers A --yes` once ran a real uninstall (the sub-parser's
    default replaced the --dry-run given before it). After a real install, that line and the
    other flags before the subcommand (--json, -v) preview the uninstall and change nothing:
    both releases and every node label stay; the same line after the subcommand agrees."""
    lab = lab_bare
    answers = cli_run.write_answers(lab, tmp_path)
    done = cli_run.installer(lab, tmp_path, "--answers", str(answers), "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    installed = cluster_state(lab)
    assert installed[0] == ["gpu-operator", "kata-deploy"]
    for argv in (["--dry-run", "--json", "-v", "uninstall", "--answers", str(answers), "--yes"],
                 ["uninstall", "--answers", str(answers), "--yes", "--dry-run", "--json"]):
        out = cli_run.installer(lab, tmp_path, *argv)
        assert out.returncode == 0, (argv, out.stdout[-3000:] + out.stderr[-2000:])
        events = [json.loads(line) for line in out.stdout.splitlines()]
        assert events[-1]["kind"] == "run-finished" and events[-1]["status"] == "dry-run"
        planned = {e["path"] for e in events if e["kind"] == "change"}
        assert {"uninstall/gpu-operator", "uninstall/kata-deploy"} <= planned, planned
        assert not any(e["applied"] for e in events if e["kind"] == "change")
        assert cluster_state(lab) == installed, argv
