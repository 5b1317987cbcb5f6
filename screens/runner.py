"""Long work on an event loop of its own, in a thread, so the UI never waits for it.

The engine's executors, discovery and the checks may call synchronous code (a kubeconfig
load, a client import); on the UI's loop that would freeze the screen. Here they get their
own loop. Results come back through thread-safe channels (`post_message`, the bridge), and
cancelling means cancelling the task on that loop - which the engine turns into a clean
stop (helm's process group included) and a RunFinished event.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs one coroutine to completion on a private loop in a daemon thread."""

    def __init__(self, coro: Coroutine[Any, Any, T], name: str,
                 on_done: Callable[[T | None, BaseException | None], None]) -> None:
        self._coro = coro
        self._on_done = on_done
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> LoopThread:
        self.thread.start()
        self._ready.wait()
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._task = loop.create_task(self._coro)
        self._ready.set()
        result: Any = None
        error: BaseException | None = None
        try:
            result = loop.run_until_complete(self._task)
        except BaseException as exc:  # cancellation included: the caller decides
            error = exc
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self.finished.set()
                self._on_done(result, error)

    def cancel(self) -> None:
        if self._loop is not None and self._task is not None and not self.finished.is_set():
            self._loop.call_soon_threadsafe(self._task.cancel)

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self.finished.is_set()


async def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Await a coroutine that runs on its own loop in a worker thread."""
    return await asyncio.to_thread(asyncio.run, coro)
