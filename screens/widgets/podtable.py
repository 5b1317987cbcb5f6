"""A live table of pods (both namespaces), updated in place from collapsed status messages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.text import Text
from textual.message import Message

from screens.widgets.keyedtable import KeyedTable

COLUMNS = (("ns", "Namespace"), ("pod", "Pod"), ("phase", "Phase"), ("ready", "Ready"),
           ("restarts", "Restarts"), ("node", "Node"), ("reason", "Reason"))

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

    def on_mount(self) -> None:
        if not self.columns:  # the header, before the first pods
            self.fill_rows(COLUMNS, ())

    def update_pods(self, pods: Iterable[Any]) -> None:
        """Merge these pods' latest state and show every pod known, sorted.

        Only what changed is touched: changed cells in place, new pods inserted at their
        sorted place (KeyedTable.update_rows). Pods that arrive together are one batch. The
        whole table is filled only when it was empty - refilling 10,000 pods for one change
        took seconds."""
        changed: dict[str, tuple[Any, ...]] = {}
        for p in pods:
            name = getattr(p, "pod", None) or p.name
            key = f"{p.namespace}/{name}"
            if getattr(p, "containers", None):
                self._containers[key] = tuple(p.containers)
            row = (p.namespace, name, _phase(p.phase, p.reason), p.ready or "",
                   str(p.restarts), p.node or "",
                   Text(p.reason or "", style="red" if p.reason else ""))
            if self._rows.get(key) != row:
                changed[key] = row
        if not changed:
            return
        self._rows.update(changed)
        if not self.update_rows(COLUMNS, changed, ("ns", "pod")):
            self.fill_rows(COLUMNS, sorted(self._rows.items(), key=_order))

    def replace_pods(self, pods: Iterable[Any]) -> None:
        self._rows = {}
        self.clear()
        self.update_pods(pods)

    def on_keyed_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        key = event.row_key
        ns, _, pod = key.partition("/")
        event.stop()
        self.post_message(self.PodChosen(ns, pod, self._containers.get(key, ())))
