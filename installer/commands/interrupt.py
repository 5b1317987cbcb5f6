"""SIGTERM stops a run the way Ctrl-C does.

Why: a supervisor, `timeout`, or `kill` sends SIGTERM, whose default ends the process on
the spot - helm (in its own session, so its group survives us) would keep running against
the cluster, and nothing would say the run was interrupted. Handing SIGTERM to the SIGINT handler
of the moment makes both signals one path: asyncio.run's handler cancels the run (each
helm's process group is stopped, SSH sessions close, the engine reports "interrupted"),
and outside a loop Python's own handler raises KeyboardInterrupt. Both end with exit 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):  # SIGINT ignored (a background job): still stop on SIGTERM
        handler = signal.default_int_handler
    handler(signal.SIGINT, frame)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; a caller elsewhere keeps its own
        return
    previous = signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
