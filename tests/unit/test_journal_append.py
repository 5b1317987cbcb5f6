"""The journal's appends: whole lines only, and a line a crash cut short costs only itself."""

from __future__ import annotations

import json

from installer.engine.journal import Journal


def test_a_line_cut_short_by_a_crash_does_not_swallow_the_next_entry(tmp_path):
    path = tmp_path / "journal.jsonl"
    Journal(path).step_done("label/gpu-node-1", "f1")
    with path.open("a") as f:  # killed in the middle of a write: no newline after it
        f.write('{"at": 1, "event": "step-done", "step": "install/kata-')
    again = Journal(path)
    assert again.resumed == {"label/gpu-node-1"}
    again.step_done("install/kata-deploy", "f2")
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["step"] == "install/kata-deploy"
    assert Journal(path).resumed == {"label/gpu-node-1", "install/kata-deploy"}
    assert path.read_text().endswith("\n") and path.stat().st_mode & 0o077 == 0
