"""The command line: flags, and every command that runs without a screen. Imports stay lazy so
`--help` answers instantly.

The console script is `screens.cli`, the composition root above both front ends: it hands
this module a way to open the wizard and the troubleshoot screen (`main(open_screen=...)`),
so nothing here imports the screens. `python -m installer` runs the headless
commands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_CODES = """exit codes:
  0    done (or dry-run complete; status: no drift)
  1    a step failed (status: differences found)
  2    bad input (answers file, flags, kubeconfig)
  3    prerequisite checks failed
  130  interrupted: Ctrl-C or SIGTERM (run again to resume)
"""


# The subcommands, in the order --help lists them; their flags: installer/commands/flags.py
COMMANDS = {
    "uninstall": "remove both charts, restore the nodes' labels (and, asked, the hosts)",
    "upgrade": "upgrade both charts, then the Kata nodes wave by wave, verified; rolled back "
               "on failure",
    "answers": "answers-file helpers",
    "answers schema": "print the answers file's JSON Schema",
    "answers init": "print a commented answers template",
    "answers validate": "validate an answers file",
    "check": "run the host prerequisite checks on this machine",
    "status": "drift between the cluster and hosts and the answers (exit 1 with differences)",
    "troubleshoot": "findings, pods, events, logs and host checks",
    "bundle": "write a support archive (redacted) with the findings",
    "images": "list every image the install pulls (for mirroring), from the rendered charts",
    "rbac": "print the Role and ClusterRole that hostAccess: pod needs (review, then apply)",
    "serve": "serve the wizard to a web browser (textual-serve), on this machine only by default",
}


def version_text() -> str:
    """This tool's version (package metadata) and the helm it would drive, as a bug report
    wants them: which build, and which helm on this machine."""
    import asyncio
    from importlib.metadata import PackageNotFoundError, version

    from installer.charts.helm import find_helm, helm_version
    from installer.errors import UserError

    try:
        ours = version("gpu-kata-installer")
    except PackageNotFoundError:
        ours = "(not installed as a package: pip install -e .)"
    try:
        helm = find_helm(None, None)
        found = f"{helm.binary} {asyncio.run(helm_version(helm))}"
    except UserError as exc:
        found = "; ".join(f"{p.message} ({p.fix})" for p in exc.problems) or str(exc)
    return f"gpu-kata-installer {ours}\nhelm: {found}"


class _Version(argparse.Action):
    """`--version`: worked out when asked (it runs helm), then exit 0."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    """The parser tree. Every parser in it takes every flag (installer/commands/flags.py says where
    each applies), so a flag given before the subcommand means what it means after it."""
    from installer.commands.flags import APPLIES, add_flags

    p = argparse.ArgumentParser(
        prog="gpu-kata-installer",
        description="Prepare GPU hosts and install kata-deploy and the NVIDIA GPU Operator so "
                    "GPU workloads run in Kata Containers. Without --answers, opens the wizard.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(p, ("install", "wizard"))
    p.add_argument("--version", action=_Version,
                   help="print this tool's version and the helm it finds, then exit")
    groups = {"": p.add_subparsers(dest="command", metavar="COMMAND")}
    for command, text in COMMANDS.items():
        parent, _, name = command.rpartition(" ")
        sub = groups[parent].add_parser(name, help=text)
        add_flags(sub, (command,) if command in APPLIES else ())
        if command not in APPLIES:  # a group of subcommands (`answers ACTION`)
            groups[command] = sub.add_subparsers(dest=f"{command}_command", metavar="ACTION",
                                                 required=True)
    groups["answers"].choices["validate"].add_argument("file", type=Path)
    return p


# Opens the wizard (troubleshoot False) or the troubleshoot screen for these flags; given by
# the composition root, screens.cli.
OpenScreen = Callable[[argparse.Namespace, bool], int]
# Serves the wizard to browsers until stopped (`serve`, its flags already checked); given by
# the composition root too, so textual-serve stays out of the core.
Serve = Callable[[argparse.Namespace], int]

# textual-serve runs each browser session's wizard over pipes with this driver; it needs no
# terminal.
WEB_DRIVER = "textual.drivers.web_driver:WebDriver"


def _wizard(args: argparse.Namespace, troubleshoot: bool, open_screen: OpenScreen | None) -> int:
    from installer.errors import Problem, UserError

    if open_screen is None:
        raise UserError("the wizard is not part of this entry point", [Problem(
            "(command)", "`python -m installer` runs the headless commands only",
            "run `gpu-kata-installer` (or `python -m screens.cli`), or give --answers FILE")])
    import os

    served = os.environ.get("TEXTUAL_DRIVER") == WEB_DRIVER
    if not served and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the wizard needs a terminal", [Problem(
            "(terminal)", "stdin or stdout is not a terminal",
            "run it in a terminal, or headless with --answers FILE")])
    return open_screen(args, troubleshoot)


def _answers_command(args: argparse.Namespace) -> int:
    if args.answers_command == "schema":
        import json

        from installer.answers.model import json_schema

        print(json.dumps(json_schema(), indent=2, sort_keys=True))
    elif args.answers_command == "init":
        from importlib.resources import files

        print(files("installer").joinpath("examples/answers.yaml").read_text(), end="")
    else:
        from installer.answers.model import load_answers

        load_answers(args.file)
        print(f"{args.file}: valid")
    return 0


def _serve(args: argparse.Namespace, serve: Serve | None) -> int:
    from installer.commands.serve import check_bind
    from installer.errors import Problem, UserError

    check_bind(args.host, args.allow_remote)
    if serve is None:
        raise UserError("serving the wizard is not part of this entry point", [Problem(
            "(command)", "`python -m installer` runs the headless commands only",
            "run `gpu-kata-installer serve` (or `python -m screens.cli serve`)")])
    return serve(args)


def _dispatch(args: argparse.Namespace, open_screen: OpenScreen | None,
              serve: Serve | None = None) -> int:
    from installer.commands.flags import resolve

    command = resolve(args)
    if command == "serve":
        return _serve(args, serve)
    screen = command == "wizard" or (command == "troubleshoot" and not args.json
                                     and sys.stdout.isatty() and open_screen is not None)
    if screen:  # the screens keep their own quit and stop
        return _wizard(args, command == "troubleshoot", open_screen)
    from installer.commands.interrupt import terminate_as_interrupt

    with terminate_as_interrupt():
        return _headless(command, args)


def _headless(command: str, args: argparse.Namespace) -> int:
    if command.startswith("answers "):
        return _answers_command(args)
    if command == "check":
        from installer.hosts.localcheck import run_local_check

        return run_local_check(args.host_root, args.json, args.ignore.split(","))
    if command == "status":
        from installer.commands.status import run_status

        return run_status(args.answers, args.kubeconfig, args.context, args.json, args.yes)
    if command == "troubleshoot":
        from installer.commands.troubleshoot import run_troubleshoot_headless

        return run_troubleshoot_headless(args.answers, args.kubeconfig, args.context, args.json)
    if command == "images":
        from installer.commands.images import run_images

        return run_images(args.answers, args.json)
    if command == "rbac":
        from installer.commands.rbac import run_rbac

        return run_rbac(args.answers)
    if command == "bundle":
        from installer.commands.troubleshoot import run_bundle

        return run_bundle(args.answers, args.kubeconfig, args.context, args.output)
    from installer.commands.headless import run_headless
    from installer.engine.operations import OPERATIONS, planner_for

    # uninstall's consent flags bind into its planner; the rest is the same run for each
    options = ({"remove_crds": args.remove_crds, "revert_hosts": args.revert_hosts}
               if command == "uninstall" else {})
    return run_headless(args.answers, facts_path=args.facts, dry_run=args.dry_run,
                        yes=args.yes, as_json=args.json, verbose=args.verbose,
                        planner=planner_for(command if command in OPERATIONS else "install",
                                            **options))


def main(argv: list[str] | None = None, open_screen: OpenScreen | None = None,
         serve: Serve | None = None) -> int:
    """The command line (argv None: the process's own) or a test's call; `open_screen` and
    `serve` are the composition root's ways to the screens (without them, the wizard and
    `serve` are refused)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args, open_screen, serve)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except Exception as exc:  # a user error prints cleanly; anything else is our bug
        from installer.errors import UserError

        if isinstance(exc, UserError):
            from installer.textsafe import display

            # It may quote what a tool or a file said: shown as data, not terminal codes.
            print(f"error: {display(str(exc), multiline=True)}", file=sys.stderr)
            return exc.exit_code
        raise
    finally:
        if argv is None:
            _exit_quickly()


def _exit_quickly() -> None:
    """The process ends next: let it end without the garbage collector's final passes.

    Why: after the kubernetes client and asyncssh are loaded, the interpreter's shutdown
    collections walk their hundreds of thousands of objects, CPU spent after every run's
    last event (bench/e2e.py, BENCHMARKS.md section 5). Freezing moves them out of the
    collector's reach; the OS reclaims the memory anyway. Files are still closed and streams
    flushed (our log is closed explicitly; sys.stdout and stderr at exit).
    Tests call main(argv) and keep their collector."""
    import gc

    gc.freeze()

