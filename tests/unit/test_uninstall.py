"""Uninstall: the right order, and nodes returned to the labels they had before install."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from installer.answers.model import load_answers
from installer.cluster.facts import ReleaseFacts
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.uninstall import build_uninstall_plan, label_restore

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"


def test_restore_removes_what_was_added_and_puts_back_what_was_there():
    current = {"nvidia.com/gpu.workload.config": "vm-passthrough",
               "nvidia.com/gpu.deploy.vfio-manager": "true", "nvidia.com/cc.ready.state": "false",
               "katacontainers.io/kata-runtime": "true", "kubernetes.io/hostname": "n1"}
    recorded = {"nvidia.com/gpu.workload.config": "container"}
    assert label_restore(current, recorded) == {
        "nvidia.com/gpu.workload.config": "container",
        "nvidia.com/gpu.deploy.vfio-manager": None, "nvidia.com/cc.ready.state": None}


def test_without_a_record_only_the_operators_labels_go():
    current = {"nvidia.com/gpu.workload.config": "vm-passthrough",
               "nvidia.com/gpu.present": "true", "nvidia.com/cc.mode.state": "off"}
    assert label_restore(current, None) == {"nvidia.com/gpu.workload.config": None,
                                            "nvidia.com/cc.mode.state": None}


def test_uninstall_order_is_sample_operator_labels_kata_deploy():
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    releases = (ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", "v26.3.1", "deployed"),
                ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0", "deployed"))
    labelled = tuple(replace(n, labels={**n.labels, "nvidia.com/gpu.deploy.cc-manager": "true"})
                     for n in facts.cluster.nodes)
    cluster = replace(facts.cluster, releases=releases, nodes=labelled,
                      recorded_labels={n.name: {} for n in facts.cluster.nodes})
    plan = build_uninstall_plan(answers, replace(facts, cluster=cluster))
    ids = [s.id for s in plan.steps]
    assert ids[:2] == ["uninstall/sample", "uninstall/gpu-operator"]
    assert ids.index("uninstall/labels/gpu-node-1") < ids.index("uninstall/kata-deploy")
    assert ids[-2:] == ["uninstall/state", "verify/uninstalled"]
    node3 = next(s for s in plan.steps if s.id == "uninstall/labels/gpu-node-3")
    assert node3.params.labels == {"nvidia.com/gpu.workload.config": None,
                                      "nvidia.com/gpu.deploy.cc-manager": None}
