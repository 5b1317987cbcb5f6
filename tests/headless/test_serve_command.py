"""`serve` up to listening, in-process (tests/headless/inprocess.py stops it there): what each
browser session will run, and the files it refuses before a browser ever connects."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.headless.inprocess import run_cli


def test_each_session_runs_the_wizard_with_serves_flags(isolated):
    files = isolated
    code, out, err = run_cli(["serve", "--answers", files["answers"], "--facts", files["facts"],
                              "--kubeconfig", files["missing"], "--context", "lab",
                              "--port", "8123"])
    assert code == 0, err
    where, _, command = out.strip().partition(": ")
    assert where == "would serve on 127.0.0.1:8123"
    argv = shlex.split(command)
    assert argv[1:4] == ["-m", "screens.cli", "--wizard"]
    assert argv[4:] == ["--answers", str(Path(files["answers"]).resolve()),
                        "--facts", str(Path(files["facts"]).resolve()),
                        "--kubeconfig", files["missing"], "--context", "lab"]


def test_a_bad_answers_file_is_refused_before_serving(isolated):
    code, out, err = run_cli(["serve", "--answers", isolated["bad"]])
    assert code == 2 and "would serve" not in out
    assert "error:" in err and "Traceback" not in err


def test_an_outside_address_is_served_only_with_allow_remote(isolated):
    code, out, err = run_cli(["serve", "--host", "0.0.0.0"])
    assert code == 2 and "add --allow-remote" in err and out == ""
    code, out, err = run_cli(["serve", "--host", "0.0.0.0", "--allow-remote"])
    assert code == 0 and out.startswith("would serve on 0.0.0.0:8000: "), err
