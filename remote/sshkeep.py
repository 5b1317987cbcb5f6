"""SSH connections kept open across the calls of one run: one per host, reused by every
command the run sends that host (probe, each fix, the boot id, the re-probe...).

Why: each call used to open a connection of its own - a key exchange, authentication and
a new sshd process on the host - so a host that needs a few fixes and a reboot cost about
ten of them, and a wave of many hosts spent most of its time on handshakes (BENCHMARKS.md
section 9). A kept connection costs one handshake; each command is a new channel on it.

What stays the same: the host key is verified whenever a connection opens (against the
known_hosts file as it is then); a connection the host drops (a reboot, a dead link) or one
a command failed on is forgotten, and the next call opens a new one. `forget` drops a host's
connection on purpose (before a reboot, whose sessions do not survive it). At most `limit`
are kept (the run's SSH concurrency): past it, the one used longest ago that no command is
using is closed, so a run over many hosts holds no more connections than it may use at once.

No asyncssh here: `remote.ssh` stays importable without it (remote.sshconn does the
connecting; this only holds what it made).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from remote.targets import HostTarget


class Connections:
    """The kept connections of one run, and the per-run SSH state they were opened with."""

    def __init__(self, limit: int = 50) -> None:
        self.limit = max(1, limit)
        self._runs: dict[tuple[Any, ...], Any] = {}
        self._kept: dict[tuple[Any, ...], Any] = {}
        self._locks: dict[tuple[Any, ...], asyncio.Lock] = {}
        self.opened = 0  # connections opened so far (tests and benchmarks count them)

    def run(self, key: tuple[Any, ...], start: Callable[[], Any]) -> Any:
        """The shared state for one set of options and secrets (identity read once), made
        by `start` the first time; a failure to start is not kept."""
        run = self._runs.get(key)
        if run is None:
            run = start()
            if hasattr(run, "close"):
                self._runs[key] = run
        return run

    def lock(self, key: tuple[Any, ...]) -> asyncio.Lock:
        """Held while a host's connection is looked up or opened, so concurrent calls to
        one host share one connection."""
        return self._locks.setdefault(key, asyncio.Lock())

    def get(self, key: tuple[Any, ...]) -> Any:
        kept = self._kept.pop(key, None)
        if kept is not None:
            self._kept[key] = kept  # the most recently used last
        return kept

    def put(self, key: tuple[Any, ...], kept: Any) -> None:
        self._kept[key] = kept
        self.opened += 1
        idle = [k for k, v in self._kept.items() if k != key and not getattr(v, "busy", 0)]
        for old in idle[:max(0, len(self._kept) - self.limit)]:
            self.drop(old)

    def drop(self, key: tuple[Any, ...]) -> None:
        kept = self._kept.pop(key, None)
        if kept is not None:
            with contextlib.suppress(Exception):
                kept.conn.close()

    def forget(self, target: HostTarget) -> None:
        """Close and forget every kept connection to this host."""
        for key in [k for k in self._kept if k[0] == target.name]:
            self.drop(key)

    def __len__(self) -> int:
        return len(self._kept)

    async def close(self) -> None:
        """Close every kept connection and the shared state (a jump host's connection)."""
        conns = [k.conn for k in self._kept.values()]
        for key in list(self._kept):
            self.drop(key)
        for run in self._runs.values():
            with contextlib.suppress(Exception):
                run.close()
        self._runs.clear()
        waits = [c.wait_closed() for c in conns if hasattr(c, "wait_closed")]
        if waits:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 5)
