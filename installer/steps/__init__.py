"""Step executors, one module per kind of step; the engine finds them by a step's action."""

from __future__ import annotations

from installer.engine import Executor


def default_executors() -> dict[str, Executor]:
    from installer.steps import discover

    return {
        "discover": discover.discover,
    }
