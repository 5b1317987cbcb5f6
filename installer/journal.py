"""An append-only record of finished changes, so an interrupted run is resumed knowingly.

What to do is always decided from facts (a deployed release with the same values is not
installed again, a host whose grub already has intel_iommu=on is not edited again): a
journal entry never skips a step, because the world may have changed since - a host
restored from backup, a release removed by hand. The journal tells the operator which
steps the interrupted run finished, and warns when one of them is needed again. A run that
finishes cleanly closes its journal.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.resumed: set[str] = self._unfinished_run_steps()

    def _unfinished_run_steps(self) -> set[str]:
        done: set[str] = set()
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return done
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a kill; the step it named is simply redone
            if entry.get("event") == "run-complete":
                done.clear()
            elif entry.get("event") == "step-done":
                done.add(entry["step"])
        return done

    def _append(self, entry: dict[str, object]) -> None:
        """One line in one write(2), so a signal or a kill leaves it whole or absent; after
        a line a crash (or a full disk) did cut short, start on a fresh line, so the cut
        line stays the only one lost rather than swallowing this one too."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps({"at": time.time(), **entry}) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            end = os.fstat(fd).st_size
            if end and os.pread(fd, 1, end - 1) != b"\n":
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def was_done(self, step_id: str) -> bool:
        return step_id in self.resumed

    def step_done(self, step_id: str, fingerprint: str) -> None:
        self._append({"event": "step-done", "step": step_id, "fingerprint": fingerprint})

    def run_complete(self) -> None:
        self._append({"event": "run-complete"})
        self.resumed = set()
