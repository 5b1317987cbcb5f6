"""Every flag, before and after every subcommand, run in-process through
`installer.commands.cli.main`: a flag means the same wherever it stands, or is refused
(exit 2) naming itself, the command and the fix. `--dry-run uninstall --answers a.yaml --yes`
once ran a real uninstall: the sub-parser's own `--dry-run` default replaced the one given
before it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from installer.commands.cli import COMMANDS, _parser
from installer.commands.flags import APPLIES, FLAGS, Flag, label, resolve
from tests.headless.inprocess import run_cli

SUBCOMMANDS = [c for c in COMMANDS if c in APPLIES]


def value_of(flag: Flag, files: dict[str, str]) -> list[str]:
    """What the test gives a flag: a switch nothing, the others a file or word that is
    safe - answers whose kubeconfig is missing, the recorded facts, a captured host tree."""
    return {"--answers": [files["answers"]], "--facts": [files["facts"]],
            "--host-root": [files["tree"]], "--ignore": ["all"],
            "--kubeconfig": [files["missing"]], "--context": ["nope"],
            "--output": [str(Path(files["cwd"]) / "b.tgz")], "--host": ["127.0.0.1"],
            "--port": ["8123"]}.get(flag.name, [])


def base(command: str, files: dict[str, str]) -> dict[str, list[str]]:
    """Flags that take each command past its own required ones to a run that does something
    observable without a cluster: uninstall and the install dry-run on the recorded facts,
    `images` on the lab's stand-in charts."""
    on_facts = {"--answers": [files["answers"]], "--facts": [files["facts"]], "--dry-run": []}
    return {"uninstall": on_facts, "install": on_facts, "upgrade": on_facts,
            "check": {"--local": [], "--host-root": [files["tree"]]},
            "troubleshoot": {"--kubeconfig": [files["missing"]]},
            "status": {"--answers": [files["answers"]], "--kubeconfig": [files["missing"]]},
            "bundle": {"--kubeconfig": [files["missing"]]},
            "images": {"--answers": [files["local-charts"]]},
            }.get(command, {})


def argv_for(command: str, flag: Flag, position: str, files: dict[str, str]) -> list[str]:
    """The command's words with its base flags after them, and `flag` before or after."""
    words = command.split() if command in COMMANDS else []
    rest = [w for name, value in base(command, files).items() if name != flag.name
            for w in (name, *value)]
    positional = [files["answers"]] if command == "answers validate" else []
    given = [flag.name, *value_of(flag, files)]
    if position == "before":
        return [*given, *words, *rest, *positional]
    return [*words, *rest, *positional, *given]


def parsed(argv: list[str]) -> dict[str, object]:
    args = _parser().parse_args(argv)
    resolve(args)
    return vars(args)


def outcome(argv: list[str]) -> tuple[int, str, str]:
    """The exit code and output, with what differs between two identical runs (times)
    taken out."""
    code, out, err = run_cli(argv)
    return code, re.sub(r"\d+(\.\d+)?", "N", out), re.sub(r"\d+(\.\d+)?", "N", err)


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("flag", FLAGS, ids=lambda f: f.name)
@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_flag_means_the_same_before_and_after_every_subcommand_or_is_refused(
        isolated, command, flag, position):
    files = isolated
    argv = argv_for(command, flag, position, files)
    code, out, err = run_cli(argv)
    assert "Traceback" not in out + err, argv
    if flag.name not in APPLIES[command]:
        assert code == 2, (argv, code, err)
        assert f"{flag.shown}: does not apply to {label(command)}" in err, err
        assert f"fix: drop {flag.name}" in err, err
        return
    meaning = parsed(argv)
    given = value_of(flag, files)
    assert meaning[flag.dest] == (True if not given else flag.type(given[0])), meaning
    if position == "before":
        after = argv_for(command, flag, "after", files)
        assert meaning == parsed(after), argv
        assert outcome(argv) == outcome(after), argv
    if command == "uninstall":  # a dry run on the recorded cluster, wherever --dry-run is
        assert code == 0, (argv, out[-2000:], err)
    if command == "serve":  # up to listening (tests/headless/inprocess.py), then no further
        assert code == 0 and "would serve on 127.0.0.1:" in out, (argv, out, err)


@pytest.mark.parametrize("flag", FLAGS, ids=lambda f: f.name)
@pytest.mark.parametrize("command", ["install", "wizard"])
def test_every_flag_at_the_top_level_is_used_or_refused(isolated, command, flag):
    """Without a subcommand: the headless install (--answers) or the wizard. A flag neither
    uses (--kubeconfig, --output, ...) is refused; so is one of the install's (--yes,
    --json) when the wizard is what runs, instead of opening it and dropping the flag."""
    files = isolated
    if flag.name == "--wizard":  # what chooses between the two: tested by its own cases
        return
    start = ["--wizard"] if command == "wizard" else []
    argv = [*start, *argv_for(command, flag, "before", files)]
    code, out, err = run_cli(argv)
    assert "Traceback" not in out + err, argv
    if flag.name not in APPLIES[command]:
        assert code == 2 and f"{flag.shown}: does not apply to {label(command)}" in err, err
    elif command == "wizard":
        assert code == 2 and "the wizard needs a terminal" in err, err
    else:
        assert code == 0 and "dry-run complete: nothing was changed" in out, (argv, out, err)


def test_dry_run_before_uninstall_is_a_dry_run(isolated):
    """The defect itself: each of --dry-run, --json and -v given before `uninstall` reaches
    the run. Without --dry-run the same line is refused (recorded facts need one), so a
    dry-run lost on the way would fail here, not uninstall."""
    files = isolated
    args = ["uninstall", "--answers", files["answers"], "--facts", files["facts"], "--yes"]
    code, out, err = run_cli(["--dry-run", "--json", "-v", *args])
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["kind"] == "run-finished" and events[-1]["status"] == "dry-run"
    changes = [e for e in events if e["kind"] == "change"]
    assert changes and not any(e["applied"] for e in changes)
    code, out, err = run_cli(args)
    assert code == 2 and "--facts needs --dry-run" in err


def test_a_required_flag_may_stand_before_its_subcommand(isolated):
    files = isolated
    code, out, err = run_cli(["--answers", files["answers"], "--facts", files["facts"],
                              "--dry-run", "uninstall"])
    assert code == 0 and "dry-run complete" in out, err
    code, out, err = run_cli(["uninstall", "--dry-run"])
    assert code == 2 and "--answers: `uninstall` needs it" in err and "add --answers FILE" in err
    code, out, err = run_cli(["--local", "check", "--host-root", files["tree"], "--json"])
    assert code == 0 and json.loads(out), err
