"""Messages the app posts. Workers and the engine bridge never touch widgets: they post these,
and message handlers own every state change (the harlequin model). Tests record them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from installer.cluster.facts import Facts, NodeFacts
from installer.engine.events import Event, PodStatus

if TYPE_CHECKING:
    from installer.hosts.checks import CheckResult


@dataclass
class EngineEvent(Message):
    """One low-rate engine event (step started/finished, change, plan, run finished...)."""

    event: Event


class PodsChanged(Message):
    """The latest status of every pod that changed since the last one (collapsed)."""

    def __init__(self, pods: list[PodStatus]) -> None:
        super().__init__()
        self.pods = pods

    def can_replace(self, message: Message) -> bool:
        return False  # the bridge already keeps at most one of these in flight


class LinesReady(Message):
    """Lines are waiting in a LineBatcher; the handler drains them all at once."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LinesReady) and message.source is self.source


@dataclass
class FactsLoaded(Message):
    facts: Facts


@dataclass
class FactsFailed(Message):
    error: str


@dataclass
class NodesRead(Message):
    """The nodes discovery has read so far (a long list arrives page by page)."""

    nodes: tuple[NodeFacts, ...]


@dataclass
class FactsScanned(Message):
    """What the plan still needed from the cluster, looked up for the facts `base`
    (`facts` None when the lookup failed, with why)."""

    base: Facts
    facts: Facts | None
    error: str = ""


@dataclass
class ChecksLoaded(Message):
    results: dict[str, Sequence[CheckResult]]
    error: str | None = None
    facts: Facts | None = None


@dataclass
class AnswersChanged(Message):
    """The answers changed (an edit on any screen); screens showing them refresh."""

    what: str


@dataclass
class AnswersSaved(Message):
    path: str


@dataclass
class RunEnded(Message):
    exit_code: int | None
    status: str


@dataclass
class PodsSeen(Message):
    """What a read of the two namespaces found (podread.PodReading values)."""

    pods: tuple[Any, ...]
