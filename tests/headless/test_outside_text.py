"""Text from hosts and the cluster on a pipe (`installer.commands.cli.main` in-process): the plain
output shows it as data - no raw control byte, markup literal - and JSON keeps it whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.cluster.podread import PodReading
from installer.commands import cli, troubleshoot
from installer.diagnosis.rules import EventInfo, State
from installer.redact import Redactor
from tests.fixtures.hostile import HOSTILE, RAW, SHOWN, hostile_facts, hostile_tree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"
WIDE = "400"  # one finding, one line


@pytest.fixture(autouse=True)
def _state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", WIDE)


def test_a_headless_dry_run_shows_a_label_value_as_data_and_json_keeps_it(tmp_path, capsys):
    facts = hostile_facts(tmp_path)
    args = ["--answers", str(EXAMPLES / "answers.yaml"), "--facts", str(facts), "--dry-run",
            "--verbose"]
    # A recorded facts file is held to the API's own rule for label values, so this one is
    # refused - and the refusal quotes the value as data, on the terminal and in JSON mode.
    for extra in ([], ["--json"]):
        assert cli.main([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert "is not a Kubernetes label value" in err
        assert "\\x1b[2J\\x1b]0;pwned" in err  # escaped, as the value was written
        assert not RAW.search(err)


def _strings(data):
    """Every string in decoded JSON."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict | list):
        for value in data.values() if isinstance(data, dict) else data:
            yield from _strings(value)


def test_troubleshoot_on_a_pipe_shows_event_messages_and_log_lines_as_data(monkeypatch,
                                                                          capsys):
    state = State(
        events=(EventInfo("gpu-operator", "Pod/cuda-sample", "FailedScheduling",
                          f"0/3 nodes: Insufficient nvidia.com/pgpu {HOSTILE}"),),
        pods=(PodReading("default", "cuda-sample", "Failed", node="gpu-node-1",
                         labels={"app": "cuda"},
                         log_tail=(f"cudaErrorSystemNotReady error 802 {HOSTILE}",)),),
        nvswitch_nodes=("gpu-node-1",))

    async def collect(answers_path, kubeconfig, context):
        return troubleshoot.Collected(state, None, None, Redactor(), None)

    monkeypatch.setattr(troubleshoot, "collect", collect)
    assert cli.main(["troubleshoot", "--kubeconfig", "/dev/null"]) == 1
    out = capsys.readouterr().out
    assert f"event Pod/cuda-sample FailedScheduling: 0/3 nodes: Insufficient nvidia.com/pgpu " \
        f"{SHOWN}" in out
    assert f"default/cuda-sample: cudaErrorSystemNotReady error 802 {SHOWN}" in out
    assert not RAW.search(out)
    assert cli.main(["troubleshoot", "--kubeconfig", "/dev/null", "--json"]) == 1
    evidence = [e for f in json.loads(capsys.readouterr().out) for e in f["evidence"]]
    assert f"default/cuda-sample: cudaErrorSystemNotReady error 802 {HOSTILE}" in evidence


def test_check_local_shows_a_hosts_strings_as_data(tmp_path, capsys):
    tree = hostile_tree(tmp_path)
    cli.main(["check", "--local", "--host-root", str(tree)])
    out = capsys.readouterr().out
    assert f"Host checks: gpu{SHOWN}" in out
    assert f"BOOT_IMAGE=/vmlinuz {SHOWN}" in out
    assert not RAW.search(out)
    cli.main(["check", "--local", "--host-root", str(tree), "--json"])
    evidence = [e for r in json.loads(capsys.readouterr().out) for e in r["evidence"]]
    assert any(f"BOOT_IMAGE=/vmlinuz {HOSTILE.rstrip()}" in e for e in evidence)
