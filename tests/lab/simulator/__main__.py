"""python -m tests.lab.simulator --state-dir DIR  (started and supervised by `lab up`)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .runner import Simulator


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.lab.simulator")
    ap.add_argument("--state-dir", required=True, type=Path)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Simulator(args.state_dir).run()


if __name__ == "__main__":
    main()
