"""Runs a plan: gather, plan again, check, change, verify - for both front ends.

Every side effect goes through `Context.change`, the one mutation point. In a dry-run it
emits the change's description and never calls the action; mutating helpers
(helm installs, label patches, host scripts) demand the `Permit` that only `change`
hands out, so a change cannot be made around it by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Protocol, TypeVar

from installer.answers.model import Answers
from installer.cluster.facts import Facts
from installer.engine.events import (
    ChangeEvent,
    Event,
    Output,
    PlanReady,
    RunFinished,
    RunStarted,
    Sink,
    StepFinished,
    StepStarted,
    WarningEvent,
)
from installer.engine.journal import Journal
from installer.engine.params import StepParams
from installer.engine.plan import Change, Plan, Step, build_plan
from installer.engine.waves import Wave, failure_message, run_chain, schedule
from installer.errors import (
    EXIT_CHECKS_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    StepFailed,
    UserError,
)
from installer.hosts.hostplan import refused_credentials
from installer.permit import Permit, grant_permit

T = TypeVar("T")


class Decider(Protocol):
    """Asks for consent mid-run: a modal in the TUI, a policy (and --yes) headless.

    `again` marks a change the operator saw only as a condition ("after the reboot, if the
    re-probe finds ..."), or not at all, in the plan they consented to: the screen asks
    even where the policy says `apply`; headless, the policy and --yes decide."""

    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool: ...


@dataclass(frozen=True)
class Done:
    """A step that finished, in the operator's words: its StepFinished message."""

    message: str


@dataclass(frozen=True)
class Replan:
    """Returned by a step after which some hosts' facts are stale (they rebooted)."""

    nodes: tuple[str, ...]

    def apply(self, facts: Facts) -> Facts:
        return replace(facts, hosts={k: v for k, v in facts.hosts.items() if k not in self.nodes})


class ChecksFailed(Exception):
    """Prerequisite checks failed and nothing planned will fix them."""


class Declined(Exception):
    """The operator said no to the plan before anything changed."""


@dataclass
class Context:
    dry_run: bool
    sinks: list[Sink]
    decider: Decider
    journal: Journal | None = None
    services: dict[str, Any] = field(default_factory=dict)
    applied: int = 0  # changes actually made in this run
    applied_by: Counter[str] = field(default_factory=Counter)  # ... by the step (path) making them

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)

    async def change(self, path: str, target: str, description: str,
                     action: Callable[[Permit], Awaitable[T]],
                     detail: dict[str, Any] | None = None) -> T | None:
        """The single place where anything on a host or the cluster is changed."""
        detail = detail or {}
        if self.dry_run:
            self.emit(ChangeEvent(path=path, target=target, message=description, applied=False,
                                  detail=detail))
            return None
        result = await action(grant_permit(description))
        self.applied += 1
        self.applied_by[path] += 1
        self.emit(ChangeEvent(path=path, target=target, message=description, applied=True,
                              detail=detail))
        return result


# What an executor returns: new Facts (a gather step), Done, or Replan (a change after which
# some hosts' facts are stale).
StepResult = Facts | Done | Replan
Executor = Callable[[Context, Step[Any], Facts], Awaitable[StepResult]]
Executors = dict[type[StepParams], Executor]


def side_by_side(steps: tuple[Step[Any], ...]) -> list[tuple[Step[Any], ...]]:
    """Steps in plan order, grouped: a run of `side_by_side` steps of one kind together."""
    groups: list[tuple[Step[Any], ...]] = []
    for step in steps:
        last = groups[-1] if groups else ()
        if step.side_by_side and last and last[0].side_by_side and \
                type(last[0].params) is type(step.params):
            groups[-1] = (*last, step)
        else:
            groups.append((step,))
    return groups


@dataclass
class Engine:
    """Executors are looked up by the type of a step's params; gather executors return new
    Facts."""

    answers: Answers
    ctx: Context
    executors: Executors
    planner: Callable[[Answers, Facts], Plan] = build_plan
    plan: Plan | None = None

    def _plan(self, facts: Facts) -> Plan:
        plan = self.planner(self.answers, facts)
        self.plan = plan
        self.ctx.emit(PlanReady(path="plan", message=f"{len(plan.steps)} steps, "
                                f"{len(plan.changes)} changes", plan=plan.to_dict()))
        for w in plan.warnings:
            self.ctx.emit(WarningEvent(path="plan", message=w))
        return plan

    async def _run_step(self, step: Step[Any], facts: Facts,
                        shown: dict[tuple[str, str, str], Change] | None = None, *,
                        consented: bool = False) -> StepResult | None:
        """Run one step. `shown` holds the changes of the plan consented to, when `step`
        comes from a plan made later in the run; its changes are held to them.
        `consented`: its own questions were asked already (a wave asks up front)."""
        self.ctx.emit(StepStarted(path=step.id, title=step.title, phase=step.phase,
                                  message=step.title))
        resumed = (step.phase == "change" and self.ctx.journal is not None
                   and self.ctx.journal.was_done(step.id))
        if step.phase == "change" and not step.changes:
            note = step.note or "nothing to change"
            self.ctx.emit(StepFinished(path=step.id, status="skipped", message=note + (
                " (done by the interrupted run)" if resumed else "")))
            return None
        if not self.ctx.dry_run and step.changes and all(c.condition for c in step.changes):
            self.ctx.emit(StepFinished(path=step.id, status="skipped",
                                       message=f"waits: {step.changes[0].condition}"))
            return None
        if resumed:
            self.ctx.emit(WarningEvent(path=step.id, message="the interrupted run did this, but "
                                       "the cluster or host shows it is needed again: redoing it"))
        if self.ctx.dry_run and step.phase in ("change", "verify"):
            for change in step.changes:
                self.ctx.emit(ChangeEvent(path=step.id, target=change.target, applied=False,
                                          message=change.description, detail=change.detail))
            self.ctx.emit(StepFinished(path=step.id, status="dry-run",
                                       message="dry-run: not executed"))
            return None
        executor = self.executors.get(type(step.params))
        if executor is None:
            raise StepFailed(f"{step.id}: no executor for {type(step.params).__name__} "
                             f"(action '{step.action}')")
        if step.phase == "change" and not consented:
            await self._consent(step, shown)
        applied = self.ctx.applied_by[step.id]
        try:
            result = await executor(self.ctx, step, facts)
        except StepFailed as exc:
            self.ctx.emit(StepFinished(path=step.id, status="failed", message=str(exc),
                                       detail="; ".join(x for x in (exc.cause, exc.fix) if x)))
            raise
        except UserError as exc:  # found mid-step (a refused API request): the step failed;
            # its problems and fixes are said once, by the front end that shows the error
            self.ctx.emit(StepFinished(path=step.id, status="failed", message=exc.summary))
            raise
        if step.phase == "change" and self.ctx.journal and self.ctx.applied_by[step.id] > applied:
            # Journalled before it is reported: a step the operator saw finish is on disk
            # even if the installer is killed the next instant. A step that found nothing to
            # change (a node already cordoned, nothing to evict) has nothing to record.
            self.ctx.journal.step_done(step.id, step.fingerprint)
        self.ctx.emit(StepFinished(path=step.id, status="ok",
                                   message=result.message if isinstance(result, Done)
                                   else "done"))
        return result

    async def _consent(self, step: Step[Any],
                       shown: dict[tuple[str, str, str], Change] | None) -> None:
        """The one place a change step gets its own consent, before its executor runs.

        A host fix asks per its policy. A step from a plan made after a reboot may hold a
        change the consented plan showed only as a condition (asked again), or not at all
        (asked as new; headless, that needs a terminal): what the operator agreed to
        bounds what the run does."""
        for change in step.changes:
            before = shown.get(change.key) if shown is not None else None
            unshown = shown is not None and before is None
            again = before is not None and bool(before.condition)
            if not (change.ask_first or again or unshown):
                continue
            node = change.target
            if unshown:
                question = (f"{change.description} - this was not in the plan you consented "
                            "to (the re-probe after the reboot found it). Apply it?")
                policy = "ask"
            else:
                question = f"Apply '{change.detail.get('fix', step.id)}' on {node}?"
                policy = change.policy or "ask"
            if await self.ctx.decider.confirm(question, change.detail.get("preview", ""),
                                              policy, again=again or unshown):
                continue
            if unshown:
                raise ChecksFailed(f"{change.description}: not applied - it was not in the plan "
                                   "consented to; run again to review the new plan")
            raise ChecksFailed(f"{node}: '{change.detail.get('fix', step.id)}' was not allowed "
                               f"(policy {policy}); the checks it would fix still fail")

    async def _run_together(self, steps: tuple[Step[Any], ...], facts: Facts) -> None:
        """Run steps side by side (a host each, at most ssh_limit at once); every one reports
        its own result, and the first failure in plan order is the run's."""
        if len(steps) == 1:
            await self._run_step(steps[0], facts)
            return
        for result in await self._at_once([partial(self._run_step, s, facts) for s in steps]):
            if isinstance(result, BaseException):
                raise result

    async def _at_once(self, jobs: list[Callable[[], Awaitable[T]]]
                       ) -> list[T | BaseException]:
        """Run jobs side by side, at most ssh_limit at once (each holds SSH sessions), and
        return every result or exception in the jobs' order."""
        limit = asyncio.Semaphore(self.ctx.services.get("ssh_limit", 50))

        async def one(job: Callable[[], Awaitable[T]]) -> T:
            async with limit:
                return await job()

        return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)

    async def _run_wave(self, wave: Wave, facts: Facts, done: set[str],
                        shown: dict[tuple[str, str, str], Change] | None,
                        later: bool) -> Replan | None:
        """Run a wave of host chains side by side (installer.engine.waves).

        Its questions are asked up front, one at a time in plan order, before any of its
        hosts is touched: side-by-side chains asking as they go would interleave questions
        with each other's progress, and a "no" half-way would leave a wave half done.
        Returns one Replan for every host the wave rebooted."""
        self.ctx.emit(Output(path="waves", message=wave.title))
        steps = [s for chain in wave.chains for s in chain]
        if not self.ctx.dry_run:
            for step in steps:
                if step.changes and not all(c.condition for c in step.changes):
                    await self._consent(step, shown if later else None)

        async def one(step: Step[Any]) -> bool:
            result = await self._run_step(step, facts, shown if later else None,
                                          consented=True)
            done.add(step.fingerprint)
            return isinstance(result, Replan)

        stop = asyncio.Event()
        if self.ctx.dry_run:  # nothing waits: the plan's order reads best
            outcomes = [await run_chain(c, one, stop) for c in wave.chains]
        else:
            results = await self._at_once([partial(run_chain, c, one, stop)
                                           for c in wave.chains])
            for r in results:
                if isinstance(r, BaseException):
                    raise r
            outcomes = [r for r in results if not isinstance(r, BaseException)]
        if any(o.failed for o in outcomes):
            first = next(o.failed for o in outcomes if o.failed)
            raise StepFailed(failure_message(wave, outcomes),
                             fix=getattr(first, "fix", "") or "")
        rebooted = tuple(o.node for o in outcomes if o.rebooted)
        return Replan(rebooted) if rebooted else None

    async def gather(self, facts: Facts) -> tuple[Plan, Facts]:
        """Gather until the plan needs no more facts; every gather step is read-only."""
        plan = self._plan(facts)
        while plan.phase("gather"):
            for step in plan.phase("gather"):
                await self._consent_to_gather(step)
                found = await self._run_step(step, facts)
                if not isinstance(found, Facts):
                    raise StepFailed(f"{step.id}: a gather step returned {found!r}, not facts")
                facts = found
            plan = self._plan(facts)
        return plan, facts

    async def _consent_to_gather(self, step: Step[Any]) -> None:
        """A gather step reads, but one that reaches hosts through host-access pods creates
        them (and deletes them after): asked first, like the plan's changes, so nothing is
        made on the cluster that the operator did not agree to. A dry-run makes none."""
        if self.ctx.dry_run or not step.changes:
            return
        pods = "\n".join(c.description for c in step.changes)
        if not await self.ctx.decider.confirm(
                f"{step.title}: create the {len(step.changes)} host-access pod(s) it needs "
                "(privileged, one per node, deleted after)?", pods, "apply"):
            raise Declined(f"not done: {step.title} needs the host-access pods, and they were "
                           "not allowed (headless: add --yes; or use hostAccess: ssh); nothing "
                           "was changed")

    async def run_checks(self, facts: Facts) -> tuple[Plan, Facts, list[str]]:
        """Gather, then run only the check phase (all read-only): the wizard's checks screen.

        Results arrive as CheckReported events; what blocks is returned, node by node.
        """
        plan, facts = await self.gather(facts)
        return plan, facts, await self._checks(plan, facts)

    async def _checks(self, plan: Plan, facts: Facts) -> list[str]:
        """Run every check step (all read-only) and collect what blocks, node by node."""
        failed = []
        for step in plan.phase("check"):
            try:
                await self._run_step(step, facts)
            except ChecksFailed as exc:
                self.ctx.emit(StepFinished(path=step.id, status="failed", message=str(exc)))
                failed.append(str(exc))
        return failed

    async def run(self, facts: Facts) -> int:
        """Run everything (`_run_all`), with one SSH connection per host kept open for
        all the run's steps (installer.hosts.access.HostAccess.keep_connections)."""
        keep = getattr(self.ctx.services.get("hosts"), "keep_connections", None)
        limit = self.ctx.services.get("ssh_limit", 50)
        async with keep(limit) if keep is not None else contextlib.nullcontext():
            return await self._run_all(facts)

    async def _run_all(self, facts: Facts) -> int:
        """Run everything; returns the exit code. Cancellation ends with 130.

        A change step may return a `replan` value (a host rebooted): its facts are dropped,
        gathered again, and the run continues with the new plan's remaining changes.
        """
        self.ctx.emit(RunStarted(path="run", dry_run=self.ctx.dry_run,
                                 message="dry-run" if self.ctx.dry_run else "run"))
        if self.ctx.journal and self.ctx.journal.notice:
            self.ctx.emit(WarningEvent(path="journal", message=self.ctx.journal.notice))
        done: set[str] = set()
        shown: dict[tuple[str, str, str], Change] | None = None  # the consented plan's
        try:
            while True:
                plan, facts = await self.gather(facts)
                failed = await self._checks(plan, facts)
                refused = refused_credentials(facts, {
                    node for s in plan.steps if s.phase != "gather"
                    and isinstance(node := getattr(s.params, "node", None), str)})
                if refused:
                    raise refused
                if failed and not self.ctx.dry_run:
                    raise ChecksFailed("prerequisite checks failed:\n  " + "\n  ".join(failed))
                later = shown is not None
                if shown is None:
                    await self._approve(plan)
                    shown = {c.key: c for c in plan.changes}
                replanned = False
                todo = [s for s in plan.phase("change") if s.fingerprint not in done]
                for item in schedule(todo, self.answers.rollout.max_unavailable):
                    if isinstance(item, Wave):
                        result = await self._run_wave(item, facts, done, shown, later)
                    else:
                        result = await self._run_step(item, facts, shown if later else None)
                        done.add(item.fingerprint)
                    if isinstance(result, Replan):
                        facts = result.apply(facts)
                        replanned = True
                        break
                if not replanned:
                    break
            changed = self.ctx.applied  # the sample's own pod is not a change to the cluster
            for group in side_by_side(plan.phase("verify")):
                await self._run_together(group, facts)
        except asyncio.CancelledError:
            self.ctx.emit(RunFinished(path="run", status="cancelled", exit_code=EXIT_INTERRUPTED,
                                      message="interrupted; run again to resume"))
            raise
        except UserError as exc:
            self._finish("failed", exc.exit_code, exc.summary)
            raise
        except ChecksFailed as exc:
            return self._finish("failed", EXIT_CHECKS_FAILED, str(exc))
        except Declined as exc:
            return self._finish("cancelled", EXIT_STEP_FAILED, str(exc))
        except StepFailed as exc:
            return self._finish("failed", EXIT_STEP_FAILED, str(exc))
        if failed:
            return self._finish("failed", EXIT_CHECKS_FAILED,
                                "dry-run complete, but prerequisite checks fail:\n  "
                                + "\n  ".join(failed))
        if self.ctx.journal and not self.ctx.dry_run:
            self.ctx.journal.run_complete()
        msg = ("dry-run complete: nothing was changed" if self.ctx.dry_run else
               "done" if changed else "done: everything was already in place, nothing changed")
        return self._finish("dry-run" if self.ctx.dry_run else "ok", EXIT_OK, msg)

    async def _approve(self, plan: Plan) -> None:
        """Consent to the whole plan before its first change: --yes, or a yes on the
        terminal (the screen's review is this consent). Declining changes nothing."""
        n = sum(1 for s in plan.phase("change") for c in s.changes if not c.condition)
        if self.ctx.dry_run or not n:
            return
        if not await self.ctx.decider.confirm(f"Apply the {n} change(s) of the plan above?",
                                              "", "apply"):
            raise Declined("not applied: consent to the plan was declined; nothing was changed")

    def _finish(self, status: Any, code: int, message: str) -> int:
        self.ctx.emit(RunFinished(path="run", status=status, exit_code=code, message=message))
        return code
