"""Consent on the lab: gpu-node-3 needs host fixes (IOMMU off, host driver loaded), and a
headless run that has no consent for them changes no byte on any host - not without --yes
(exit 2 before anything runs), not with --yes when the answers say `ask` and there is no
terminal to ask on, not when they say `skip` (then no fix is planned). Both exit 3: the
checks the fixes would have fixed still fail. The cluster is left as it was too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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
        return subprocess.run([sys.executable, "-m", "installer.cli", "--answers",
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
