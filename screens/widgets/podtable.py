"""A live table of pods (both namespaces), updated in place from collapsed status messages.

Its AGE is worked out from the pod's creation time when a row is drawn into the table, and
moves on each second for the rows on screen only (`tick`): ageing 10,000 rows a second
would be the update cost the table avoids elsewhere. Its rows are pods for the `d`, `y` and
`l` keys (screens/widgets/tablekeys.py); `l` is the pod's log, as Enter."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from installer.diagnosis.describe import human_age, parse_time
from screens.widgets.keyedtable import KeyedTable, RowObject

COLUMNS = (("ns", "Namespace"), ("pod", "Pod"), ("phase", "Phase"), ("ready", "Ready"),
           ("restarts", "Restarts"), ("node", "Node"), ("reason", "Reason"), ("age", "Age"))
AGE = len(COLUMNS) - 1

_PHASE_STYLE = {"Running": "green", "Succeeded": "green", "Pending": "yellow",
                "Failed": "red", "Unknown": "red"}


def _phase(phase: str, reason: str) -> Text:
    style = "red" if reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                                "Error", "OOMKilled") else _PHASE_STYLE.get(phase, "")
    return Text(phase, style=style)


def _order(item: tuple[str, Sequence[Any]]) -> tuple[str, str]:
    return item[1][0], item[1][1]  # namespace, pod (update_rows sorts by the same columns)


class PodTable(KeyedTable):
    """Rows keyed by namespace/pod. Accepts PodStatus events or podread.PodReading values."""

    DEFAULT_CSS = "PodTable { height: 1fr; }"

    class PodChosen(Message):
        def __init__(self, namespace: str, pod: str, containers: tuple[str, ...]) -> None:
            super().__init__()
            self.namespace = namespace
            self.pod = pod
            self.containers = containers

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._containers: dict[str, tuple[str, ...]] = {}
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._created: dict[str, datetime | None] = {}
        self.clock: Callable[[], float] = time.time  # the screens give the run's clock
        self.objects = self._pod_of
        # The line under the table showing the pod under the cursor whole (a screen gives it):
        # at 80 columns the table cuts Restarts, Node, Reason and Age.
        self.detail: Static | None = None

    @staticmethod
    def _pod_of(key: str) -> RowObject:
        ns, _, pod = key.partition("/")
        return RowObject("pod", ns, pod)

    def on_mount(self) -> None:
        if not self.columns:  # the header, before the first pods
            self.fill_rows(COLUMNS, ())
        self.set_interval(1.0, self.tick)

    def _age(self, key: str, now: datetime) -> str:
        created = self._created.get(key)
        return human_age(created, now) if created is not None else ""

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def tick(self) -> None:
        """The AGE of the rows on screen moves on (only cells that changed are redrawn)."""
        keys = self.row_keys
        top = max(0, int(self.scroll_y))
        now = self._now()
        changed = {}
        for key in keys[top:top + self.size.height + 1]:
            row = self._rows.get(key)
            if row is not None and self._created.get(key) is not None:
                age = self._age(key, now)
                if row[AGE] != age:
                    changed[key] = self._rows[key] = (*row[:AGE], age)
        if changed:
            self.update_rows(COLUMNS, changed)
            self._show_detail(changed)

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        if event.control is self:
            self._show_detail()

    def _show_detail(self, changed: Iterable[str] | None = None) -> None:
        """Draw the detail line for the cursor's pod (only if its row is among `changed`)."""
        key = self.cursor_key
        if self.detail is None or (changed is not None and key not in changed):
            return
        self.detail.update(self.row_summary(key, skip=1) if key is not None else "")

    def update_pods(self, pods: Iterable[Any]) -> None:
        """Merge these pods' latest state and show every pod known, sorted.

        Only what changed is touched: changed cells in place, new pods inserted at their
        sorted place (KeyedTable.update_rows). Pods that arrive together are one batch. The
        whole table is filled only when it was empty - refilling 10,000 pods for one change
        took seconds."""
        changed: dict[str, tuple[Any, ...]] = {}
        now = self._now()
        for p in pods:
            name = getattr(p, "pod", None) or p.name
            key = f"{p.namespace}/{name}"
            if getattr(p, "containers", None):
                self._containers[key] = (*p.containers, *getattr(p, "init_containers", ()))
            if getattr(p, "created", ""):
                self._created[key] = parse_time(p.created)
            row = (p.namespace, name, _phase(p.phase, p.reason), p.ready or "",
                   str(p.restarts), p.node or "",
                   Text(p.reason or "", style="red" if p.reason else ""), self._age(key, now))
            if self._rows.get(key) != row:
                changed[key] = row
        if not changed:
            return
        self._rows.update(changed)
        if not self.update_rows(COLUMNS, changed, ("ns", "pod")):
            self.fill_rows(COLUMNS, sorted(self._rows.items(), key=_order))
        self._show_detail(changed)

    def replace_pods(self, pods: Iterable[Any]) -> None:
        self._rows, self._created = {}, {}
        self.clear()
        self.update_pods(pods)

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self._chosen(event.row_key)

    def on_keyed_table_inspect(self, event: KeyedTable.Inspect) -> None:
        if event.action == "logs" and event.table is self:
            event.stop()
            self._chosen(f"{event.target.namespace}/{event.target.name}")

    def _chosen(self, key: str) -> None:
        ns, _, pod = key.partition("/")
        self.post_message(self.PodChosen(ns, pod, self._containers.get(key, ())))
