"""A log pane that keeps up with a pod writing tens of thousands of lines a second.

Lines live in a bounded ring (`screens.state.Ring`, default 10,000 lines), so memory stays
flat however long a pod talks. Writing is a list extend plus a size update: nothing is
measured or styled per line, and only the visible rows are ever rendered (a ScrollView with
`render_line`). Lines arrive in batches (see `screens.bridge.LineBatcher`), so a flood costs
one refresh per frame. While following, the pane sticks to the end; scrolling up pauses it,
End (or `f`) follows again.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from screens.state import Ring
from screens.widgets.datatext import DataStatic

MAX_WIDTH = 1000  # longer lines are scrollable up to here; beyond is cut off


class LogPane(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogPane { background: $surface; color: $text; height: 1fr; }
    LogPane:focus { background-tint: $foreground 3%; }
    """

    BINDINGS = [
        Binding("up", "line_up", "Up", show=False),
        Binding("down", "line_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "top", "Top", show=False),
        Binding("end", "follow", "Follow", show=False),
        Binding("f", "toggle_follow", "Follow/pause"),
        Binding("left", "scroll_left", show=False),
        Binding("right", "scroll_right", show=False),
    ]

    follow: reactive[bool] = reactive(True)

    class Moved(Message):
        """The operator moved in the pane (the benchmark times keypresses with this)."""

        def __init__(self, pane: LogPane, action: str) -> None:
            super().__init__()
            self.pane = pane
            self.action = action

    def __init__(self, ring: Ring | None = None, *, limit: int = 10_000,
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.ring = ring if ring is not None else Ring(limit)
        self._width = 0
        self._dropped_seen = self.ring.dropped
        self._adjusting = False
        self.notify_moves = False

    # --- feeding -------------------------------------------------------------------
    def show(self, ring: Ring) -> None:
        """Display another ring (another pod's log) from its end."""
        self.ring = ring
        self._width = min(MAX_WIDTH, max((len(ring[i]) for i in range(max(0, len(ring) - 500),
                                                                    len(ring))), default=0))
        self._dropped_seen = ring.dropped
        self.follow = True
        self._resize()

    def on_mount(self) -> None:
        # A ring given at construction may already hold lines (the run's output when the
        # install screen opens mid-run): size the pane for them, from their end.
        self.show(self.ring)

    def lines_added(self, lines: list[str]) -> None:
        """The ring grew (fed by the app's run state); update size and position."""
        if lines:
            widest = max(map(len, lines))
            if widest > self._width:
                self._width = min(MAX_WIDTH, widest)
        dropped = self.ring.dropped - self._dropped_seen
        self._dropped_seen = self.ring.dropped
        self._resize()
        if not self.follow and dropped:
            # Lines fell off the top: keep the rows the operator is reading in place.
            self._adjusting = True
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
            self._adjusting = False

    def clear(self) -> None:
        self.ring.clear()
        self._width = 0
        self._resize()

    def _resize(self) -> None:
        self.virtual_size = Size(self._width, len(self.ring))
        self._stick_to_end()
        self.refresh()

    def _stick_to_end(self) -> None:
        """While following, put the last line at the bottom. A hidden pane (a tab not shown)
        has no height, so where it scrolled to then means nothing: this runs again whenever
        its size is known or changes (on_resize, on_show)."""
        if self.follow:
            self._adjusting = True
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            self._adjusting = False

    def on_resize(self) -> None:
        self._stick_to_end()
        self.call_after_refresh(self._stick_to_end)  # once the new height is laid out

    def on_show(self) -> None:
        self.call_after_refresh(self._stick_to_end)

    # --- rendering -----------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if index >= len(self.ring):
            return Strip.blank(width, style)
        line = self.ring[index]  # shown as data: the ring escaped its controls and tabs
        if line.isascii():
            text = line[scroll_x:scroll_x + width]
            return Strip([Segment(text.ljust(width), style)], width)
        return Strip([Segment(line, style)]).crop_extend(scroll_x, scroll_x + width, style)

    # --- moving --------------------------------------------------------------------
    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self._adjusting:
            return
        # At the end is following, whichever way it came there: a taller pane clamps the
        # offset down to its new end, which is not the operator scrolling up.
        if new >= self.max_scroll_y:
            self.follow = True
        elif new < old:
            self.follow = False

    def _moved(self, action: str) -> None:
        if self.notify_moves:
            self.post_message(self.Moved(self, action))

    def action_line_up(self) -> None:
        self.follow = False
        self.scroll_to(y=self.scroll_y - 1, animate=False, immediate=True)
        self._moved("up")

    def action_line_down(self) -> None:
        self.scroll_to(y=self.scroll_y + 1, animate=False, immediate=True)
        self._moved("down")

    def action_page_up(self) -> None:
        self.follow = False
        self.scroll_to(y=self.scroll_y - self.scrollable_content_region.height, animate=False,
                       immediate=True)
        self._moved("pageup")

    def action_page_down(self) -> None:
        self.scroll_to(y=self.scroll_y + self.scrollable_content_region.height, animate=False,
                       immediate=True)
        self._moved("pagedown")

    def action_top(self) -> None:
        self.follow = False
        self.scroll_to(y=0, animate=False, immediate=True)
        self._moved("home")

    def action_follow(self) -> None:
        self.follow = True
        self._resize()
        self._moved("end")

    def action_toggle_follow(self) -> None:
        if self.follow:
            self.follow = False
        else:
            self.action_follow()
        self._moved("follow")


class LogView(Vertical):
    """A titled log pane with a status line: which log, how many lines, following or paused."""

    DEFAULT_CSS = """
    LogView { height: 1fr; }
    LogView > .log-title { height: 1; background: $panel; color: $text-muted; padding: 0 1; }
    """

    title: reactive[str] = reactive("")

    def __init__(self, title: str = "", ring: Ring | None = None, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._ring = ring
        self.set_reactive(LogView.title, title)

    def compose(self):
        yield DataStatic(Text(self.title), classes="log-title")
        yield LogPane(self._ring)

    def on_mount(self) -> None:
        self.set_interval(0.25, self._status)
        self._status()

    def on_descendant_focus(self) -> None:
        """The title line shows where the keys go (app.tcss colours LogView.-focused): the
        pane's own tint alone is too faint to see."""
        self.add_class("-focused")

    def on_descendant_blur(self) -> None:
        self.remove_class("-focused")

    @property
    def pane(self) -> LogPane:
        return self.query_one(LogPane)

    def show(self, ring: Ring) -> None:
        """Display another log, its status line at once (the timer only keeps a growing log's
        count current)."""
        self.pane.show(ring)
        self._status()

    def watch_title(self) -> None:
        if self.is_mounted:
            self._status()

    def _status(self) -> None:
        panes, titles = self.query(LogPane), self.query(".log-title").results(Static)
        title_line = next(titles, None)
        if not panes or title_line is None:
            return  # being removed: its children go first, and the timer may still fire
        pane = panes.first()
        n = len(pane.ring)
        dropped = f", {pane.ring.dropped:,} older dropped" if pane.ring.dropped else ""
        mode = "following" if pane.follow else "paused - End follows"
        text = f"{self.title}  {n:,} lines{dropped}  [{mode}]" if self.title else \
            f"{n:,} lines{dropped}  [{mode}]"
        title_line.update(Text(text))
