"""KeysFooter: rebuilt when the keys it shows change, and only then."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from screens.base import KeysFooter
from tests.screens.helpers import until


class Keyed(Static, can_focus=True):
    BINDINGS = [Binding("z", "zed", "Zed")]


class Plain(Static, can_focus=True):
    """Focusable, with no keys of its own: focusing it changes no key the footer shows."""


class FooterApp(App[None]):
    BINDINGS = [Binding("ctrl+y", "noop", "Why")]

    def compose(self) -> ComposeResult:
        yield Plain("one", id="one")
        yield Plain("two", id="two")
        yield Keyed("keyed", id="keyed")
        yield KeysFooter(show_command_palette=False)


def keys(app: FooterApp) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


async def test_the_footer_is_rebuilt_only_when_its_keys_change():
    app = FooterApp()
    async with app.run_test() as pilot:
        app.query_one("#one").focus()
        await until(pilot, lambda: [k.description for k in keys(app)] == ["Why"])
        before = keys(app)
        app.query_one("#two").focus()  # bindings published again, the same keys shown
        await pilot.pause()
        await pilot.pause()
        assert keys(app) == before  # the same FooterKey widgets (equal only to themselves)
        app.query_one("#keyed").focus()
        await until(pilot, lambda: [k.description for k in keys(app)] == ["Zed", "Why"],
                    what="the focused widget's key in the footer")
        app.query_one("#one").focus()
        await until(pilot, lambda: [k.description for k in keys(app)] == ["Why"],
                    what="its key gone again")
