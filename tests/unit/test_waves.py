"""Host fixes and reboots in waves: at most rollout.maxUnavailable hosts at once, each
cordoned and drained before its reboot and uncordoned after; a failure stops the waves.

The cordon, drain and uncordon executors are the real ones against a fake API server (a
dict of nodes and pods); the host fixes and the reboot are fakes that take a little time,
so chains running side by side overlap and chains one at a time do not.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from installer.answers.model import Rollout, load_answers
from installer.cluster.apierrors import ApiError
from installer.cluster.factsfile import load_recorded_facts
from installer.engine import params as p
from installer.engine.events import ChangeEvent, Output, Recorder, RunFinished
from installer.engine.plan import Change, Plan, Step, build_plan
from installer.engine.runner import Context, Done, Engine, Replan
from installer.engine.sinks import render_plan
from installer.engine.steps import cordon
from installer.engine.waves import schedule, waves_of
from installer.errors import EXIT_OK, EXIT_STEP_FAILED, StepFailed
from installer.permit import Permit, require_permit

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
HOSTS = ("h1", "h2", "h3", "h4")


class Yes:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        self.asked.append(question)
        return True


class FakeKube:
    """Nodes and pods as the API server holds them, and the calls made to it."""

    def __init__(self, nodes: tuple[str, ...], pods: dict[str, list[dict[str, Any]]]) -> None:
        self.nodes = {n: {"metadata": {"name": n, "annotations": {}}, "spec": {}} for n in nodes}
        self.pods = pods
        self.log: list[str] = []

    def get_json(self, path: str, **query: str) -> dict[str, Any]:
        return self.nodes[path.rsplit("/", 1)[1]]

    def list_items(self, path: str, **query: str) -> list[dict[str, Any]]:
        return list(self.pods.get(query["fieldSelector"].split("=", 1)[1], []))

    def send_json(self, method: str, path: str, body: dict[str, Any], *_a: Any) -> Any:
        if path.endswith("/eviction"):
            name = body["metadata"]["name"]
            for node, pods in self.pods.items():
                if any(x["metadata"]["name"] == name for x in pods):
                    self.log.append(f"evict {node} {name}")
                    self.pods[node] = [x for x in pods if x["metadata"]["name"] != name]
                    return {}
            raise ApiError(404, "gone")
        node = self.nodes[path.rsplit("/", 1)[1]]
        if "spec" in body:
            cordoned = bool(body["spec"]["unschedulable"])
            node["spec"]["unschedulable"] = cordoned or None
            self.log.append(("cordon " if cordoned else "uncordon ") + node["metadata"]["name"])
        for key, value in (body.get("metadata") or {}).get("annotations", {}).items():
            if value is None:
                node["metadata"]["annotations"].pop(key, None)
            else:
                node["metadata"]["annotations"][key] = value
        return {}


def pod(name: str, owner: str | None = "ReplicaSet") -> dict[str, Any]:
    refs = [{"kind": owner, "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": "apps", "ownerReferences": refs},
            "status": {"phase": "Running"}}


def change_step(step_id: str, params: p.StepParams, node: str, key: str,
                **kw: Any) -> Step[Any]:
    change = Change("host" if key.startswith("fix") else "cluster", node, f"{key} {node}",
                    {"node": node, "key": key, "fix": key.removeprefix("fix-")}, **kw)
    return Step(step_id, "change", step_id, params, (change,))


def chain(node: str, drain_timeout: int = 60) -> list[Step[Any]]:
    target = p.SshTarget(node, None, None, None)
    return [change_step(f"cordon/{node}", p.CordonParams(node), node, "cordon"),
            change_step(f"drain/{node}", p.DrainParams(node, drain_timeout), node, "drain"),
            change_step(f"fix/{node}/iommu", p.HostFixParams(node, target), node, "fix-iommu"),
            change_step(f"fix/{node}/reboot", p.HostFixParams(node, target), node,
                        "fix-reboot", ask_first=True),
            change_step(f"uncordon/{node}", p.UncordonParams(node), node, "uncordon")]


def planner(answers, facts) -> Plan:
    """Probe the hosts not probed; a host probed `before` its reboot gets its chain, then
    a label step that is not part of any chain."""
    missing = [n for n in HOSTS if n not in facts.hosts]
    if missing:
        return Plan((Step("probe/hosts", "gather", "probe", p.ProbeParams(tuple(
            p.SshTarget(n, None, None, None) for n in missing))),))
    steps = [s for n in HOSTS if facts.hosts[n] == "before" for s in chain(n)]
    steps.append(change_step("label/all", p.LabelParams("h1", "k", "v"), "h1", "label"))
    return Plan(tuple(steps))


class World:
    """The hosts: each is `before` its reboot until it reboots, then `after`."""

    def __init__(self, kube: FakeKube, fail: str = "") -> None:
        self.kube, self.fail = kube, fail
        self.state = dict.fromkeys(HOSTS, "before")
        self.probed: list[tuple[str, ...]] = []
        self.busy: set[str] = set()
        self.most_at_once = 0

    def executors(self):
        async def probe(ctx, step, facts):
            nodes = tuple(t.node for t in step.params.targets)
            self.probed.append(nodes)
            return replace(facts, hosts={**facts.hosts, **{n: self.state[n] for n in nodes}})

        async def host_fix(ctx, step, facts):
            node = step.params.node
            self.busy.add(node)
            self.most_at_once = max(self.most_at_once, len(self.busy))

            async def act(permit: Permit) -> None:
                require_permit(permit)
                if step.id == self.fail:  # at once: the wave's other chains are mid-step
                    raise StepFailed(f"{step.id} failed on {node}: timed out")
                await asyncio.sleep(0.05)
                self.kube.log.append(f"{step.id}")
                if step.id.endswith("/reboot"):
                    self.state[node] = "after"
            try:
                await ctx.change(step.id, node, step.changes[0].description, act)
            finally:
                self.busy.discard(node)
            return Replan((node,)) if step.id.endswith("/reboot") else Done("applied")

        async def label(ctx, step, facts):
            self.kube.log.append("label")
            return Done("labelled")

        return {p.ProbeParams: probe, p.HostFixParams: host_fix, p.LabelParams: label,
                p.CordonParams: cordon.cordon, p.DrainParams: cordon.drain_node,
                p.UncordonParams: cordon.uncordon}


def run(world: World, max_unavailable: int, *, dry_run: bool = False,
        decider: Any = None) -> tuple[int, Recorder]:
    answers = load_answers(EXAMPLES / "answers.yaml")
    answers = answers.model_copy(update={"rollout": Rollout(max_unavailable=max_unavailable)})
    facts = replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})
    rec = Recorder()
    ctx = Context(dry_run=dry_run, sinks=[rec], decider=decider or Yes(),
                  services={"kube": world.kube})
    code = asyncio.run(Engine(answers, ctx, world.executors(), planner).run(facts))
    return code, rec


def test_waves_of_at_most_max_unavailable_hosts():
    assert waves_of(["a", "b", "c", "d", "e"], 2) == [("a", "b"), ("c", "d"), ("e",)]
    assert waves_of(["a"], 50) == [("a",)]


def test_chains_run_side_by_side_in_waves_and_each_wave_is_reprobed_once():
    world = World(FakeKube(HOSTS, {}))
    code, rec = run(world, 2)
    assert code == EXIT_OK, rec.of(RunFinished)[-1].message
    assert world.most_at_once == 2
    # the first probe, then one per wave for both of its rebooted hosts together
    assert world.probed == [HOSTS, ("h1", "h2"), ("h3", "h4")]
    assert [e.message for e in rec.of(Output) if e.path == "waves"] == \
        ["wave 1 of 2: h1, h2", "wave 1 of 1: h3, h4"]
    log = world.kube.log
    assert log.index("fix/h2/reboot") < log.index("cordon h3")  # wave 2 after wave 1
    assert log[-1] == "label"  # the step after the chains waits for every wave


def test_one_at_a_time_when_max_unavailable_is_one():
    world = World(FakeKube(HOSTS, {}))
    code, _ = run(world, 1)
    assert code == EXIT_OK and world.most_at_once == 1
    assert len(world.probed) == 1 + len(HOSTS)


def test_each_node_is_cordoned_and_drained_before_its_reboot_and_uncordoned_after():
    kube = FakeKube(HOSTS, {"h1": [pod("web-1"), pod("agent", "DaemonSet")]})
    code, rec = run(World(kube), 4)
    assert code == EXIT_OK
    h1 = [x for x in kube.log if "h1" in x or x.startswith("evict")]
    assert h1 == ["cordon h1", "evict h1 web-1", "fix/h1/iommu", "fix/h1/reboot", "uncordon h1"]
    assert [x["metadata"]["name"] for x in kube.pods["h1"]] == ["agent"]  # DaemonSet stays
    assert not any(n["spec"].get("unschedulable") or n["metadata"]["annotations"]
                   for n in kube.nodes.values())
    assert "drain h1 (evict pods apps/web-1; PDBs honoured)" in [
        e.message for e in rec.of(ChangeEvent)]


def test_a_node_cordoned_before_the_run_stays_cordoned():
    kube = FakeKube(HOSTS, {})
    kube.nodes["h3"]["spec"]["unschedulable"] = True
    code, _ = run(World(kube), 2)
    assert code == EXIT_OK
    assert "cordon h3" not in kube.log and "uncordon h3" not in kube.log
    assert kube.nodes["h3"]["spec"]["unschedulable"] is True
    assert "fix/h3/reboot" in kube.log


def test_a_failed_reboot_stops_the_run_after_its_wave_and_leaves_the_next_untouched():
    kube = FakeKube(HOSTS, {})
    world = World(kube, fail="fix/h2/reboot")
    code, rec = run(world, 2)
    assert code == EXIT_STEP_FAILED
    message = rec.of(RunFinished)[-1].message
    assert "h2: fix/h2/reboot failed on h2" in message
    assert "done: h1" in message and "failed: h2 (left cordoned)" in message
    assert "untouched (their waves did not start): h3, h4" in message
    assert "fix/h1/reboot" in kube.log and "uncordon h1" in kube.log  # h1's chain finished
    assert not any("h3" in x or "h4" in x for x in kube.log)
    assert kube.nodes["h2"]["spec"]["unschedulable"] is True
    assert not kube.nodes["h1"]["spec"].get("unschedulable")
    assert "label" not in kube.log


def test_the_other_chains_of_the_wave_stop_before_their_reboot_and_are_uncordoned():
    kube = FakeKube(HOSTS, {})
    code, rec = run(World(kube, fail="fix/h2/iommu"), 2)
    assert code == EXIT_STEP_FAILED
    message = rec.of(RunFinished)[-1].message
    assert "stopped: h1 before fix/h1/reboot" in message and "done:" not in message
    assert "fix/h1/iommu" in kube.log and "fix/h1/reboot" not in kube.log
    assert "uncordon h1" in kube.log and "uncordon h2" not in kube.log


def test_a_bare_pod_stops_the_drain_before_the_reboot_and_is_named():
    kube = FakeKube(HOSTS, {"h1": [pod("scratch", owner=None)]})
    code, rec = run(World(kube), 1)
    assert code == EXIT_STEP_FAILED
    message = rec.of(RunFinished)[-1].message
    assert "apps/scratch" in message and "failed: h1 (left cordoned)" in message
    assert "fix/h1/reboot" not in kube.log and kube.pods["h1"]  # not rebooted, not evicted


def test_a_waves_questions_are_asked_up_front_before_any_of_its_hosts_is_touched():
    decider = Yes()
    world = World(FakeKube(HOSTS, {}))
    answered: list[int] = []
    world_exec = world.executors()

    async def noting(question, detail, policy, *, again=False):
        answered.append(len(world.kube.log))
        return await Yes.confirm(decider, question, detail, policy, again=again)

    decider.confirm = noting  # type: ignore[method-assign]
    assert world_exec
    code, _ = run(world, 2, decider=decider)
    assert code == EXIT_OK
    reboots = [q for q in decider.asked if "reboot" in q]
    assert len(reboots) == 4
    # wave 1's two reboot questions came before anything changed on h1 or h2
    assert answered[1:3] == [0, 0]


def test_the_dry_run_shows_every_chain_and_changes_nothing():
    kube = FakeKube(HOSTS, {})
    code, rec = run(World(kube), 2, dry_run=True)
    assert code == EXIT_OK and kube.log == []
    assert [e.message for e in rec.of(Output) if e.path == "waves"] == \
        ["wave 1 of 2: h1, h2", "wave 2 of 2: h3, h4"]
    shown = [e.message for e in rec.of(ChangeEvent)]
    assert shown[:5] == ["cordon h1", "drain h1", "fix-iommu h1", "fix-reboot h1", "uncordon h1"]


@pytest.mark.parametrize("max_unavailable, notes", [
    (1, ["wave 1 of 2: gpu-node-1", "wave 2 of 2: gpu-node-2"]),
    (2, ["wave 1 of 1: gpu-node-1, gpu-node-2"])])
def test_the_plan_shows_the_waves_and_the_drain_around_each_reboot(max_unavailable, notes):
    answers = load_answers(EXAMPLES / "answers.yaml")
    answers = answers.model_copy(update={"rollout": Rollout(max_unavailable=max_unavailable)})
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    needs_reboot = facts.hosts["gpu-node-2"]
    plan = build_plan(answers, replace(facts, hosts={"gpu-node-1": needs_reboot,
                                                     "gpu-node-2": needs_reboot}))
    ids = [s.id for s in plan.phase("change")]
    for node in ("gpu-node-1", "gpu-node-2"):
        assert ids.index(f"cordon/{node}") < ids.index(f"drain/{node}") \
            < ids.index(f"fix/{node}/reboot") < ids.index(f"uncordon/{node}")
    text = "\n".join(render_plan(plan.to_dict()))
    for note in notes:
        assert note in text
    assert "will change: uncordon gpu-node-1 once Ready after the reboot" in text
    waves = [w for w in schedule(plan.phase("change"), max_unavailable) if hasattr(w, "chains")]
    assert len(waves) == len(notes)
