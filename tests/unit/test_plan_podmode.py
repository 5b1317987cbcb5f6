"""Pod mode in the plan: each host step reached through a host-access pod names it, and the
plan lists each pod as a change before one exists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from installer.answers.model import parse_answers
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.hostroute import pod_settings
from installer.engine.plan import HOST_ACCESS_POD, build_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"


def answers_with(**extra):
    data = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    data.update(extra)
    return parse_answers(yaml.safe_dump(data))


def pods_of(step):
    return [c for c in step.changes if c.detail.get("key") == HOST_ACCESS_POD]


def test_a_probe_through_pods_lists_each_pod_as_a_change_and_says_how_it_reaches_them():
    facts = replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})
    plan = build_plan(answers_with(hostAccess="pod"), facts)
    (probe,) = plan.phase("gather")
    assert "through host-access pods" in probe.title and "over SSH" not in probe.title
    assert {t.pod for t in probe.params.targets} == {
        f"gpu-kata-installer/gki-host-{t.node}" for t in probe.params.targets}
    assert [c.target for c in pods_of(probe)] == [t.pod for t in probe.params.targets]
    assert all("privileged" in c.description and "then delete it" in c.description
               for c in pods_of(probe))


def test_over_ssh_nothing_changes_in_the_plan():
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    plan = build_plan(answers_with(), facts)
    assert not [c for c in plan.changes if c.detail.get("key") == HOST_ACCESS_POD]
    assert all(s.params.target.pod is None for s in plan.steps if s.action == "host-fix")


def test_every_host_fix_through_a_pod_carries_its_pod_and_a_waiting_fix_waits_with_it():
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    plan = build_plan(answers_with(hostAccess={"mode": "pod"}), facts)
    fixes = [s for s in plan.steps if s.action == "host-fix"]
    assert fixes and all(len(pods_of(s)) == 1 for s in fixes)
    host_change = {s.id: s.changes[0] for s in fixes}
    assert all(c.kind == "host" for c in host_change.values())  # the fix itself comes first
    bind = next(s for s in fixes if s.id == "fix/gpu-node-2/vfio-bind")
    assert {c.condition for c in bind.changes} == {bind.changes[0].condition} != {""}
    verify = next(s for s in plan.steps if s.id == "verify/host/gpu-node-2")
    assert pods_of(verify)[0].target == "gpu-kata-installer/gki-host-gpu-node-2"


def test_a_node_can_be_reached_the_other_way_than_the_rest():
    data = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    data["hostAccess"] = "pod"
    for item in data["nodes"]["items"]:
        if item["name"] == "gpu-node-2":
            item["hostAccess"] = "ssh"
    facts = replace(load_recorded_facts(EXAMPLES / "facts.yaml"), hosts={})
    (probe,) = build_plan(parse_answers(yaml.safe_dump(data)), facts).phase("gather")
    by_node = {t.node: t.pod for t in probe.params.targets}
    assert by_node["gpu-node-2"] is None
    assert [n for n, pod in by_node.items() if pod] == [n for n in by_node if n != "gpu-node-2"]
    assert "over SSH and through host-access pods" in probe.title


def test_the_pod_image_comes_from_the_mirror_when_one_is_set():
    answers = answers_with(hostAccess={"mode": "pod", "podImage": "docker.io/library/busybox:1.37"},
                           images={"registry": "registry.example.com/mirror",
                                   "pullSecrets": ["mirror-pull"]})
    settings = pod_settings(answers)
    assert settings.image == "registry.example.com/mirror/library/busybox:1.37"
    assert settings.pull_secrets == ("mirror-pull",)
    assert settings.command_timeout == answers.ssh.command_timeout
