"""Screens tier: Pilot flows and SVG snapshots.

Snapshots land in `snapshots/<test file>/` at the top of the repository (not the plugin's
default `__snapshots__` next to the test): pytest-textual-snapshot picks its syrupy
extension by class, so its `dirname` is pointed there once, here.
Update them with `pytest tests/screens --snapshot-update` and look at what changed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_textual_snapshot

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = ROOT / "snapshots"


class _SnapshotsAtTop(pytest_textual_snapshot.SVGImageExtension):
    @classmethod
    def dirname(cls, *, test_location) -> str:
        return str(SNAPSHOTS / Path(test_location.filepath).stem)


pytest_textual_snapshot.SVGImageExtension = _SnapshotsAtTop

# A fixed state directory: the done screen names the log directory, and snapshots must not
# depend on a temporary path.
STATE_DIR = Path("/tmp/gpu-kata-installer-tests/state")


@pytest.fixture(autouse=True)
def _steady_cursors(monkeypatch):
    """Text cursors blink on a timer; in a snapshot they stay visible, however slow the run."""
    from textual.widgets import Input, TextArea

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)


@pytest.fixture(autouse=True)
def _state_dir(monkeypatch):
    """Fresh per test: an interrupted run's journal must not make the next test resume."""
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    monkeypatch.setenv("XDG_STATE_HOME", str(STATE_DIR))
    yield STATE_DIR
    shutil.rmtree(STATE_DIR, ignore_errors=True)
