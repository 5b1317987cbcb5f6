"""Flag fuzzing: argv lists built from the CLI's real subcommands and flags, files that exist
or not, and junk, run in-process through `installer.commands.cli.main`. Whatever the operator types,
the answer is a message and a documented exit code - never a traceback.

Nothing here can reach a cluster: every kubeconfig on offer is missing or not a kubeconfig.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.commands.cli import _parser
from installer.commands.flags import APPLIES, FLAGS, REQUIRED
from tests.headless.inprocess import run_cli

DOCUMENTED = {0, 1, 2, 3, 130}
TAKES_VALUE = {f.name: f.metavar is not None for f in FLAGS}


@dataclass(frozen=True)
class Command:
    """One (sub)command of the real parser: the words that reach it, the options it uses and
    the ones it must refuse (each with whether it takes a value), and how many positional
    arguments it wants."""

    path: tuple[str, ...]
    options: tuple[tuple[str, bool], ...]
    refused: tuple[tuple[str, bool], ...]
    required: tuple[tuple[str, bool], ...]
    positionals: int


def _commands() -> list[Command]:
    """Read from the parser itself and the flags' table, so a new flag or subcommand is
    fuzzed without touching this test."""
    found: list[Command] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        positionals = 0
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif not action.option_strings:
                positionals += 1
        if not any(isinstance(a, argparse._SubParsersAction) and a.required
                   for a in parser._actions):
            names = [" ".join(path)] if path else ["install", "wizard"]
            used = {o for n in names for o in APPLIES[n]}
            options = [o for f in FLAGS for o in f.names if f.name in used]
            found.append(Command(
                path, tuple((o, TAKES_VALUE[_flag(o)]) for o in options),
                tuple((f.name, TAKES_VALUE[f.name]) for f in FLAGS if f.name not in used),
                tuple((o, TAKES_VALUE[o]) for n in names for o in REQUIRED.get(n, ())),
                positionals))

    walk(_parser(), ())
    return found


def _flag(option: str) -> str:
    return next(f.name for f in FLAGS if option in f.names)


COMMANDS = _commands()
FLAGS_TYPED = sorted({o for f in FLAGS for o in f.names} | {"-h", "--help"})
WORDS = sorted({w for c in COMMANDS for w in c.path})


junk = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)


def values(files: dict[str, str]) -> st.SearchStrategy[str]:
    """Mostly files that exist (so runs get past argparse), else junk and dash-words."""
    paths = [v for k, v in files.items() if k not in ("state", "cwd")]
    return st.one_of(st.sampled_from(paths), st.sampled_from(paths), st.sampled_from(paths),
                     junk, st.sampled_from(["all", "0", "-", "--"]))


@st.composite
def argvs(draw, files: dict[str, str]) -> tuple[list[str], set[tuple[str, str]]]:
    """Mostly well-formed: a real command path, its required options and some others - now
    and then one it must refuse - each with a value where it takes one and each before a
    word of the path or after it, then its positionals, now and then a junk word; one in ten
    plain token soup. Also which flags stood where ("before" or "after" the subcommand)."""
    value = values(files)
    if draw(st.integers(0, 9)) == 0:
        return draw(st.lists(st.one_of(st.sampled_from(FLAGS_TYPED), st.sampled_from(WORDS),
                                       value), max_size=8)), set()
    command = draw(st.sampled_from(COMMANDS))
    pick = [st.sampled_from(command.options)] * 3 if command.options else []
    refused = [st.sampled_from(command.refused)] if command.refused else []
    chosen = draw(st.lists(st.one_of(*pick, *refused), max_size=5, unique=True))
    slots: list[list[str]] = [[] for _ in range(len(command.path) + 1)]
    placed: set[tuple[str, str]] = set()
    for option, takes_value in [*command.required, *chosen]:
        slot = draw(st.integers(0, len(command.path)))
        slots[slot] += [option, draw(value)] if takes_value else [option]
        if command.path:
            placed.add((_flag(option), "after" if slot == len(command.path) else "before"))
    argv = [w for word, slot in zip((*command.path, None), slots, strict=True)
            for w in (*slot, word) if w is not None]
    argv += [draw(value) for _ in range(command.positionals)]
    if draw(st.booleans()) and draw(st.booleans()):
        argv.insert(draw(st.integers(0, len(argv))),
                    draw(st.one_of(junk, st.sampled_from(FLAGS_TYPED))))
    return argv, placed


def test_any_argv_gets_a_message_and_a_documented_exit_code(isolated):
    """500 argv lists; among them every flag stands before a subcommand and after one."""
    files, reached = isolated, set()

    @settings(max_examples=500, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def one(data):
        argv, placed = data.draw(argvs(files))
        reached.update(placed)
        code, out, err = run_cli(argv)
        assert code in DOCUMENTED, (argv, code, err)
        assert "Traceback" not in out + err, argv
        if code == 2:
            assert "error:" in err, (argv, err)  # bad input always says what is wrong
        elif code != 0:
            assert (out + err).strip(), (argv, code)  # a failure always says why

    one()
    assert reached == {(f.name, where) for f in FLAGS for where in ("before", "after")}


def test_the_fuzzer_reaches_every_subcommand_and_exit_code(isolated):
    """The vocabulary is the parser's own, and the outcomes it can reach span the codes."""
    files = isolated
    assert {"uninstall", "answers", "check", "troubleshoot", "bundle", "validate"} <= set(WORDS)
    assert {"--answers", "--yes", "--dry-run", "--kubeconfig", "--host-root"} <= set(FLAGS_TYPED)
    seen = {run_cli(argv)[0] for argv in (
        ["--answers", files["answers"], "--facts", files["facts"], "--dry-run"],
        ["--answers", files["bad"]],
        ["check", "--local", "--host-root", files["tree"] + "/../gpu-host-driver"])}
    assert seen == {0, 2, 3}
