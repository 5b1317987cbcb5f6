"""An append-only record of finished changes, so an interrupted run is resumed knowingly.

What to do is always decided from facts (a deployed release with the same values is not
installed again, a host whose grub already has intel_iommu=on is not edited again): a
journal entry never skips a step, because the world may have changed since - a host
restored from backup, a release removed by hand. The journal tells the operator which
steps the interrupted run finished, and warns when one of them is needed again. A run that
finishes cleanly closes its journal.

A journal that cannot be read as one (a line that is not a journal entry, bytes that are not
text) is set aside as `<name>.corrupt-<time>` with a warning, and the run plans from the
cluster alone - as it always does; only the notes on resumed steps are lost. A last line cut
short by a kill is no corruption: the step it named is simply redone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from installer.errors import os_problem
from installer.statedir import state_error, writable_dir


class Corrupt(ValueError):
    """The journal's bytes are not a journal: the reason, for the warning."""


def finished_steps(raw: bytes) -> set[str]:
    """The steps the last unfinished run journalled, or Corrupt saying why not."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Corrupt(f"not UTF-8 text (byte {exc.start})") from None
    *lines, _cut_short = text.split("\n")  # "" when the file ends with a whole line
    done: set[str] = set()
    for number, line in enumerate(lines, 1):
        _apply(line, number, done)
    return done


def _apply(line: str, number: int, done: set[str]) -> None:
    if not line.strip():
        return
    try:
        entry = json.loads(line)
    except ValueError:
        raise Corrupt(f"line {number} is not JSON") from None
    event = entry.get("event") if isinstance(entry, dict) else None
    if event == "run-complete":
        done.clear()
    elif event == "step-done" and isinstance(entry.get("step"), str) and entry["step"]:
        done.add(entry["step"])
    else:
        raise Corrupt(f"line {number} is not a journal entry")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.notice = ""  # a warning for the run to show (a corrupt journal set aside)
        writable_dir(path.parent)
        self.resumed: set[str] = self._unfinished_run_steps()

    def _unfinished_run_steps(self) -> set[str]:
        try:
            raw = self.path.read_bytes()
            done = finished_steps(raw)
            if not raw.endswith(b"\n") and raw:  # a last line cut short by a kill: dropped,
                os.truncate(self.path, raw.rfind(b"\n") + 1)  # or the next entry joins it
            return done
        except FileNotFoundError:
            return set()
        except OSError as exc:
            raise state_error(self.path, f"the journal cannot be read: "
                              f"{os_problem(exc, self.path)}",
                              "remove it (it only notes what an interrupted run did)") from None
        except Corrupt as why:
            return self._set_aside(str(why))

    def _set_aside(self, why: str) -> set[str]:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            raise state_error(self.path, f"the journal is corrupt ({why}) and cannot be set "
                              f"aside: {os_problem(exc, self.path)}", "remove it") from None
        self.notice = (f"the journal {self.path} was corrupt ({why}): set aside as {aside.name}; "
                       "this run plans from the cluster alone, without notes on what an "
                       "interrupted run did")
        return set()

    def _append(self, entry: dict[str, object]) -> None:
        """One line in one write(2), so a signal or a kill leaves it whole or absent; after
        a line a crash (or a full disk) did cut short, start on a fresh line, so the cut
        line stays the only one lost rather than swallowing this one too. The directory is
        made again: it may have been removed since the run began."""
        line = (json.dumps({"at": time.time(), **entry}) + "\n").encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                end = os.fstat(fd).st_size
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            said = os_problem(exc, self.path)
            raise state_error(self.path, f"the journal cannot be written: {said}",
                              "free space there, then run again: the new run plans from the "
                              "cluster, so nothing done is done twice") from None

    def was_done(self, step_id: str) -> bool:
        return step_id in self.resumed

    def step_done(self, step_id: str, fingerprint: str) -> None:
        self._append({"event": "step-done", "step": step_id, "fingerprint": fingerprint})

    def run_complete(self) -> None:
        self._append({"event": "run-complete"})
        self.resumed = set()
