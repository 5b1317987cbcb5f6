"""Runs a plan: gather, plan again, check, change, verify - for both front ends.

Every side effect goes through `Context.change`, the one mutation point. In a dry-run it
emits the change's description and never calls the action; mutating helpers
(helm installs, label patches, host scripts) demand the `Permit` that only `change`
hands out, so a change cannot be made around it by accident.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from installer.answers import Answers
from installer.errors import (
    EXIT_CHECKS_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STEP_FAILED,
    StepFailed,
    UserError,
)
from installer.events import (
    ChangeEvent,
    Event,
    PlanReady,
    RunFinished,
    RunStarted,
    Sink,
    StepFinished,
    StepStarted,
    WarningEvent,
)
from installer.facts import Facts
from installer.hostplan import refused_credentials
from installer.journal import Journal
from installer.permit import Permit, grant_permit
from installer.plan import Plan, Step, build_plan

T = TypeVar("T")


class Decider(Protocol):
    """Asks for consent mid-run: a modal in the TUI, a policy (and --yes) headless."""

    async def confirm(self, question: str, detail: str, policy: str) -> bool: ...


@dataclass(frozen=True)
class Replan:
    """Returned by a step after which some hosts' facts are stale (they rebooted)."""

    nodes: tuple[str, ...]

    def apply(self, facts: Facts) -> Facts:
        return replace(facts, hosts={k: v for k, v in facts.hosts.items() if k not in self.nodes})


class ChecksFailed(Exception):
    """Prerequisite checks failed and nothing planned will fix them."""


@dataclass
class Context:
    dry_run: bool
    sinks: list[Sink]
    decider: Decider
    journal: Journal | None = None
    services: dict[str, Any] = field(default_factory=dict)
    applied: int = 0  # changes actually made in this run

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
        self.emit(ChangeEvent(path=path, target=target, message=description, applied=True,
                              detail=detail))
        return result


Executor = Callable[[Context, Step, Facts], Awaitable[Any]]


def side_by_side(steps: tuple[Step, ...]) -> list[tuple[Step, ...]]:
    """Steps in plan order, grouped: a run of `side_by_side` steps of one action together."""
    groups: list[tuple[Step, ...]] = []
    for step in steps:
        last = groups[-1] if groups else ()
        if step.side_by_side and last and last[0].side_by_side and \
                last[0].action == step.action:
            groups[-1] = (*last, step)
        else:
            groups.append((step,))
    return groups


@dataclass
class Engine:
    """Executors are looked up by a step's `action`; gather executors return new Facts."""

    answers: Answers
    ctx: Context
    executors: dict[str, Executor]
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

    async def _run_step(self, step: Step, facts: Facts) -> Any:
        self.ctx.emit(StepStarted(path=step.id, title=step.title, phase=step.phase,
                                  message=step.title))
        resumed = (step.phase == "change" and self.ctx.journal is not None
                   and self.ctx.journal.was_done(step.id))
        if step.phase == "change" and not step.changes:
            note = step.note or "nothing to change"
            self.ctx.emit(StepFinished(path=step.id, status="skipped", message=note + (
                " (done by the interrupted run)" if resumed else "")))
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
        executor = self.executors.get(step.action)
        if executor is None:
            raise StepFailed(f"{step.id}: no executor for action '{step.action}'")
        try:
            result = await executor(self.ctx, step, facts)
        except StepFailed as exc:
            self.ctx.emit(StepFinished(path=step.id, status="failed", message=str(exc),
                                       detail="; ".join(x for x in (exc.cause, exc.fix) if x)))
            raise
        if step.phase == "change" and self.ctx.journal:
            # Journalled before it is reported: a step the operator saw finish is on disk
            # even if the installer is killed the next instant.
            self.ctx.journal.step_done(step.id, step.fingerprint)
        self.ctx.emit(StepFinished(path=step.id, status="ok",
                                   message=result if isinstance(result, str) else "done"))
        return result

    async def _run_together(self, steps: tuple[Step, ...], facts: Facts) -> None:
        """Run steps side by side (a host each, at most ssh_limit at once); every one reports
        its own result, and the first failure in plan order is the run's."""
        if len(steps) == 1:
            await self._run_step(steps[0], facts)
            return
        limit = asyncio.Semaphore(self.ctx.services.get("ssh_limit", 50))

        async def one(step: Step) -> Any:
            async with limit:
                return await self._run_step(step, facts)

        results = await asyncio.gather(*(one(s) for s in steps), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def gather(self, facts: Facts) -> tuple[Plan, Facts]:
        """Gather until the plan needs no more facts; every gather step is read-only."""
        plan = self._plan(facts)
        while plan.phase("gather"):
            for step in plan.phase("gather"):
                facts = await self._run_step(step, facts)
            plan = self._plan(facts)
        return plan, facts

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
        """Run everything; returns the exit code. Cancellation ends with 130.

        A change step may return a `replan` value (a host rebooted): its facts are dropped,
        gathered again, and the run continues with the new plan's remaining changes.
        """
        self.ctx.emit(RunStarted(path="run", dry_run=self.ctx.dry_run,
                                 message="dry-run" if self.ctx.dry_run else "run"))
        done: set[str] = set()
        try:
            while True:
                plan, facts = await self.gather(facts)
                failed = await self._checks(plan, facts)
                refused = refused_credentials(facts)
                if refused:
                    raise refused
                if failed and not self.ctx.dry_run:
                    raise ChecksFailed("prerequisite checks failed:\n  " + "\n  ".join(failed))
                replanned = False
                for step in plan.phase("change"):
                    if step.fingerprint in done:
                        continue
                    result = await self._run_step(step, facts)
                    done.add(step.fingerprint)
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

    def _finish(self, status: Any, code: int, message: str) -> int:
        self.ctx.emit(RunFinished(path="run", status=status, exit_code=code, message=message))
        return code
