"""Consent on the lab: gpu-node-3 needs host fixes (IOMMU off, host driver loaded), and a
headless run that has no consent for them changes no byte on any host - not without --yes
(exit 2 before anything runs), not with --yes when the answers say `ask` and there is no
terminal to ask on, not when they say `skip` (no fix is planned then). Both exit 3: the
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


@pytest.mark.parametrize(("policy", "flags", "code", "words"), [
    ("apply", (), 2, "refusing to change the cluster without consent"),
    ("ask", ("--yes",), 3, "'iommu-cmdline' was not allowed (policy ask)"),
    ("skip", ("--yes",), 3, "prerequisite checks failed"),
], ids=["no-yes", "ask-without-a-terminal", "skip"])
def test_no_host_changes_without_consent(lab_bare, tmp_path, policy, flags, code, words):
    lab = lab_bare
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(lab_answers(lab.info, fixes=policy)))
    env = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state")}
    hosts_before, cluster_before = host_bytes(lab), cluster_state(lab)
    assert any(k.startswith("gpu-node-3:") for k in hosts_before)
    plan = subprocess.run([sys.executable, "-m", "installer.cli", "--answers", str(answers),
                           "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    # planned unless the policy is skip: then the plan keeps the failing checks instead
    planned = "[fix/gpu-node-3/iommu-cmdline]" in plan.stdout
    assert planned == (policy != "skip"), plan.stdout[-3000:]
    out = subprocess.run([sys.executable, "-m", "installer.cli", "--answers", str(answers),
                          *flags], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL)
    assert out.returncode == code, out.stdout[-3000:] + out.stderr[-2000:]
    assert words in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert host_bytes(lab) == hosts_before
    assert cluster_state(lab) == cluster_before
