"""The headless front end: answers file in, events out (rich, plain or JSON lines)."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from installer.answers.model import Answers, load_answers
from installer.cluster.facts import Facts
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.events import Sink
from installer.engine.journal import Journal
from installer.engine.plan import Plan, build_plan
from installer.engine.runner import Context, Engine
from installer.engine.runtime import run_services
from installer.engine.sinks import JsonSink, LogFileSink, TextSink
from installer.errors import EXIT_INTERRUPTED, Problem, UserError
from installer.redact import Redactor
from installer.statedir import state_dir
from installer.textsafe import display


@dataclass
class HeadlessDecider:
    """Consent without a screen: --yes, the answers' policy, or a y/N prompt on a terminal."""

    yes: bool
    stdin: IO[str]
    stdout: IO[str]

    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        if policy == "skip":
            return False
        if policy == "apply" and self.yes:
            return True
        if not self.stdin.isatty():
            return self.yes and policy != "ask"
        # The detail previews a host file: its text is shown as data, not terminal codes.
        self.stdout.write(f"{display(detail, multiline=True)}\n{display(question)} [y/N] ")
        self.stdout.flush()
        answer = await asyncio.to_thread(self.stdin.readline)
        return answer.strip().lower() in ("y", "yes")


def _prompt(label: str) -> str:
    return getpass.getpass(label)


def build_sinks(as_json: bool, verbose: bool, redactor: Redactor,
                stream: IO[str]) -> tuple[list[Sink], LogFileSink]:
    log = LogFileSink(state_dir() / "logs" / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log",
                      redactor)
    front: Sink = (JsonSink(stream, redactor) if as_json else
                   TextSink(stream, redactor, rich=stream.isatty(), verbose=verbose))
    return [front, log], log


def journal_for(answers: Answers) -> Journal:
    key = f"{answers.cluster.kubeconfig}|{answers.cluster.context}"
    name = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Journal(state_dir() / "journal" / f"{name}.jsonl")


def run_headless(answers_path: Path, *, facts_path: Path | None, dry_run: bool, yes: bool,
                 as_json: bool, verbose: bool = False,
                 planner: Callable[[Answers, Facts], Plan] = build_plan) -> int:
    """Run the install (or, with another planner, the uninstall) without a screen."""
    answers = load_answers(answers_path)
    if not dry_run and not yes and not sys.stdin.isatty():
        raise UserError("refusing to change the cluster without consent", [Problem(
            "--yes", "stdin is not a terminal, so the plan cannot be confirmed interactively",
            "preview with --dry-run, then run again with --yes")])
    facts = load_recorded_facts(facts_path) if facts_path else Facts(cluster=None)
    if facts_path and not dry_run:
        raise UserError("--facts needs --dry-run", [Problem(
            "--facts", "recorded facts describe a cluster this run cannot change",
            "add --dry-run, or drop --facts to discover the live cluster")])
    redactor = Redactor()
    services = run_services(answers, redactor, ask=_prompt if sys.stdin.isatty() else None)
    journal = None if dry_run else journal_for(answers)
    sinks, log = build_sinks(as_json, verbose, redactor, sys.stdout)
    from installer.engine.steps import default_executors

    ctx = Context(dry_run=dry_run, sinks=sinks,
                  decider=HeadlessDecider(yes, sys.stdin, sys.stdout), journal=journal,
                  services=services)
    engine = Engine(answers, ctx, default_executors(), planner)
    try:
        return asyncio.run(engine.run(facts))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        log.close()
