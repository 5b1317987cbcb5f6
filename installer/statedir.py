"""The state directory (XDG_STATE_HOME/gpu-kata-installer): run logs and journals.

One place says what is wrong with it, so the log, the journal and the bundle fail alike:
naming the path, the problem and the fix, with exit 2 when XDG_STATE_HOME chose the place
(the operator's setting) and exit 1 when the default under the home directory did (the
machine's).
"""

from __future__ import annotations

import os
from pathlib import Path

from installer.errors import EXIT_BAD_INPUT, EXIT_STEP_FAILED, Problem, UserError, os_problem

SETTING = "XDG_STATE_HOME"


def state_dir() -> Path:
    base = os.environ.get(SETTING) or str(Path.home() / ".local" / "state")
    return Path(base) / "gpu-kata-installer"


def state_error(path: Path, problem: str, fix: str = "") -> UserError:
    chosen = os.environ.get(SETTING)
    where = (f"point {SETTING} (now {chosen}) at a directory you may write, or unset it"
             if chosen else f"make {state_dir()} writable, or set {SETTING} to a directory "
                            "you may write")
    return UserError(f"the state directory {state_dir()} cannot be used", [Problem(
        str(path), problem, f"{fix}, or {where}" if fix else where)],
        exit_code=EXIT_BAD_INPUT if chosen else EXIT_STEP_FAILED)


def writable_dir(path: Path) -> Path:
    """`path` made (with its parents) and checked writable, or the state_error saying why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise state_error(path, os_problem(exc, path)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise state_error(path, "the directory is not writable")
    return path
