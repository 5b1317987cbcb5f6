"""Command line entry point. Imports stay lazy so `--help` answers instantly."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_CODES = """exit codes:
  0    done (or dry-run complete)
  1    a step failed
  2    bad input (answers file, flags, kubeconfig)
  3    prerequisite checks failed
  130  interrupted (run again to resume)
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gpu-kata-installer",
        description="Prepare GPU hosts and install kata-deploy and the NVIDIA GPU Operator so "
                    "GPU workloads run in Kata Containers. Without --answers, opens the wizard.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--answers", type=Path, metavar="FILE", help="run headless from this file")
    p.add_argument("--wizard", action="store_true",
                   help="open the wizard even with --answers (the file pre-fills it)")
    p.add_argument("--facts", type=Path, metavar="FILE",
                   help="use a recorded cluster instead of discovering one (with --dry-run)")
    p.add_argument("--dry-run", action="store_true", help="show exactly what would change")
    p.add_argument("--yes", action="store_true", help="consent to the changes in the plan")
    p.add_argument("--json", action="store_true", help="print JSON lines of events")
    p.add_argument("-v", "--verbose", action="store_true", help="also print tool output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    u = sub.add_parser("uninstall", help="remove both charts and restore the nodes' labels")
    u.add_argument("--answers", type=Path, metavar="FILE", required=True)
    u.add_argument("--dry-run", action="store_true", help="show exactly what would change")
    u.add_argument("--yes", action="store_true", help="consent to the changes in the plan")
    u.add_argument("--json", action="store_true", help="print JSON lines of events")
    u.add_argument("--remove-crds", action="store_true",
                   help="also delete the GPU Operator's CRDs")
    a = sub.add_parser("answers", help="answers-file helpers")
    a_sub = a.add_subparsers(dest="answers_command", metavar="ACTION", required=True)
    a_sub.add_parser("schema", help="print the answers file's JSON Schema")
    a_sub.add_parser("init", help="print a commented answers template")
    v = a_sub.add_parser("validate", help="validate an answers file")
    v.add_argument("file", type=Path)
    c = sub.add_parser("check", help="run the host prerequisite checks on this machine")
    c.add_argument("--local", action="store_true", required=True,
                   help="check the machine this runs on (or --host-root)")
    c.add_argument("--host-root", default="/", metavar="DIR",
                   help="check a mounted or captured host tree instead of /")
    c.add_argument("--json", action="store_true", help="print a JSON list of results")
    c.add_argument("--ignore", default="", metavar="NAME,...",
                   help="check names to accept on purpose ('all' for every check)")
    t = sub.add_parser("troubleshoot", help="findings, pods, events, logs and host checks")
    b = sub.add_parser("bundle", help="write a support archive (redacted) with the findings")
    b.add_argument("--output", type=Path, metavar="FILE", help="default: ./gpu-kata-bundle-*.tgz")
    for cmd in (t, b):
        cmd.add_argument("--answers", type=Path, metavar="FILE", default=argparse.SUPPRESS,
                         help="also probe and check the Kata hosts it names")
        cmd.add_argument("--kubeconfig", metavar="FILE",
                         help="default: --answers, then $KUBECONFIG")
        cmd.add_argument("--context", metavar="NAME",
                         help="default: the kubeconfig's current one")
    t.add_argument("--json", action="store_true", help="print the findings as JSON (no screen)")
    return p


def _wizard(args: argparse.Namespace, troubleshoot: bool = False) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        from installer.errors import Problem, UserError

        raise UserError("the wizard needs a terminal", [Problem(
            "(terminal)", "stdin or stdout is not a terminal",
            "run it in a terminal, or headless with --answers FILE")])
    from screens.app import run_troubleshoot, run_wizard

    if troubleshoot:
        return run_troubleshoot(args.answers, kubeconfig=args.kubeconfig, context=args.context)
    return run_wizard(args.answers, facts_path=args.facts)


def _answers_command(args: argparse.Namespace) -> int:
    if args.answers_command == "schema":
        import json

        from installer.answers import json_schema

        print(json.dumps(json_schema(), indent=2, sort_keys=True))
    elif args.answers_command == "init":
        from importlib.resources import files

        print(files("installer").joinpath("examples/answers.yaml").read_text(), end="")
    else:
        from installer.answers import load_answers

        load_answers(args.file)
        print(f"{args.file}: valid")
    return 0


def _dispatch(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.command == "answers":
        return _answers_command(args)
    if args.command == "uninstall":
        from functools import partial

        from installer.headless import run_headless
        from installer.uninstall import build_uninstall_plan

        return run_headless(args.answers, facts_path=None, dry_run=args.dry_run, yes=args.yes,
                            as_json=args.json, verbose=args.verbose,
                            planner=partial(build_uninstall_plan, remove_crds=args.remove_crds))
    if args.command == "check":
        from installer.localcheck import run_local_check

        return run_local_check(args.host_root, args.json, args.ignore.split(","))
    if args.command == "troubleshoot" and (args.json or not sys.stdout.isatty()):
        from installer.troubleshoot import run_troubleshoot_headless

        return run_troubleshoot_headless(args.answers, args.kubeconfig, args.context, args.json)
    if args.command == "troubleshoot":
        return _wizard(args, troubleshoot=True)
    if args.command == "bundle":
        from installer.troubleshoot import run_bundle

        return run_bundle(args.answers, args.kubeconfig, args.context, args.output)
    if args.wizard or not args.answers:
        return _wizard(args)
    from installer.headless import run_headless

    return run_headless(args.answers, facts_path=args.facts, dry_run=args.dry_run,
                        yes=args.yes, as_json=args.json, verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    """The console script (argv None: the process's own command line) or a test's call."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args, parser)
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
    collections walk their hundreds of thousands of objects - 0.2-0.7 s of CPU measured
    on 2 cores after every run's last event (bench/e2e.py). Freezing moves them out of the
    collector's reach; the OS reclaims the memory anyway. Files are closed and streams
    flushed as before (our log is closed explicitly; sys.stdout and stderr at exit).
    Tests call main(argv) and keep their collector."""
    import gc

    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
