"""Every command-line flag, declared once, and the commands each one applies to.

Why a table: argparse gives every sub-parser its own copy of a flag, and a sub-parser's
default silently replaces the value given before the subcommand (`--dry-run uninstall
--answers a.yaml --yes` would run a real uninstall). Here every parser of the tree accepts every
flag with no default of its own, so a flag means the same wherever it stands; `resolve` then
refuses a flag the chosen command has no use for (exit 2, naming the flag, the command and
what to do) and fills in the defaults once. The parser's help and the refusals are both
read from APPLIES, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def port_number(text: str) -> int:
    """A TCP port to listen on; argparse turns the ValueError into exit 2 with the flag."""
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(text)
    return port


@dataclass(frozen=True)
class Flag:
    """One flag: its names, and - for one that takes a value - its metavar, type, default."""

    names: tuple[str, ...]
    metavar: str | None = None
    type: Callable[[str], object] = str
    default: object = None

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")

    @property
    def usage(self) -> str:
        return f"{self.name} {self.metavar}" if self.metavar else self.name

    @property
    def shown(self) -> str:
        return "/".join(self.names)


FLAGS: tuple[Flag, ...] = (
    Flag(("--answers",), "FILE", Path),
    Flag(("--wizard",)),
    Flag(("--facts",), "FILE", Path),
    Flag(("--dry-run",)),
    Flag(("--yes",)),
    Flag(("--json",)),
    Flag(("-v", "--verbose")),
    Flag(("--remove-crds",)),
    Flag(("--revert-hosts",)),
    Flag(("--local",)),
    Flag(("--host-root",), "DIR", str, "/"),
    Flag(("--ignore",), "NAME,...", str, ""),
    Flag(("--kubeconfig",), "FILE"),
    Flag(("--context",), "NAME"),
    Flag(("--output",), "FILE", Path),
    Flag(("--host",), "ADDRESS", str, "127.0.0.1"),
    Flag(("--port",), "PORT", port_number, 8000),
    Flag(("--allow-remote",)),
)

# command -> {flag it applies to: what it means there}. "install" and "wizard" are the top
# level without a subcommand: the wizard, unless --answers is given without --wizard.
_DRY_RUN = "show exactly what would change"
_YES = "consent to the changes in the plan"
_FACTS = "use a recorded cluster instead of discovering one (with --dry-run)"
_KUBECONFIG = {"--kubeconfig": "default: --answers, then $KUBECONFIG",
               "--context": "default: the kubeconfig's current one"}
_HEADLESS = {"--facts": _FACTS, "--dry-run": _DRY_RUN, "--yes": _YES,
             "--json": "print JSON lines of events", "--verbose": "also print tool output"}
APPLIES: dict[str, dict[str, str]] = {
    "install": {"--answers": "run headless from this file", **_HEADLESS},
    "wizard": {"--wizard": "open the wizard even with --answers (the file pre-fills it)",
               "--answers": "pre-fill the wizard from this file", "--facts": _FACTS,
               **_KUBECONFIG},
    "uninstall": {"--answers": "the answers file the install ran from (required)", **_HEADLESS,
                  "--remove-crds": "also delete the GPU Operator's CRDs",
                  "--revert-hosts": "restore the host files the installer's fixes changed "
                                    "(from their backups), rebooting where needed"},
    "upgrade": {"--answers": "the answers file naming the target versions (required)",
                **_HEADLESS},
    "answers schema": {},
    "answers init": {},
    "answers validate": {},
    "check": {"--local": "check the machine this runs on, or --host-root (required)",
              "--host-root": "check a mounted or captured host tree instead of /",
              "--json": "print a JSON list of results",
              "--ignore": "check names to accept on purpose ('all' for every check)"},
    "status": {"--answers": "the answers file the install ran from (required)", **_KUBECONFIG,
               "--json": "print one JSON object: drift, checked, exitCode",
               "--yes": "with hostAccess: pod, create the host-access pods the probe needs "
                        "(deleted after); without it those hosts are reported not checked"},
    "troubleshoot": {"--answers": "also probe and check the Kata hosts it names",
                     **_KUBECONFIG, "--json": "print the findings as JSON (no screen)"},
    "bundle": {"--answers": "also probe and check the Kata hosts it names", **_KUBECONFIG,
               "--output": "default: ./gpu-kata-bundle-*.tgz"},
    "images": {"--answers": "render the charts this answers file installs (required)",
               "--json": "print one JSON document instead of lines"},
    "rbac": {"--answers": "the namespace from its hostAccess.namespace (default: "
                          "gpu-kata-installer)"},
    "serve": {"--answers": "pre-fill each browser session's wizard from this file",
              "--facts": _FACTS, **_KUBECONFIG,
              "--host": "the address to listen on (default: 127.0.0.1, this machine only)",
              "--port": "the port to listen on (default: 8000)",
              "--allow-remote": "let --host be an address other machines reach (anyone "
                                "who reaches it can change your hosts and cluster)"},
}
REQUIRED: dict[str, tuple[str, ...]] = {"uninstall": ("--answers",), "check": ("--local",),
                                        "images": ("--answers",), "status": ("--answers",),
                                        "upgrade": ("--answers",)}
_LABELS = {"install": "the headless install (--answers FILE)", "wizard": "the wizard"}


def label(command: str) -> str:
    return _LABELS.get(command, f"`{command}`")


def add_flags(parser: argparse.ArgumentParser, commands: tuple[str, ...]) -> None:
    """Every flag, on a parser that serves `commands`: shown in its help where one of them
    uses the flag, accepted (and refused later, by `resolve`) everywhere else."""
    for flag in FLAGS:
        text = next((APPLIES[c][flag.name] for c in commands if flag.name in APPLIES[c]),
                    argparse.SUPPRESS)
        if flag.metavar is None:
            parser.add_argument(*flag.names, dest=flag.dest, action="store_true",
                                default=argparse.SUPPRESS, help=text)
        else:
            parser.add_argument(*flag.names, dest=flag.dest, metavar=flag.metavar,
                                type=flag.type, default=argparse.SUPPRESS, help=text)


def command_of(args: argparse.Namespace) -> str:
    if args.command == "answers":
        return f"answers {args.answers_command}"
    if args.command:
        return str(args.command)
    return "wizard" if getattr(args, "wizard", False) or not getattr(args, "answers", None) \
        else "install"


def resolve(args: argparse.Namespace) -> str:
    """The command the flags chose. Refuses flags it has no use for and missing required
    ones (UserError, exit 2), then gives every flag not given its one default."""
    from installer.errors import Problem, UserError

    command = command_of(args)
    applies = APPLIES[command]
    problems = [Problem(f.shown, f"does not apply to {label(command)}",
                        f"drop {f.name} (it is for {_users(f)})")
                for f in FLAGS if hasattr(args, f.dest) and f.name not in applies]
    problems += [Problem(f.shown, f"{label(command)} needs it", f"add {f.usage}")
                 for f in FLAGS if f.name in REQUIRED.get(command, ()) and
                 not hasattr(args, f.dest)]
    if problems:
        raise UserError(f"flags that do not fit {label(command)}", problems)
    for f in FLAGS:
        if not hasattr(args, f.dest):
            setattr(args, f.dest, False if f.metavar is None else f.default)
    return command


def _users(flag: Flag) -> str:
    return ", ".join(label(c) for c, flags in APPLIES.items() if flag.name in flags)
