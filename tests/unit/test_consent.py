"""Consent: the run does no more than the plan the operator agreed to.

A reboot's re-probe plans again mid-run. What it plans is held to the consented plan: a
change shown there only as a condition ("after the reboot, if ...") is asked for again on
the screen and needs its policy and --yes headless; a change the plan never showed is asked
as new on the screen and refused headless. The planner here is hand-made so each rule is
pinned without hosts; tests/unit/test_plan.py shows the real planner emits such plans.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers
from installer.cluster.factsfile import load_recorded_facts
from installer.commands.headless import HeadlessDecider
from installer.engine.events import ChangeEvent, Recorder, RunFinished
from installer.engine.params import HostFixParams, ProbeParams, SshTarget
from installer.engine.plan import Change, Plan, Step
from installer.engine.runner import Context, Done, Engine, Replan
from installer.errors import EXIT_CHECKS_FAILED, EXIT_OK, EXIT_STEP_FAILED
from installer.permit import Permit, require_permit
from screens.bridge import TuiDecider

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
AFTER = "after the reboot, if the re-probe finds the IOMMU on"


def fix(node: str, name: str, policy: str = "apply", *, condition: str = "",
        ask_first: bool = False) -> Step[HostFixParams]:
    change = Change("host", node, f"{node}: {name}", {"fix": name, "preview": f"# {name}"},
                    policy=policy, ask_first=ask_first or policy == "ask", condition=condition)
    return Step(f"fix/{node}/{name}", "change", f"Host fix {name} on {node}",
                HostFixParams(node, SshTarget(node, None, None, None)), (change,))


def planner_for(bind_policy: str = "apply", new_after_reboot: bool = False):
    """Before the reboot: reboot, then a bind on condition. After it: the bind for real,
    and (if asked) a fix the first plan never showed."""
    def planner(answers, facts) -> Plan:
        host = facts.hosts.get("gpu-node-2")
        if host is None:
            return Plan((Step("probe/hosts", "gather", "Probe", ProbeParams(())),))
        if host == "before":
            steps = [fix("gpu-node-2", "reboot", ask_first=True),
                     fix("gpu-node-2", "vfio-bind", bind_policy, condition=AFTER)]
        else:
            steps = [fix("gpu-node-2", "vfio-bind", bind_policy, ask_first=True)]
            if new_after_reboot:
                steps.append(fix("gpu-node-2", "nvidia-driver-off"))
        return Plan(tuple(steps))
    return planner


class Host:
    """The fake world: a probe that sees the host before, then after, its reboot."""

    def __init__(self) -> None:
        self.probes = 0
        self.applied: list[str] = []

    def executors(self):
        async def probe(ctx, step, facts):
            self.probes += 1
            return replace(facts, hosts={"gpu-node-2": "before" if self.probes == 1 else "after"})

        async def host_fix(ctx, step, facts):
            async def act(permit: Permit) -> str:
                require_permit(permit)
                self.applied.append(step.id)
                return "applied"
            await ctx.change(step.id, "gpu-node-2", step.changes[0].description, act)
            return Replan(("gpu-node-2",)) if step.id.endswith("/reboot") else Done("applied")

        return {ProbeParams: probe, HostFixParams: host_fix}


class Asked:
    """The screen's modal: records what it was asked; answers yes unless `refuse` is in
    the question."""

    def __init__(self, refuse: str = "\0") -> None:
        self.questions: list[str] = []
        self.refuse = refuse

    def __call__(self, question: str, detail: str) -> asyncio.Future[bool]:
        self.questions.append(question)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.set_result(self.refuse not in question)
        return future


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(decider, planner, *, dry_run: bool = False) -> tuple[int, Recorder, Host]:
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})
    rec, host = Recorder(), Host()
    ctx = Context(dry_run=dry_run, sinks=[rec], decider=decider)
    code = asyncio.run(Engine(answers, ctx, host.executors(), planner).run(facts))
    return code, rec, host


def test_the_dry_run_shows_the_bind_with_its_condition_and_runs_nothing():
    code, rec, host = run(HeadlessDecider(True, io.StringIO(), io.StringIO()), planner_for(),
                          dry_run=True)
    assert code == EXIT_OK and host.applied == []
    shown = [e.message for e in rec.of(ChangeEvent)]
    assert shown == ["gpu-node-2: reboot", "gpu-node-2: vfio-bind"]
    assert not any(e.applied for e in rec.of(ChangeEvent))


def test_the_screen_asks_again_for_a_bind_it_showed_on_condition_even_when_policy_applies():
    ask = Asked()
    code, _, host = run(TuiDecider(ask), planner_for("apply"))
    assert code == EXIT_OK
    assert host.applied == ["fix/gpu-node-2/reboot", "fix/gpu-node-2/vfio-bind"]
    assert ask.questions == ["Apply 'vfio-bind' on gpu-node-2?"]  # the reboot's policy applied


def test_the_screen_stops_when_the_bind_is_refused_the_second_time():
    ask = Asked(refuse="vfio-bind")
    code, rec, host = run(TuiDecider(ask), planner_for("apply"))
    assert code == EXIT_CHECKS_FAILED
    assert host.applied == ["fix/gpu-node-2/reboot"]
    assert "'vfio-bind' was not allowed" in rec.of(RunFinished)[-1].message


def test_headless_applies_the_conditional_bind_only_with_apply_and_yes():
    code, _, host = run(HeadlessDecider(True, io.StringIO(), io.StringIO()), planner_for("apply"))
    assert code == EXIT_OK and host.applied[-1] == "fix/gpu-node-2/vfio-bind"

    code, rec, host = run(HeadlessDecider(True, io.StringIO(), io.StringIO()), planner_for("ask"))
    assert code == EXIT_CHECKS_FAILED
    assert host.applied == ["fix/gpu-node-2/reboot"]
    assert "'vfio-bind' was not allowed (policy ask)" in rec.of(RunFinished)[-1].message


@pytest.mark.parametrize("front", ["headless", "screen"])
def test_a_change_the_consented_plan_never_showed_is_not_made_without_a_new_yes(front):
    ask = Asked(refuse="nvidia-driver-off")
    decider = (HeadlessDecider(True, io.StringIO(), io.StringIO()) if front == "headless"
               else TuiDecider(ask))
    code, rec, host = run(decider, planner_for("apply", new_after_reboot=True))
    assert code == EXIT_CHECKS_FAILED
    assert "fix/gpu-node-2/nvidia-driver-off" not in host.applied
    assert "not in the plan consented to" in rec.of(RunFinished)[-1].message
    if front == "screen":
        assert any("was not in the plan you consented to" in q for q in ask.questions)


def test_without_yes_a_terminal_is_asked_for_the_whole_plan_and_no_changes_nothing():
    out = io.StringIO()
    code, rec, host = run(HeadlessDecider(False, Tty("n\n"), out), planner_for())
    assert code == EXIT_STEP_FAILED and host.applied == []
    assert "Apply the 1 change(s) of the plan above? [y/N]" in out.getvalue()
    assert "nothing was changed" in rec.of(RunFinished)[-1].message
