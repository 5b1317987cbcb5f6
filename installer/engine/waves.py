"""Host-fix chains in waves: many hosts fixed and rebooted side by side, at most
`rollout.maxUnavailable` of them out of service at once.

A host's chain is its change steps in plan order (cordon, drain, its fixes, the reboot,
uncordon). Chains of different hosts run side by side, a wave of at most maxUnavailable
hosts at a time, so fifty hosts that each need a reboot take fifty/maxUnavailable reboot
times, not fifty. A failed step stops its chain; the wave's other chains finish the step
they are in and stop, and the waves after it never start: a reboot that does not come back
must not be repeated on the next hosts. The message then says which hosts were done, which
failed (left cordoned, so nothing is scheduled onto a half-fixed host) and which were not
touched.

Pure grouping and a runner over callables: the engine (installer.engine.runner) hands in
how one step runs, so this module knows nothing of executors, consent or the journal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from installer.engine.params import (
    CordonParams,
    DrainParams,
    HostFixParams,
    RelabelParams,
    UncordonParams,
    VerifyRoleParams,
)
from installer.errors import StepFailed, UserError

# The params of the steps that make up a host's chain (a change of role adds its relabel
# and its verification, between the drain and the uncordon).
CHAIN_PARAMS = (CordonParams, DrainParams, HostFixParams, RelabelParams, VerifyRoleParams,
                UncordonParams)


def in_chain(step: Any) -> bool:
    return isinstance(step.params, CHAIN_PARAMS)


def waves_of(nodes: Sequence[str], max_unavailable: int) -> list[tuple[str, ...]]:
    """The nodes in order, in waves of at most max_unavailable."""
    size = max(1, max_unavailable)
    return [tuple(nodes[i:i + size]) for i in range(0, len(nodes), size)]


def wave_notes(steps: Sequence[Any], max_unavailable: int) -> dict[str, str]:
    """step id -> "wave 1 of 3: a, b", for every chain step: what the plan shows."""
    nodes = list(dict.fromkeys(s.params.node for s in steps if in_chain(s)))
    waves = waves_of(nodes, max_unavailable)
    wave_of = {n: i for i, wave in enumerate(waves) for n in wave}
    return {s.id: f"wave {wave_of[s.params.node] + 1} of {len(waves)}: "
                  + ", ".join(waves[wave_of[s.params.node]])
            for s in steps if in_chain(s)}


@dataclass(frozen=True)
class Wave:
    """One wave: a chain of steps per host, plan order; `later` are the hosts of the
    waves after it (untouched if this one fails)."""

    number: int
    total: int
    chains: tuple[tuple[Any, ...], ...]
    later: tuple[str, ...] = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(c[0].params.node for c in self.chains)

    @property
    def title(self) -> str:
        return f"wave {self.number} of {self.total}: " + ", ".join(self.nodes)


def schedule(steps: Sequence[Any], max_unavailable: int) -> list[Any]:
    """The change steps still to run, as they run: a step alone, or a `Wave` where a
    block of host chains stands in the plan."""
    out: list[Any] = []
    block: list[Any] = []

    def flush() -> None:
        if not block:
            return
        chains: dict[str, list[Any]] = {}
        for s in block:
            chains.setdefault(s.params.node, []).append(s)
        waves = waves_of(list(chains), max_unavailable)
        for i, wave in enumerate(waves):
            later = tuple(n for w in waves[i + 1:] for n in w)
            out.append(Wave(i + 1, len(waves), tuple(tuple(chains[n]) for n in wave), later))
        block.clear()

    for step in steps:
        if in_chain(step):
            block.append(step)
        else:
            flush()
            out.append(step)
    flush()
    return out


@dataclass
class ChainOutcome:
    node: str
    ran: list[Any] = field(default_factory=list)
    failed: Exception | None = None
    rebooted: bool = False
    stopped_before: str = ""  # the step the chain did not start: another chain failed

    @property
    def cordoned(self) -> bool:
        """Whether this run left the node cordoned (cordon ran, uncordon did not)."""
        kinds = [type(s.params) for s in self.ran]
        return CordonParams in kinds and UncordonParams not in kinds


# Runs one step; True when it rebooted the host (its facts are stale).
RunStep = Callable[[Any], Awaitable[bool]]


async def run_chain(chain: Sequence[Any], run_step: RunStep, stop: asyncio.Event
                    ) -> ChainOutcome:
    """One host's steps in order, until one fails or `stop` is set by another chain.

    A chain stopped by another still runs its uncordon: the host was not rebooted (or its
    reboot came back), so it goes back into service as it was; only the failed host stays
    cordoned."""
    out = ChainOutcome(chain[0].params.node)
    for step in chain:
        if stop.is_set() and not isinstance(step.params, UncordonParams):
            out.stopped_before = out.stopped_before or step.id
            continue
        try:
            out.rebooted |= await run_step(step)
        except (StepFailed, UserError) as exc:
            out.failed = exc
            stop.set()
            break
        out.ran.append(step)
    return out


def failure_message(wave: Wave, outcomes: Sequence[ChainOutcome]) -> str:
    """Which hosts were done, which failed, which were stopped or untouched - and which
    are left cordoned."""
    failed = [o for o in outcomes if o.failed]
    done = [o.node for o in outcomes if not o.failed and not o.stopped_before]
    stopped = [o for o in outcomes if o.stopped_before]
    lines = [f"{wave.title} stopped: " + "; ".join(f"{o.node}: {_said(o.failed)}"
                                                   for o in failed)]
    if done:
        lines.append("done: " + ", ".join(done))
    lines.append("failed: " + ", ".join(
        o.node + (" (left cordoned)" if o.cordoned else "") for o in failed))
    if stopped:
        lines.append("stopped: " + ", ".join(
            f"{o.node} before {o.stopped_before}"
            + (" (left cordoned)" if o.cordoned else "") for o in stopped))
    if wave.later:
        lines.append("untouched (their waves did not start): " + ", ".join(wave.later))
    lines.append("fix the failed host, then run again: finished steps are not redone")
    return "\n  ".join(lines)


def _said(exc: Exception | None) -> str:
    if isinstance(exc, UserError):
        return exc.summary
    return str(exc)
