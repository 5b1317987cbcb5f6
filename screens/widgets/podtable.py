"""A live table of pods (both namespaces), updated in place from collapsed status messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

COLUMNS = (("ns", "Namespace"), ("pod", "Pod"), ("phase", "Phase"), ("ready", "Ready"),
           ("restarts", "Restarts"), ("node", "Node"), ("reason", "Reason"))

_PHASE_STYLE = {"Running": "green", "Succeeded": "green", "Pending": "yellow",
                "Failed": "red", "Unknown": "red"}


def _phase(phase: str, reason: str) -> Text:
    style = "red" if reason in ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull",
                                "Error", "OOMKilled") else _PHASE_STYLE.get(phase, "")
    return Text(phase, style=style)


class PodTable(DataTable):
    """Rows keyed by namespace/pod. Accepts PodStatus events or clusterinfo.PodRow values."""

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
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def update_pods(self, pods: Iterable[Any]) -> None:
        """Merge these pods' latest state and show every pod known, sorted."""
        for p in pods:
            name = getattr(p, "pod", None) or p.name
            key = f"{p.namespace}/{name}"
            if getattr(p, "containers", None):
                self._containers[key] = tuple(p.containers)
            self._rows[key] = (p.namespace, name, _phase(p.phase, p.reason), p.ready or "",
                               str(p.restarts), p.node or "",
                               Text(p.reason or "", style="red" if p.reason else ""))
        from screens.base import fill_table

        fill_table(self, COLUMNS, sorted(self._rows.items()))

    def replace_pods(self, pods: Iterable[Any]) -> None:
        self._rows = {}
        self.update_pods(pods)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        ns, _, pod = key.partition("/")
        event.stop()
        self.post_message(self.PodChosen(ns, pod, self._containers.get(key, ())))
