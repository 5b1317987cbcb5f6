"""What the charts do on the hosts is in the plan, and nothing runs where nobody chose it.

kata-deploy's chart defaults put it on every untainted node and set up a snapshotter on
each (domain.md section 9); the values turn both off, and the plan says on which hosts
each chart's pods will change what.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers, parse_answers
from installer.charts.values import kata_deploy_values
from installer.cluster.facts import ReleaseFacts, Taint
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.plan import build_plan
from installer.engine.sinks import render_plan
from installer.engine.uninstall import build_uninstall_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
ANSWERS = (EXAMPLES / "answers.yaml").read_text()


def plan_for(text: str = ANSWERS):
    return build_plan(parse_answers(text, "answers.yaml"),
                      load_recorded_facts(EXAMPLES / "facts.yaml"))


def effects(plan, step_id: str) -> list[str]:
    (change,) = next(s for s in plan.steps if s.id == step_id).changes
    return change.detail["hostEffects"]


def test_kata_deploy_selects_the_kata_nodes_and_sets_up_no_snapshotter():
    values = kata_deploy_values(load_answers(EXAMPLES / "answers.yaml").kata_deploy)
    assert values["nodeSelector"] == {"nvidia.com/gpu.workload.config": "vm-passthrough"}
    assert values["snapshotter"] == {"setup": []}


def test_the_plan_says_kata_deploy_lands_on_the_kata_nodes_alone_and_what_it_does_there():
    lines = effects(plan_for(), "install/kata-deploy")
    assert lines[0] == ("kata-deploy runs on gpu-node-1, gpu-node-2 (nodeSelector "
                        "nvidia.com/gpu.workload.config=vm-passthrough)")
    assert "restarts containerd" in lines[1] and "kata-qemu-nvidia-gpu" in lines[1]
    assert not any("snapshotter" in line for line in lines)


def test_default_kata_nodes_are_labelled_so_kata_deploy_finds_them():
    text = ANSWERS.replace("default: traditional", "default: kata").replace(
        "    - name: gpu-node-2\n      choice: kata\n", "")
    plan = plan_for(text)
    assert "label/gpu-node-2" in [s.id for s in plan.steps]
    assert effects(plan, "install/kata-deploy")[0].startswith(
        "kata-deploy runs on gpu-node-1, gpu-node-2 (")


def test_values_that_widen_kata_deploy_or_ask_for_a_snapshotter_are_listed_host_changes():
    text = ANSWERS.replace(
        "  release: kata-deploy\n  values: {}",
        "  release: kata-deploy\n  values: {nodeSelector: null, snapshotter: {setup: [nydus]}}")
    lines = effects(plan_for(text), "install/kata-deploy")
    assert lines[0] == ("kata-deploy runs on every node it tolerates (nodeSelector is empty): "
                        "control-1, gpu-node-1, gpu-node-2, gpu-node-3")
    assert "sets up the nydus snapshotter" in lines[2]


def test_the_operators_host_changes_are_listed_per_workload():
    lines = effects(plan_for(), "install/gpu-operator")
    kata, container = lines
    assert kata.startswith("GPU Operator on gpu-node-1, gpu-node-2 (vm-passthrough): ")
    assert "binds every NVIDIA GPU to vfio-pci" in kata
    assert "confidential-computing mode 'on'" in kata
    assert container.startswith("GPU Operator on gpu-node-3 (container): ")
    assert "loads the NVIDIA driver" in container and "restarts it" in container
    off = plan_for(ANSWERS.replace("ccMode: leave", "ccMode: 'off'"))
    assert "confidential-computing mode 'off'" in effects(off, "install/gpu-operator")[0]


def test_the_dry_run_text_shows_the_host_effects_under_each_chart():
    text = "\n".join(render_plan(plan_for().to_dict()))
    assert "        on the hosts: kata-deploy runs on gpu-node-1, gpu-node-2" in text
    assert "        on the hosts: GPU Operator on gpu-node-3 (container)" in text


def installed(operator_version: str):
    """The example cluster after an install: both releases, Kata nodes labelled and ready."""
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    kata = {"nvidia.com/gpu.workload.config": "vm-passthrough",
            "katacontainers.io/kata-runtime": "true"}
    nodes = tuple(replace(n, labels={**n.labels, **kata}) if n.name in ("gpu-node-1",
                                                                        "gpu-node-2") else n
                  for n in facts.cluster.nodes)
    releases = (ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", operator_version,
                             "deployed"),
                ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0", "deployed"))
    return replace(facts, cluster=replace(facts.cluster, nodes=nodes, releases=releases))


@pytest.mark.parametrize(("version", "says"), [
    ("v26.3.1", "the GPUs stay on vfio-pci until the next reboot"),
    ("v26.7.0", "vfio-manager's preStop returns the GPUs from vfio-pci")])
def test_uninstall_lists_what_removing_each_chart_does_on_its_hosts(version, says):
    plan = build_uninstall_plan(load_answers(EXAMPLES / "answers.yaml"), installed(version))
    (operator,) = effects(plan, "uninstall/gpu-operator")
    assert operator.startswith("on gpu-node-1, gpu-node-2: ") and says in operator
    (kata,) = effects(plan, "uninstall/kata-deploy")
    assert kata.startswith("on gpu-node-1, gpu-node-2: ") and "restarts containerd" in kata
    assert "on the hosts: " + kata in "\n".join(render_plan(plan.to_dict()))


GPU_POOL = Taint("nvidia.com/gpu", "NoSchedule", "present")


def tainted(*nodes: str, taint: Taint = GPU_POOL):
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    return replace(facts, cluster=replace(facts.cluster, nodes=tuple(
        replace(n, taints=(taint,)) if n.name in nodes else n for n in facts.cluster.nodes)))


def test_kata_deploy_tolerates_the_kata_nodes_taints_so_a_tainted_gpu_pool_gets_it():
    answers = load_answers(EXAMPLES / "answers.yaml")
    plan = build_plan(answers, tainted("gpu-node-1", "gpu-node-2", "gpu-node-3"))
    (change,) = next(s for s in plan.steps if s.id == "install/kata-deploy").changes
    assert change.detail["values"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}]
    assert change.detail["hostEffects"][0].startswith(
        "kata-deploy runs on gpu-node-1, gpu-node-2 (")
    # the operator's chart tolerates nvidia.com/gpu itself: nothing to warn about
    assert not any("do not tolerate" in w for w in plan.warnings)


def test_a_kata_node_taint_the_operands_do_not_tolerate_is_a_warning_naming_it():
    plan = build_plan(load_answers(EXAMPLES / "answers.yaml"),
                      tainted("gpu-node-2", taint=Taint("dedicated", "NoExecute", "ml")))
    (warning,) = [w for w in plan.warnings if "do not tolerate" in w]
    assert warning.startswith("gpu-node-2 carries dedicated=ml:NoExecute, which the GPU "
                              "Operator's operands do not tolerate")
    assert "gpuOperator.values.daemonsets.tolerations" in warning


def test_kata_deploy_widened_by_the_values_still_misses_the_tainted_nodes_and_says_so():
    text = ANSWERS.replace("  release: kata-deploy\n  values: {}",
                           "  release: kata-deploy\n  values: {nodeSelector: null}")
    plan = build_plan(parse_answers(text, "answers.yaml"), tainted("gpu-node-3"))
    lines = effects(plan, "install/kata-deploy")
    assert lines[0] == ("kata-deploy runs on every node it tolerates (nodeSelector is empty): "
                        "control-1, gpu-node-1, gpu-node-2")
    assert lines[1] == ("kata-deploy does not run on gpu-node-3: it does not tolerate "
                        "nvidia.com/gpu=present:NoSchedule")


def test_recorded_facts_carry_taints_as_the_node_api_has_them(tmp_path):
    text = (EXAMPLES / "facts.yaml").read_text().replace(
        "  - name: gpu-node-1\n", "  - name: gpu-node-1\n    taints: [{key: nvidia.com/gpu, "
        "value: present, effect: NoSchedule}, {key: spot, effect: PreferNoSchedule}]\n")
    path = EXAMPLES / "facts.yaml"
    copy = tmp_path / "facts.yaml"
    copy.write_text(text.replace("../../tests/", str(path.parents[2] / "tests") + "/"))
    node = load_recorded_facts(copy).cluster.node("gpu-node-1")
    assert node.taints == (Taint("nvidia.com/gpu", "NoSchedule", "present"),
                           Taint("spot", "PreferNoSchedule"))
    assert [t.repels for t in node.taints] == [True, False]


def test_discovery_reads_each_nodes_taints_from_the_node_object():
    from installer.cluster.kube import _node_facts

    node = _node_facts({"metadata": {"name": "gpu-a"}, "status": {}, "spec": {"taints": [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
         "timeAdded": "2026-12-04T20:00:00Z"}]}})
    assert node.taints == (Taint("nvidia.com/gpu", "NoSchedule", "present"),
                           Taint("node.kubernetes.io/unreachable", "NoExecute"))
