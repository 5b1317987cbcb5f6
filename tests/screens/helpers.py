"""Driving the app in tests: wait for a condition, read what a screen shows."""

from __future__ import annotations

from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import Static


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 10.0,
                what: str = "") -> None:
    """Let the app run until `condition()` holds (or fail saying what was awaited)."""
    steps = int(timeout / 0.02)
    for _ in range(steps):
        if condition():
            await pilot.pause()
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


def text_of(widget: Static) -> str:
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def shown(app, selector: str) -> str:
    return text_of(app.screen.query_one(selector, Static))


def screen_text(app) -> str:
    """Everything on screen, as plain text (what an operator reads)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)
