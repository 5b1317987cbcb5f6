"""The upgrade plan: versions checked, charts held at OnDelete, waves of maxUnavailable Kata
nodes, the release back to rolling updates, and the rollback shown; resumed from facts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from installer.answers.model import load_answers
from installer.charts.values import (
    deep_merge,
    gpu_operator_values,
    kata_nodes_of,
    planned_kata_deploy_values,
)
from installer.cluster.facts import Facts, ReleaseFacts
from installer.cluster.factsfile import load_recorded_facts
from installer.commands.cli import main
from installer.engine.sinks import render_plan
from installer.engine.upgrade import (
    HOLD_KATA_DEPLOY,
    HOLD_OPERATOR,
    build_upgrade_plan,
    values_diff,
)
from installer.errors import UserError

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
KATA = ("gpu-node-1", "gpu-node-2")


def _answers(kd: str = "4.1.0", op: str = "v26.7.0", wave: int = 1):
    answers = load_answers(EXAMPLES / "answers.yaml")
    return answers.model_copy(update={
        "kata_deploy": answers.kata_deploy.model_copy(update={"version": kd}),
        "gpu_operator": answers.gpu_operator.model_copy(update={"version": op}),
        "rollout": answers.rollout.model_copy(update={"max_unavailable": wave})})


def _facts(kd: str = "3.30.0", op: str = "v26.3.3", *, values: tuple[dict, dict] = ({}, {}),
           images: dict | None = None, templates: dict | None = None) -> Facts:
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    releases = (ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", op, "deployed",
                             values[1], revision=3),
                ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", kd, "deployed",
                             values[0], revision=2))
    cluster = replace(facts.cluster, releases=releases,
                      recorded_labels={n.name: {} for n in facts.cluster.nodes},
                      operand_images=images if images is not None else {},
                      operand_templates=templates or {})
    return replace(facts, cluster=cluster)


def test_values_diff_names_each_key_that_changes():
    assert values_diff({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 1, "c": 3}, "e": [1]}) == [
        "a.c: 2 -> 3", "-d", "+e: [1]"]


def test_the_plan_holds_both_charts_then_rolls_one_node_per_wave_and_shows_the_rollback():
    plan = build_upgrade_plan(_answers(), _facts(values=({"old": 1}, {})))
    ids = [s.id for s in plan.steps]
    assert ids == ["upgrade/kata-deploy", "upgrade/gpu-operator", "upgrade/wave-1",
                   "upgrade/wave-2", "upgrade/release/kata-deploy",
                   "upgrade/release/gpu-operator", "upgrade/rollback", "verify/kata-deploy",
                   "verify/gpu-operator"]
    kd = plan.steps[0]
    assert kd.params.helm.values["updateStrategy"] == {"type": "OnDelete", "rollingUpdate": None}
    assert "--wait" not in kd.params.helm.command
    assert "kata-deploy 3.30.0 -> 4.1.0" in kd.changes[0].description
    assert "-old" in kd.params.changed
    assert plan.steps[1].params.helm.values["daemonsets"]["updateStrategy"] == "OnDelete"
    w1, w2 = plan.steps[2], plan.steps[3]
    assert (w1.params.nodes, w2.params.nodes) == (("gpu-node-1",), ("gpu-node-2",))
    assert [c.detail["stage"] for c in w1.changes] == ["cordon", "drain", "roll", "verify",
                                                       "uncordon"]
    released = plan.steps[4].params
    assert "updateStrategy" not in released.helm.values
    assert released.changed == ("-updateStrategy",)
    rollback = plan.steps[6]
    assert all(c.condition for c in rollback.changes)
    assert [(r.release, r.revision, r.version) for r in rollback.params.releases] == [
        ("gpu-operator", 3, "v26.3.3"), ("kata-deploy", 2, "3.30.0")]
    assert rollback.params.nodes == KATA
    text = "\n".join(render_plan(plan.to_dict()))
    assert "helm rollback kata-deploy to revision 2 (3.30.0)" in text
    assert "uncordon gpu-node-2" in text


def test_waves_hold_at_most_max_unavailable_nodes():
    plan = build_upgrade_plan(_answers(wave=2), _facts())
    (wave,) = [s for s in plan.steps if s.action == "upgrade-wave"]
    assert wave.params.nodes == KATA


@pytest.mark.parametrize(("kd", "op", "path"), [
    ("3.29.0", "v26.7.0", "kataDeploy.version"),  # older than the installed 3.30.0
    ("4.1.0", "v26.3.2", "gpuOperator.version"),  # older than the installed v26.3.3
    ("5.0.0", "v26.7.0", "kataDeploy.version"),  # not a supported version
])
def test_a_downgrade_or_an_unsupported_version_is_refused(kd, op, path):
    with pytest.raises(UserError) as err:
        build_upgrade_plan(_answers(kd, op), _facts())
    assert err.value.exit_code == 2
    assert [p.where for p in err.value.problems] == [path]


def test_nothing_installed_is_nothing_to_upgrade():
    facts = _facts()
    facts = replace(facts, cluster=replace(facts.cluster, releases=facts.cluster.releases[:1]))
    with pytest.raises(UserError, match="nothing to upgrade"):
        build_upgrade_plan(_answers(), facts)


def test_operand_images_are_read_before_the_waves_are_planned():
    facts = _facts()
    facts = replace(facts, cluster=replace(facts.cluster, operand_images=None))
    plan = build_upgrade_plan(_answers(), facts)
    assert [(s.phase, s.action) for s in plan.steps] == [("gather", "operand-images")]


def _targets(answers):
    facts = _facts()
    kata = kata_nodes_of(answers, facts.cluster)
    kd = planned_kata_deploy_values(answers.kata_deploy, kata, answers.images)
    return kd, gpu_operator_values(answers)


def test_a_resumed_upgrade_rolls_only_the_nodes_not_yet_on_the_new_pods():
    answers = _answers()
    kd, op = _targets(answers)
    held = (deep_merge(kd, HOLD_KATA_DEPLOY), deep_merge(op, HOLD_OPERATOR))
    templates = {"kata-system/kata-deploy": ("kata-deploy:4.1.0",)}
    images = {"gpu-node-1": {"kata-system/kata-deploy": ("kata-deploy:4.1.0",)},
              "gpu-node-2": {"kata-system/kata-deploy": ("kata-deploy:3.30.0",)}}
    plan = build_upgrade_plan(answers, _facts("4.1.0", "v26.7.0", values=held, images=images,
                                              templates=templates))
    assert not plan.steps[0].changes and not plan.steps[1].changes
    (wave,) = [s for s in plan.steps if s.action == "upgrade-wave"]
    assert wave.params.nodes == ("gpu-node-2",)
    assert any("already upgraded (resumed): gpu-node-1" in w for w in plan.warnings)
    rollback = next(s for s in plan.steps if s.id == "upgrade/rollback")
    assert {r.revision for r in rollback.params.releases} == {0}  # found in helm history


def test_a_finished_upgrade_plans_no_change():
    answers = _answers()
    plan = build_upgrade_plan(answers, _facts("4.1.0", "v26.7.0", values=_targets(answers)))
    assert not plan.changes


def _facts_file(tmp_path: Path, releases: list[dict]) -> Path:
    data = yaml.safe_load((EXAMPLES / "facts.yaml").read_text())
    data["releases"] = releases
    for host in data["hosts"].values():
        host["tree"] = str((EXAMPLES / host["tree"]).resolve())
    path = tmp_path / "facts.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _answers_file(tmp_path: Path, kd: str, op: str) -> Path:
    data = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    data["kataDeploy"]["version"], data["gpuOperator"]["version"] = kd, op
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


RELEASES = [{"name": "kata-deploy", "namespace": "kata-system", "chart": "kata-deploy",
             "version": "3.30.0", "status": "deployed"},
            {"name": "gpu-operator", "namespace": "gpu-operator", "chart": "gpu-operator",
             "version": "v26.3.3", "status": "deployed"}]


def test_dry_run_prints_the_whole_plan_waves_and_rollback_included(tmp_path, capsys):
    code = main(["upgrade", "--answers", str(_answers_file(tmp_path, "4.1.0", "v26.7.0")),
                 "--facts", str(_facts_file(tmp_path, RELEASES)), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    for said in ("helm upgrade kata-deploy 3.30.0 -> 4.1.0", "cordon gpu-node-1",
                 "drain gpu-node-2", "run the sample pinned to it", "uncordon gpu-node-2",
                 "helm rollback gpu-operator to its newest revision not at v26.7.0"):
        assert said in out


def test_a_downgrade_on_the_command_line_exits_2_naming_the_key(tmp_path, capsys):
    code = main(["upgrade", "--answers", str(_answers_file(tmp_path, "3.29.0", "v26.7.0")),
                 "--facts", str(_facts_file(tmp_path, RELEASES)), "--dry-run"])
    assert code == 2
    err = capsys.readouterr().err
    assert "kataDeploy.version" in err and "does not downgrade" in err


def test_a_node_cordoned_by_someone_else_is_upgraded_but_left_cordoned():
    facts = _facts()
    facts = replace(facts, cluster=replace(facts.cluster, cordoned=("gpu-node-2",)))
    plan = build_upgrade_plan(_answers(), facts)
    wave2 = next(s for s in plan.steps if s.id == "upgrade/wave-2")
    assert wave2.params.keep_cordoned == ("gpu-node-2",)
    assert [c.detail["stage"] for c in wave2.changes][-1] == "verify"
    assert "left cordoned" in wave2.changes[0].description
    rollback = next(s for s in plan.steps if s.id == "upgrade/rollback")
    assert rollback.params.nodes == ("gpu-node-1",)


def test_a_node_the_interrupted_upgrade_cordoned_is_rolled_again_even_when_current():
    answers = _answers()
    kd, op = _targets(answers)
    held = (deep_merge(kd, HOLD_KATA_DEPLOY), deep_merge(op, HOLD_OPERATOR))
    current = {"kata-system/kata-deploy": ("kata-deploy:4.1.0",)}
    facts = _facts("4.1.0", "v26.7.0", values=held, templates=current,
                   images={n: current for n in KATA})
    facts = replace(facts, cluster=replace(facts.cluster, cordoned=("gpu-node-1",),
                                           cordoned_by_upgrade=("gpu-node-1",)))
    (wave,) = [s for s in build_upgrade_plan(answers, facts).steps
               if s.action == "upgrade-wave"]
    assert wave.params.nodes == ("gpu-node-1",) and not wave.params.keep_cordoned


def test_the_answers_own_verification_pod_replaces_the_sample_and_passes_on_exit_0():
    """rollout.verifyImage (and verifyCommand): each wave runs that pod pinned to the node,
    once (restartPolicy Never), in a Kata VM with one GPU, instead of the sample."""
    from installer.engine.steps.sample import manifest

    base = _answers()
    answers = base.model_copy(update={
        "sample": base.sample.model_copy(update={"run": False}),
        "rollout": base.rollout.model_copy(update={
            "verify_image": "registry.example/gpu-check:1", "verify_command": ["/check", "-q"]})})
    plan = build_upgrade_plan(answers, _facts())
    wave = next(s for s in plan.steps if s.id == "upgrade/wave-1")
    verify = wave.params.verify
    assert verify.own and verify.image == "registry.example/gpu-check:1"
    (said,) = [c.description for c in wave.changes if c.detail["stage"] == "verify"]
    assert "run registry.example/gpu-check:1 pinned to it" in said
    pod = manifest(replace(verify, node="gpu-node-1"), "nvidia.com/pgpu")["spec"]
    assert pod["restartPolicy"] == "Never" and pod["nodeName"] == "gpu-node-1"
    assert pod["containers"][0]["command"] == ["/check", "-q"]
    assert pod["runtimeClassName"] == "kata-qemu-nvidia-gpu"
    sample = build_upgrade_plan(base, _facts())
    assert not next(s for s in sample.steps if s.id == "upgrade/wave-1").params.verify.own


def test_a_verify_command_without_its_image_is_refused():
    from installer.answers.model import validate_answers
    from installer.answers.strictmodel import Invalid

    data = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    data["rollout"] = {"verifyCommand": ["/check"]}
    with pytest.raises((UserError, Invalid), match="verifyCommand needs verifyImage"):
        validate_answers(data)
