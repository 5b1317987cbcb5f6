"""Flag fuzzing: argv lists built from the CLI's real subcommands and flags, files that exist
or not, and junk, run in-process through `installer.cli.main`. Whatever the operator types,
the answer is a message and a documented exit code - never a traceback.

Nothing here can reach a cluster: every kubeconfig on offer is missing or not a kubeconfig.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.cli import _parser, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"
DOCUMENTED = {0, 1, 2, 3, 130}


@dataclass(frozen=True)
class Command:
    """One (sub)command of the real parser: the words that reach it, its options (each with
    whether it takes a value) and how many positional arguments it wants."""

    path: tuple[str, ...]
    options: tuple[tuple[str, bool], ...]
    required: tuple[tuple[str, bool], ...]
    positionals: int


def _commands() -> list[Command]:
    """Read from the parser itself, so a new flag or subcommand is fuzzed without touching
    this test."""
    found: list[Command] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        options, required, positionals = [], [], 0
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif isinstance(action, argparse._HelpAction):
                continue  # --help answers 0 before anything runs: only the soup draws it
            elif action.option_strings:
                options += [(o, action.nargs != 0) for o in action.option_strings]
                if action.required:
                    required.append((action.option_strings[0], action.nargs != 0))
            else:
                positionals += 1
        if not any(isinstance(a, argparse._SubParsersAction) and a.required
                   for a in parser._actions):
            found.append(Command(path, tuple(options), tuple(required), positionals))

    walk(_parser(), ())
    return found


COMMANDS = _commands()
FLAGS = sorted({o for c in COMMANDS for o, _ in c.options} | {"-h", "--help"})
WORDS = sorted({w for c in COMMANDS for w in c.path})


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    """The values a flag may get: good and bad answers, facts, a directory, nothing at all."""
    tmp = tmp_path_factory.mktemp("flags")
    answers = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    answers["cluster"]["kubeconfig"] = str(tmp / "no-kubeconfig")
    (tmp / "answers.yaml").write_text(yaml.safe_dump(answers))
    (tmp / "bad.yaml").write_text("apiVersion: nope\nssh: {port: many}\n")
    (tmp / "dir").mkdir()
    return {"answers": str(tmp / "answers.yaml"), "bad": str(tmp / "bad.yaml"),
            "facts": str(EXAMPLES / "facts.yaml"), "dir": str(tmp / "dir"),
            "missing": str(tmp / "missing.yaml"), "tree": str(ROOT / "tests/fixtures/hosts/"
                                                                "gpu-vfio-ready"),
            "state": str(tmp / "state"), "cwd": str(tmp)}


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) as the console script runs it, with its exit code (argparse's SystemExit
    included) and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), mock.patch.object(sys, "stdin",
                                                                         io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else -1)
    return code, out.getvalue(), err.getvalue()


junk = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)


def values(files: dict[str, str]) -> st.SearchStrategy[str]:
    """Mostly files that exist (so runs get past argparse), else junk and dash-words."""
    paths = [v for k, v in files.items() if k not in ("state", "cwd")]
    return st.one_of(st.sampled_from(paths), st.sampled_from(paths), st.sampled_from(paths),
                     junk, st.sampled_from(["all", "0", "-", "--"]))


@st.composite
def argvs(draw, files: dict[str, str]) -> list[str]:
    """Mostly well-formed: a real command path, some of its options with values where they
    take one, its positionals, now and then a junk word; one in ten plain token soup."""
    value = values(files)
    if draw(st.integers(0, 9)) == 0:
        return draw(st.lists(st.one_of(st.sampled_from(FLAGS), st.sampled_from(WORDS), value),
                             max_size=8))
    command = draw(st.sampled_from(COMMANDS))
    argv = list(command.path)
    chosen = draw(st.lists(st.sampled_from(command.options), max_size=5, unique=True)
                  if command.options else st.just([]))
    for option, takes_value in [*command.required, *chosen]:
        argv += [option, draw(value)] if takes_value else [option]
    argv += [draw(value) for _ in range(command.positionals)]
    if draw(st.booleans()) and draw(st.booleans()):
        argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(junk, st.sampled_from(FLAGS))))
    return argv


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_argv_gets_a_message_and_a_documented_exit_code(files, data):
    argv = data.draw(argvs(files))
    env = {"XDG_STATE_HOME": files["state"], "KUBECONFIG": files["missing"]}
    with mock.patch.dict(os.environ, env):
        cwd = os.getcwd()
        os.chdir(files["cwd"])  # a default bundle path would land here
        try:
            code, out, err = run_cli(argv)
        finally:
            os.chdir(cwd)
    assert code in DOCUMENTED, (argv, code, err)
    assert "Traceback" not in out + err, argv
    if code == 2:
        assert "error:" in err, (argv, err)  # bad input always says what is wrong
    elif code != 0:
        assert (out + err).strip(), (argv, code)  # a failure always says why


def test_the_fuzzer_reaches_every_subcommand_and_exit_code(files):
    """The vocabulary is the parser's own, and the outcomes it can reach span the codes."""
    assert {"uninstall", "answers", "check", "troubleshoot", "bundle", "validate"} <= set(WORDS)
    assert {"--answers", "--yes", "--dry-run", "--kubeconfig", "--host-root"} <= set(FLAGS)
    with mock.patch.dict(os.environ, {"XDG_STATE_HOME": files["state"]}):
        seen = {run_cli(argv)[0] for argv in (
            ["--answers", files["answers"], "--facts", files["facts"], "--dry-run"],
            ["--answers", files["bad"]],
            ["check", "--local", "--host-root", files["tree"] + "/../gpu-host-driver"])}
    assert seen == {0, 2, 3}
