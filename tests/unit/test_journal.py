"""A journal on disk that is not a journal (garbage, truncated JSON, binary, entries of the
wrong type) is set aside with a warning and the run plans from its facts; a last line cut
short by a kill is dropped quietly; a journal that cannot be written is a UserError naming
it. Never a traceback, and never again on the next run."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.events import Recorder, StepFinished, WarningEvent
from installer.engine.journal import Journal
from installer.engine.plan import build_plan
from installer.engine.runner import Context, Engine
from installer.errors import EXIT_BAD_INPUT, EXIT_OK, UserError
from tests.unit.test_engine import World, Yes

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
STEP = json.dumps({"at": 1.0, "event": "step-done", "step": "install/kata-deploy",
                   "fingerprint": "f"})

CORRUPT = {
    "garbage line": f"{STEP}\nthis is not json at all\n".encode(),
    "truncated JSON in the middle": f'{STEP}\n{{"at": 2.0, "ev\n{STEP}\n'.encode(),
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\n",
    "a list, not an object": b"[1, 2, 3]\n",
    "a number": b"42\n",
    "step not a string": b'{"event": "step-done", "step": ["install/kata-deploy"]}\n',
    "step missing": b'{"event": "step-done"}\n',
    "unknown event": b'{"event": "reboot-everything"}\n',
    "null": b"null\n",
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_journal_is_set_aside_with_a_warning_and_the_next_one_is_clean(
        tmp_path, content):
    path = tmp_path / "journal" / "abc.jsonl"
    path.parent.mkdir()
    path.write_bytes(content)
    journal = Journal(path)
    assert journal.resumed == set()
    (aside,) = path.parent.glob("abc.jsonl.corrupt-*")
    assert aside.read_bytes() == content  # kept for whoever wants to look
    assert not path.exists()
    assert f"the journal {path} was corrupt" in journal.notice and aside.name in journal.notice
    journal.step_done("label/gpu-node-1", "f")
    again = Journal(path)
    assert again.resumed == {"label/gpu-node-1"} and again.notice == ""


def test_a_last_line_cut_short_by_a_kill_is_dropped_not_corruption(tmp_path):
    path = tmp_path / "abc.jsonl"
    path.write_text(f'{STEP}\n{{"at": 2.0, "event": "step-do')
    journal = Journal(path)
    assert journal.resumed == {"install/kata-deploy"} and journal.notice == ""
    journal.step_done("label/gpu-node-1", "f")  # does not join the cut-short line
    assert Journal(path).resumed == {"install/kata-deploy", "label/gpu-node-1"}
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_a_corrupt_journal_warns_and_the_run_plans_from_the_facts(tmp_path):
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})
    path = tmp_path / "abc.jsonl"
    path.write_bytes(CORRUPT["binary"])
    rec = Recorder()
    world = World()
    ctx = Context(dry_run=False, sinks=[rec], decider=Yes(), journal=Journal(path))
    code = asyncio.run(Engine(answers, ctx, world.executors()).run(facts))
    assert code == EXIT_OK
    warning = rec.of(WarningEvent)[0]
    assert warning.path == "journal" and "was corrupt (not UTF-8 text" in warning.message
    planned = [c.target for c in build_plan(answers, facts).changes]
    assert world.changed == planned  # every planned change made; none taken as resumed
    assert not any("interrupted run" in e.message for e in rec.of(StepFinished))
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert entries[-1]["event"] == "run-complete"


def test_a_journal_directory_in_the_way_or_unwritable_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(UserError) as err:
        Journal(blocked / "journal" / "abc.jsonl")
    assert err.value.exit_code == EXIT_BAD_INPUT
    text = str(err.value)
    assert f"{blocked / 'journal'}: a file is in the way of a directory" in text
    assert "fix: point XDG_STATE_HOME" in text

    path = tmp_path / "abc.jsonl"
    journal = Journal(path)
    os.mkdir(path)  # what it appends to is no longer a file
    with pytest.raises(UserError) as err:
        journal.step_done("label/gpu-node-1", "f")
    assert f"{path}: the journal cannot be written: is a directory" in str(err.value)
    assert "nothing done is done twice" in str(err.value)
