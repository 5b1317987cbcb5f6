"""The console script's `main` (screens.cli) run in-process as a terminal runs it, and the
files its flags may be given: an answers file whose kubeconfig is missing (so nothing can
reach a cluster), the recorded facts, a bad answers file, a directory, a host tree."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"


def _serve_once(server) -> None:
    """`serve` in-process: everything up to listening (flags, files, the sessions' command),
    then what it would serve, instead of serving until stopped."""
    print(f"would serve on {server.host}:{server.port}: {server.command}")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """main(argv) with its exit code (argparse's SystemExit included) and what it printed;
    stdin is not a terminal."""
    from screens.cli import main
    from screens.serve import GuardedServer

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), \
            mock.patch.object(sys, "stdin", io.StringIO()), \
            mock.patch.object(GuardedServer, "serve", _serve_once):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else -1)
    return code, out.getvalue(), err.getvalue()


def cli_files(tmp: Path) -> dict[str, str]:
    answers = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    answers["cluster"]["kubeconfig"] = str(tmp / "no-kubeconfig")
    (tmp / "answers.yaml").write_text(yaml.safe_dump(answers))
    # The same, rendering the lab's stand-in charts: `images` then needs no network.
    answers["kataDeploy"]["chart"] = {"path": str(ROOT / "tests/lab/charts/kata-deploy")}
    answers["gpuOperator"]["chart"] = {"path": str(ROOT / "tests/lab/charts/gpu-operator")}
    (tmp / "local-charts.yaml").write_text(yaml.safe_dump(answers))
    (tmp / "bad.yaml").write_text("apiVersion: nope\nssh: {port: many}\n")
    (tmp / "dir").mkdir()
    return {"answers": str(tmp / "answers.yaml"), "bad": str(tmp / "bad.yaml"),
            "local-charts": str(tmp / "local-charts.yaml"),
            "facts": str(EXAMPLES / "facts.yaml"), "dir": str(tmp / "dir"),
            "missing": str(tmp / "missing.yaml"),
            "tree": str(ROOT / "tests/fixtures/hosts/gpu-vfio-ready"),
            "state": str(tmp / "state"), "cwd": str(tmp)}
