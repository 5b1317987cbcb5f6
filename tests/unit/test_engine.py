"""The engine: one mutation point, dry-run that cannot change anything, journal, cancellation.

Executors here are small fakes - this tier proves the engine's own rules; the lab tiers
prove the real executors.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers
from installer.cluster.facts import ReleaseFacts
from installer.cluster.factsfile import load_recorded_facts
from installer.engine import params as p
from installer.engine.events import (
    ChangeEvent,
    PlanReady,
    Recorder,
    RunFinished,
    StepFinished,
    WarningEvent,
)
from installer.engine.journal import Journal
from installer.engine.plan import build_plan
from installer.engine.runner import Context, Done, Engine
from installer.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_STEP_FAILED, StepFailed
from installer.permit import Permit, require_permit
from remote.probe import probe_local

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
# A host that passes every check: the engine tier is about order and safety, not hosts.
HOST = probe_local(EXAMPLES.parents[1] / "tests" / "fixtures" / "hosts" / "gpu-vfio-ready")


class Yes:
    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        return True


@pytest.fixture
def answers():
    return load_answers(EXAMPLES / "answers.yaml")


@pytest.fixture
def facts():
    """The recorded cluster without its host trees: the fake probe supplies ready hosts."""
    return replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})


class World:
    """What the fake executors changed, so tests can prove what was (not) touched."""

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.ran: list[str] = []

    def executors(self, fail: str | None = None, block: str | None = None):
        async def gather(ctx, step, facts):
            self.ran.append(step.id)
            hosts = {t.node: HOST for t in step.params.targets}
            return replace(facts, hosts={**facts.hosts, **hosts})

        async def read_only(ctx, step, facts):
            self.ran.append(step.id)

        async def mutate(ctx, step, facts):
            self.ran.append(step.id)
            if step.id == fail:
                raise StepFailed(f"{step.id} broke", cause="test")
            if step.id == block:
                await asyncio.sleep(3600)
            for change in step.changes:
                async def act(permit: Permit, c=change) -> None:
                    require_permit(permit)
                    self.changed.append(c.target)
                await ctx.change(step.id, change.target, change.description, act)

        return {p.ProbeParams: gather, p.ClusterChecksParams: read_only,
                p.HostChecksParams: read_only, p.RecordLabelsParams: mutate,
                p.LabelParams: mutate, p.HelmParams: mutate,
                p.VerifyKataDeployParams: read_only, p.VerifyGpuOperatorParams: read_only,
                p.VerifyHostParams: read_only, p.SampleParams: read_only}


def run(answers, facts, world, *, dry_run=False, journal=None, **kw) -> tuple[int, Recorder]:
    rec = Recorder()
    ctx = Context(dry_run=dry_run, sinks=[rec], decider=Yes(), journal=journal)
    code = asyncio.run(Engine(answers, ctx, world.executors(**kw)).run(facts))
    return code, rec


def test_dry_run_changes_nothing_and_reports_every_planned_change(answers, facts):
    world = World()
    code, rec = run(answers, facts, world, dry_run=True)
    assert code == EXIT_OK
    assert world.changed == []
    assert not any(s.startswith(("label/", "install/")) for s in world.ran)
    described = [e.message for e in rec.of(ChangeEvent)]
    assert len(described) == 5 and not any(e.applied for e in rec.of(ChangeEvent))
    assert rec.of(RunFinished)[-1].message == "dry-run complete: nothing was changed"


def test_gather_then_replan_then_change_in_order(answers, facts):
    world = World()
    code, rec = run(answers, facts, world)
    assert code == EXIT_OK
    assert world.ran[0] == "probe/hosts"
    assert world.changed == ["kube-system/gpu-kata-installer-state", "gpu-node-1", "gpu-node-2",
                             "kata-system/kata-deploy", "gpu-operator/gpu-operator"]
    plans = rec.of(PlanReady)
    assert len(plans) == 2  # before and after gathering host facts
    assert not any(s["phase"] == "gather" for s in plans[-1].plan["steps"])


def test_a_permit_cannot_be_forged_and_is_demanded():
    with pytest.raises(RuntimeError):
        Permit("sneaky", object())
    with pytest.raises(RuntimeError):
        require_permit(None)  # type: ignore[arg-type]


def test_only_the_engine_grants_permits():
    """Every mutation goes through Context.change, which shows it before doing it: a
    permit granted anywhere else would be a way around that."""
    root = Path(__file__).resolve().parents[2]
    granting = sorted(str(p.relative_to(root))
                      for d in ("installer", "screens", "remote")
                      for p in (root / d).rglob("*.py")
                      if "grant_permit(" in p.read_text() or "_PERMIT_KEY" in p.read_text())
    assert granting == ["installer/engine/runner.py", "installer/permit.py"]


def test_a_failed_step_stops_the_run_with_exit_1_and_says_why(answers, facts):
    world = World()
    code, rec = run(answers, facts, world, fail="install/kata-deploy")
    assert code == EXIT_STEP_FAILED
    assert "install/gpu-operator" not in world.ran
    failed = [e for e in rec.of(StepFinished) if e.status == "failed"]
    assert failed[0].path == "install/kata-deploy" and "broke" in failed[0].message


def facts_after(world: World, answers, facts):
    """What discovery would find after the fake world's changes: the resumed run's facts."""
    plan = build_plan(answers, facts)
    changed = {c.target: c for c in plan.changes if c.target in world.changed}
    releases = tuple(ReleaseFacts(c.detail["release"], c.detail["namespace"], "chart",
                                  c.detail["version"], "deployed", c.detail["values"])
                     for c in changed.values() if c.kind == "helm")
    nodes = tuple(replace(n, labels={**n.labels, c.detail["key"]: c.detail["to"]})
                  if (c := changed.get(n.name)) and c.kind == "label" else n
                  for n in facts.cluster.nodes)
    recorded = {} if "kube-system/gpu-kata-installer-state" in changed else None
    return replace(facts, cluster=replace(facts.cluster, releases=releases, nodes=nodes,
                                          recorded_labels=recorded))


def test_interrupted_run_resumes_without_redoing_finished_changes(answers, facts, tmp_path):
    journal_path = tmp_path / "journal.jsonl"
    world = World()

    async def interrupted() -> None:
        ctx = Context(dry_run=False, sinks=[Recorder()], decider=Yes(),
                      journal=Journal(journal_path))
        engine = Engine(answers, ctx, world.executors(block="install/gpu-operator"))
        task = asyncio.create_task(engine.run(facts))
        while "install/gpu-operator" not in world.ran:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    assert "kata-system/kata-deploy" in world.changed

    again = World()
    code, rec = run(answers, facts_after(world, answers, facts), again,
                    journal=Journal(journal_path))
    assert code == EXIT_OK
    assert again.changed == ["gpu-operator/gpu-operator"]
    resumed = {e.path for e in rec.of(StepFinished)
               if e.status == "skipped" and "interrupted run" in e.message}
    assert {"install/kata-deploy", "label/gpu-node-1"} <= resumed


def test_a_journal_never_skips_a_change_the_facts_say_is_needed(answers, facts, tmp_path):
    journal_path = tmp_path / "journal.jsonl"
    plan = build_plan(answers, facts)
    journal = Journal(journal_path)
    for step in plan.phase("change"):
        journal.step_done(step.id, step.fingerprint)  # an interrupted run did everything...
    world = World()  # ...but the cluster was reset since: facts still say "needed"
    code, rec = run(answers, facts, world, journal=Journal(journal_path))
    assert code == EXIT_OK
    assert "kata-system/kata-deploy" in world.changed
    assert any("needed again" in e.message for e in rec.of(WarningEvent))


def test_a_change_step_that_found_nothing_to_change_is_not_journalled(answers, facts,
                                                                       tmp_path):
    """The journal records changes made: a step whose executor changed nothing (a node
    already cordoned by the interrupted run) leaves no entry, so a resumed run does not
    count it as done twice."""
    journal_path = tmp_path / "journal.jsonl"
    world = World()
    executors = world.executors()

    async def nothing_to_do(ctx, step, facts):
        world.ran.append(step.id)
        return Done("already as planned")

    executors[p.LabelParams] = nothing_to_do
    ctx = Context(dry_run=False, sinks=[Recorder()], decider=Yes(),
                  journal=Journal(journal_path))
    assert asyncio.run(Engine(answers, ctx, executors).run(facts)) == EXIT_OK
    done = [json.loads(line).get("step") for line in journal_path.read_text().splitlines()]
    assert "label/gpu-node-1" in world.ran and "label/gpu-node-1" not in done
    assert "install/kata-deploy" in done


def test_cancellation_reports_exit_130(answers, facts):
    world = World()
    rec = Recorder()

    async def go() -> None:
        ctx = Context(dry_run=False, sinks=[rec], decider=Yes())
        task = asyncio.create_task(
            Engine(answers, ctx, world.executors(block="install/kata-deploy")).run(facts))
        while "install/kata-deploy" not in world.ran:
            assert not task.done(), task.result()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert rec.of(RunFinished)[-1].exit_code == EXIT_INTERRUPTED


def test_run_checks_gathers_and_checks_but_changes_nothing(answers, facts):
    world = World()
    rec = Recorder()
    ctx = Context(dry_run=False, sinks=[rec], decider=Yes())
    plan, gathered, failed = asyncio.run(
        Engine(answers, ctx, world.executors()).run_checks(facts))
    assert world.changed == [] and failed == []
    assert world.ran == ["probe/hosts", "check/cluster", "check/gpu-node-1", "check/gpu-node-2"]
    assert set(gathered.hosts) == {"gpu-node-1", "gpu-node-2"}
    assert not plan.phase("gather")


def test_hosts_are_verified_side_by_side_and_the_first_failure_in_plan_order_is_the_runs(
        answers, facts):
    """Why side by side: one SSH round trip per Kata host, one after another, grows with the
    fleet (0.13 s a host on the lab). Each host still reports its own result."""
    world = World()
    executors = world.executors()
    started: list[str] = []
    both = asyncio.Event()

    async def verify_host(ctx, step, facts):
        started.append(step.id)
        if len(started) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 5)  # one after another would time out here
        if step.id == "verify/host/gpu-node-1":
            await asyncio.sleep(0.05)  # fails last in time, first in the plan
        raise StepFailed(f"{step.id} broke")

    executors[p.VerifyHostParams] = verify_host
    rec = Recorder()
    ctx = Context(dry_run=False, sinks=[rec], decider=Yes())
    code = asyncio.run(Engine(answers, ctx, executors).run(facts))
    assert code == EXIT_STEP_FAILED
    assert sorted(started) == ["verify/host/gpu-node-1", "verify/host/gpu-node-2"]
    failed = {e.path: e.message for e in rec.of(StepFinished) if e.status == "failed"}
    assert set(failed) == set(started)
    assert rec.of(RunFinished)[-1].message == "verify/host/gpu-node-1 broke"
    assert "sample/cuda-vectoradd" not in world.ran
