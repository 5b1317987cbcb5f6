"""`gpu-kata-installer check --local`: the host checks on this machine or a host tree.

Why it exists: an operator can vet a GPU host (or a captured tree of one) before any
cluster or SSH is involved, with the same probe and checks the installer uses remotely.
Exit codes: 0 nothing blocking, 3 a non-ignored check failed, 2 bad arguments, 1 the probe
of the tree did not finish in time.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from installer.answers.checknames import expand_ignore
from installer.errors import EXIT_BAD_INPUT, EXIT_CHECKS_FAILED, EXIT_OK, EXIT_STEP_FAILED
from installer.hosts.checks import blocking, run_checks
from installer.textsafe import display
from remote.probe import ProbeTimeout, probe_local

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def run_local_check(host_root: str = "/", as_json: bool = False, ignore: list[str] | None = None,
                    out: TextIO | None = None) -> int:
    """Probe `host_root`, run every check, print a table (or a JSON list of
    {name, status, severity, summary, evidence, remedy, ignored}) and return the exit code."""
    out = out or sys.stdout
    try:
        ign = expand_ignore(ignore or [])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not os.path.isdir(host_root):
        print(f"error: host root {host_root!r} is not a directory", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        facts = probe_local(host_root)
    except ProbeTimeout as e:
        print(f"error: {e}\n  cause: reading the host tree hangs (a mount that does not "
              "answer?)\n  fix: check the mounts under the host root, then run again",
              file=sys.stderr)
        return EXIT_STEP_FAILED
    results = run_checks(facts, None, ign)
    if as_json:
        json.dump([r.to_dict() for r in results], out, indent=2)
        out.write("\n")
    else:
        _print_table(results, facts.hostname or host_root, out)
    return EXIT_CHECKS_FAILED if blocking(results) else EXIT_OK


def _print_table(results, host: str, out: TextIO) -> None:
    """What the host holds (its name, the checks' evidence) goes in as Text, shown as data
    (installer.textsafe): a str cell would be read as Rich markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, soft_wrap=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 140  # logs and pipes: evidence lines stay readable
    table = Table(title=Text(f"Host checks: {display(host)}"), show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("finding", overflow="fold")
    for r in results:
        status = r.status + (" (ignored)" if r.ignored else "")
        detail = r.summary
        if r.evidence:
            detail += "\n" + "\n".join(f"  {e}" for e in r.evidence)
        if r.remedy and r.status in ("fail", "warn"):
            detail += f"\n-> {r.remedy}"
        table.add_row(Text(r.name), Text(status, style=_STYLE[r.status]),
                      Text(display(detail, multiline=True)))
    console.print(table)
    failed = blocking(results)
    if failed:
        console.print(f"[bold red]{len(failed)} check(s) failed:[/] "
                      + ", ".join(r.name for r in failed)
                      + "  (accept on purpose with --ignore NAME,...)")
    else:
        console.print("[green]no blocking failures[/]")
