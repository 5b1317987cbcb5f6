"""Panes that scroll and show everything: the Helm output pane follows its newest lines even
when it was fed while hidden, the troubleshoot screen's host checks reach their last row, the
Review plan drops a stale horizontal scroll, and text cut at 80 columns is shown whole in a
detail line."""

from __future__ import annotations

from textual.widgets import TabbedContent

from screens.app import InstallerApp
from screens.bridge import OUTPUT_KEY
from screens.widgets.logpane import LogView
from tests.screens import fakes
from tests.screens.helpers import screen_text, shown, until


def feed(app: InstallerApp, lines: list[str]) -> None:
    """Tool output as the app takes it from the bridge: into the run's ring, then to the
    live screens."""
    app.run_state.output.extend(lines)
    app.screen.on_lines({OUTPUT_KEY: lines})


def app_for(start: str = "cluster", state=None, world=None) -> InstallerApp:
    app = InstallerApp(state or fakes.state(), services=fakes.services(world), start=start)
    app.run_state.clock = lambda: fakes.FROZEN
    return app


async def test_helm_output_fed_while_hidden_shows_its_newest_lines_when_shown():
    app = app_for(start="install")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#run-tabs", TabbedContent).active == "tab-pods"
        for i in range(0, 500, 50):  # batches, as the bridge delivers them
            lines = [f"helm line {n:03d}" for n in range(i, i + 50)]
            feed(app, lines)
            await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        await pilot.pause()
        view = screen.query_one("#output", LogView)
        text = screen_text(app)
        assert "helm line 499" in text, text
        assert "helm line 000" not in text
        assert "[following]" in shown(app, "#output .log-title")
        # more lines after it is shown still come into view
        feed(app, ["helm line 500"])
        await pilot.pause()
        assert "helm line 500" in screen_text(app)
        assert view.pane.follow


async def test_helm_output_shown_first_with_a_full_ring_starts_at_its_end():
    app = app_for(start="install")
    app.run_state.output.extend([f"early line {n:03d}" for n in range(500)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "early line 499" in text, text
        assert "[following]" in shown(app, "#output .log-title")


async def test_helm_output_keeps_following_across_a_resize():
    app = app_for(start="install")
    app.run_state.output.extend([f"line {n:03d}" for n in range(500)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        await pilot.pause()
        assert "line 499" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert "line 499" in screen_text(app)
        assert "[following]" in shown(app, "#output .log-title")
