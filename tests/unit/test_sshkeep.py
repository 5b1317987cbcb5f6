"""A run keeps one SSH connection per host while the engine runs and closes them all after,
however the run ends; the reboot wait asks soon, then less and less often."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers
from installer.cluster.factsfile import load_recorded_facts
from installer.engine import params as p
from installer.engine.events import Recorder
from installer.engine.runner import Context, Engine
from installer.errors import EXIT_OK, EXIT_STEP_FAILED, StepFailed
from installer.hosts.access import HostAccess
from remote.fixes.reboot import DELAY, poll_delays
from remote.ssh import Connections, SSHOptions
from remote.targets import HostTarget
from tests.unit.test_engine import World, Yes

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"


@dataclass
class FakeConn:
    closed: list[str] = field(default_factory=list)
    name: str = ""

    def close(self) -> None:
        self.closed.append(self.name)


@dataclass
class FakeKept:
    conn: FakeConn
    busy: int = 0


def test_poll_delays_start_soon_and_back_off_to_the_longest():
    assert list(itertools.islice(poll_delays(5.0, first=DELAY + 0.5), 7)) == [
        DELAY + 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert list(itertools.islice(poll_delays(0.5), 3)) == [0.5, 0.5, 0.5]


async def test_forget_closes_only_that_hosts_connections():
    closed: list[str] = []
    keep = Connections()
    for name in ("a", "b"):
        keep.put((name, f"10.0.0.{name}", None, None, 1), FakeKept(FakeConn(closed, name)))
    keep.forget(HostTarget("a", "10.0.0.1"))
    assert closed == ["a"] and len(keep) == 1 and keep.opened == 2
    await keep.close()
    assert closed == ["a", "b"] and len(keep) == 0


async def test_past_the_limit_the_idle_connection_used_longest_ago_is_closed():
    closed: list[str] = []
    keep = Connections(limit=2)
    entries = {n: FakeKept(FakeConn(closed, n)) for n in "abcd"}
    keep.put(("a",), entries["a"])
    keep.put(("b",), entries["b"])
    keep.get(("a",))  # a used more recently than b
    keep.put(("c",), entries["c"])
    assert closed == ["b"] and len(keep) == 2
    entries["a"].busy = 1  # a command runs on it: never closed under it
    keep.put(("d",), entries["d"])
    assert closed == ["b", "c"] and len(keep) == 2
    await keep.close()


@pytest.mark.parametrize("fail", [None, "probe"])
def test_the_engine_keeps_connections_for_the_run_and_closes_them_after(fail):
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})
    access = HostAccess(SSHOptions(), sudo=False)
    closed: list[str] = []
    seen: list[Connections | None] = []
    executors = World().executors()

    async def probe(ctx, step, facts):
        keep = ctx.services["hosts"].ssh_kwargs()["connections"]
        seen.append(keep)
        keep.put(("n", "10.0.0.9", None, None, 1), FakeKept(FakeConn(closed, "n")))
        if fail:
            raise StepFailed("the probe broke")
        return await executors[p.ProbeParams](ctx, step, facts)

    ctx = Context(dry_run=False, sinks=[Recorder()], decider=Yes(), services={"hosts": access})
    code = asyncio.run(Engine(answers, ctx, {**executors, p.ProbeParams: probe}).run(facts))
    assert code == (EXIT_STEP_FAILED if fail else EXIT_OK)
    assert seen and all(isinstance(k, Connections) for k in seen)
    assert closed == ["n"] * len(seen) and access.connections is None
