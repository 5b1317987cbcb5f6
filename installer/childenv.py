"""The environment the installer's child processes (helm) get: its own, minus the
variables that held a secret. Why: a child does not need the sudo password or the key
passphrase, and anything running as the same user could read them from its
/proc/<pid>/environ for as long as it runs."""

from __future__ import annotations

import os

_SECRET_NAMES: set[str] = set()


def hide_from_children(name: str) -> None:
    """`name` held a secret the installer read: children never see it."""
    _SECRET_NAMES.add(name)


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _SECRET_NAMES}
