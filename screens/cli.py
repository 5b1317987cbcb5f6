"""The console script `gpu-kata-installer`: the composition root.

It stands above both front ends - the headless commands in installer/ and the Textual app
here - and hands installer.commands.cli the way to open the wizard and the troubleshoot
screen, and to serve the wizard to a browser (textual-serve); the flags, the headless runs
and their exit codes stay there. Imports stay lazy, so `--help` and
every headless command run without loading textual.
"""

from __future__ import annotations

import argparse
import sys

from installer.commands.cli import main as run_cli


def open_screen(args: argparse.Namespace, troubleshoot: bool) -> int:
    from screens.app import run_troubleshoot, run_wizard

    if troubleshoot:
        return run_troubleshoot(args.answers, kubeconfig=args.kubeconfig, context=args.context)
    return run_wizard(args.answers, facts_path=args.facts, kubeconfig=args.kubeconfig,
                      context=args.context)


def serve(args: argparse.Namespace) -> int:
    from screens.serve import serve_wizard

    return serve_wizard(args)


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, open_screen=open_screen, serve=serve)


if __name__ == "__main__":
    sys.exit(main())
