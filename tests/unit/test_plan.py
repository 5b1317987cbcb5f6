"""The plan: pure, ordered gather -> check -> change -> verify, and honest about what changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers, parse_answers
from installer.charts.values import gpu_operator_values, kata_nodes_of, planned_kata_deploy_values
from installer.cluster.facts import Facts, ReleaseFacts, with_gpu_pods
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.params import KubeletSide, SshTarget
from installer.engine.plan import PHASES, build_plan
from installer.engine.sinks import render_plan
from installer.errors import UserError

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"


@pytest.fixture
def example():
    """The example answers on the recorded cluster, hosts not yet probed."""
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    return load_answers(EXAMPLES / "answers.yaml"), replace(facts, hosts={})


def test_recorded_host_trees_plan_the_fixes_an_unprepared_host_needs():
    answers = load_answers(EXAMPLES / "answers.yaml")
    plan = build_plan(answers, load_recorded_facts(EXAMPLES / "facts.yaml"))
    assert not plan.phase("gather")
    fixes = [s.id for s in plan.steps if s.action == "host-fix"]
    assert fixes == ["fix/gpu-node-2/iommu-cmdline", "fix/gpu-node-2/nouveau-blacklist",
                     "fix/gpu-node-2/nvidia-driver-off", "fix/gpu-node-2/kubelet-gate",
                     "fix/gpu-node-2/reboot", "fix/gpu-node-2/vfio-bind"]
    check = next(s for s in plan.steps if s.id == "check/gpu-node-2")
    assert set(check.params.covered) == {"iommu-enabled", "host-nvidia-driver",
                                            "kubelet-podresources-gate"}
    assert any("vfio-bind" in d and "reboot" in d for d in check.params.deferred)
    grub = next(s for s in plan.steps if s.id == "fix/gpu-node-2/iommu-cmdline")
    assert '+GRUB_CMDLINE_LINUX="intel_iommu=on"' in grub.changes[0].detail["preview"]


def test_the_bind_that_waits_for_the_reboot_is_in_the_plan_with_its_condition():
    """vfio-bind needs the IOMMU the reboot turns on: the plan shows it after the reboot,
    naming the GPUs it will bind, as a conditional change that asks before it runs."""
    answers = load_answers(EXAMPLES / "answers.yaml")
    plan = build_plan(answers, load_recorded_facts(EXAMPLES / "facts.yaml"))
    ids = [s.id for s in plan.phase("change")]
    assert ids.index("fix/gpu-node-2/vfio-bind") == ids.index("fix/gpu-node-2/reboot") + 1
    (bind,) = next(s for s in plan.steps if s.id == "fix/gpu-node-2/vfio-bind").changes
    assert bind.condition == "after the reboot, if the re-probe finds the IOMMU on"
    assert bind.ask_first and bind.kind == "host" and bind.key == ("host", "gpu-node-2",
                                                                   "vfio-bind")
    assert "bind 0000:1b:00.0, 0000:43:00.0 to vfio-pci" in bind.description
    assert "0000:1b:00.0 H100" in bind.detail["preview"]
    rendered = "\n".join(render_plan(plan.to_dict()))
    assert "gpu-node-2: after the reboot, if the re-probe finds the IOMMU on: bind" in rendered


def test_no_bind_is_promised_after_a_reboot_the_answers_skip():
    text = (EXAMPLES / "answers.yaml").read_text().replace("  reboot: ask", "  reboot: skip")
    answers = parse_answers(text, "answers.yaml")
    plan = build_plan(answers, load_recorded_facts(EXAMPLES / "facts.yaml"))
    assert not [c for c in plan.changes if c.condition]


def test_a_boot_config_fixed_by_an_interrupted_run_is_covered_by_the_pending_reboot():
    """Killed after editing grub, before rebooting: the re-run plans only the reboot, and
    that reboot covers the IOMMU check (it stopped the re-run with exit 3 before)."""
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    host = facts.hosts["gpu-node-2"]
    grub = host.files["etc/default/grub"].replace('GRUB_CMDLINE_LINUX=""',
                                                  'GRUB_CMDLINE_LINUX="intel_iommu=on"')
    assert grub != host.files["etc/default/grub"]
    edited = replace(host, files={**host.files, "etc/default/grub": grub})
    plan = build_plan(answers, replace(facts, hosts={**facts.hosts, "gpu-node-2": edited}))
    fixes = [s.id for s in plan.steps if s.action == "host-fix"]
    assert "fix/gpu-node-2/iommu-cmdline" not in fixes and "fix/gpu-node-2/reboot" in fixes
    check = next(s for s in plan.steps if s.id == "check/gpu-node-2")
    assert "iommu-enabled" in check.params.covered


def test_a_skip_policy_leaves_the_failure_blocking():
    text = (EXAMPLES / "answers.yaml").read_text().replace("  iommu: ask", "  iommu: skip")
    plan = build_plan(parse_answers(text), load_recorded_facts(EXAMPLES / "facts.yaml"))
    assert "fix/gpu-node-2/iommu-cmdline" not in [s.id for s in plan.steps]
    check = next(s for s in plan.steps if s.id == "check/gpu-node-2")
    assert "iommu-enabled" not in check.params.covered


def test_plan_is_pure_and_phases_are_ordered(example):
    answers, facts = example
    plan = build_plan(answers, facts)
    assert plan == build_plan(answers, facts)
    order = [PHASES.index(s.phase) for s in plan.steps]
    assert order == sorted(order)


def test_plan_names_both_installs_with_full_values_and_kata_deploy_first(example):
    answers, facts = example
    helm = [c for c in build_plan(answers, facts).changes if c.kind == "helm"]
    assert [c.target for c in helm] == ["kata-system/kata-deploy", "gpu-operator/gpu-operator"]
    assert helm[0].detail["values"] == planned_kata_deploy_values(
        answers.kata_deploy, kata_nodes_of(answers, facts.cluster))
    assert helm[0].detail["values"]["k8sDistribution"] == "k8s"  # the example is kubeadm
    assert helm[1].detail["values"] == gpu_operator_values(answers)
    assert helm[1].detail["command"][:4] == ["helm", "upgrade", "--install", "gpu-operator"]


def test_labels_change_only_where_the_value_differs(example):
    answers, facts = example
    labels = {c.target: c.detail for c in build_plan(answers, facts).changes
              if c.kind == "label"}
    assert labels == {
        "gpu-node-1": {"node": "gpu-node-1", "key": "nvidia.com/gpu.workload.config",
                       "from": None, "to": "vm-passthrough"},
        "gpu-node-2": {"node": "gpu-node-2", "key": "nvidia.com/gpu.workload.config",
                       "from": None, "to": "vm-passthrough"},
    }


def test_host_probes_and_checks_are_planned_for_kata_nodes_only(example):
    answers, facts = example
    plan = build_plan(answers, facts)
    (probe,) = plan.phase("gather")
    assert [t.node for t in probe.params.targets] == ["gpu-node-1", "gpu-node-2"]
    assert probe.params.targets[0] == SshTarget("gpu-node-1", "192.0.2.11", "ops", 22)
    ids = [s.id for s in plan.steps]
    assert "check/gpu-node-2" in ids and "check/gpu-node-3" not in ids


def test_cluster_default_kata_takes_unlabelled_gpu_nodes_but_not_cpu_nodes(example):
    _, facts = example
    answers = parse_answers((EXAMPLES / "answers.yaml").read_text()
                            .replace("default: traditional", "default: kata")
                            .replace("    - name: gpu-node-2\n      choice: kata\n", ""))
    (probe,) = build_plan(answers, facts).phase("gather")
    assert [t.node for t in probe.params.targets] == ["gpu-node-1", "gpu-node-2"]


def test_a_release_already_deployed_with_the_same_values_is_not_reinstalled(example):
    answers, facts = example
    values = planned_kata_deploy_values(answers.kata_deploy, kata_nodes_of(answers, facts.cluster))
    deployed = ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0", "deployed",
                            values)
    facts = replace(facts, cluster=replace(facts.cluster, releases=(deployed,)))
    step = next(s for s in build_plan(answers, facts).steps if s.id == "install/kata-deploy")
    assert step.changes == () and "already deployed" in step.note
    failed = replace(deployed, status="failed")
    facts = replace(facts, cluster=replace(facts.cluster, releases=(failed,)))
    step = next(s for s in build_plan(answers, facts).steps if s.id == "install/kata-deploy")
    assert step.changes and "upgrade" in step.changes[0].description


def test_answers_naming_a_node_the_cluster_lacks_are_bad_input(example):
    answers, facts = example
    facts = replace(facts, cluster=replace(facts.cluster, nodes=facts.cluster.nodes[:2]))
    with pytest.raises(UserError) as info:
        build_plan(answers, facts)
    assert "gpu-node-2" in str(info.value) and "control-1" in str(info.value)


def test_without_cluster_facts_the_plan_starts_by_discovering(example):
    answers, _ = example
    plan = build_plan(answers, Facts(cluster=None))
    assert plan.steps[0].id == "discover/cluster"


def test_local_chart_is_passed_as_a_path_without_version(example):
    _, facts = example
    text = (EXAMPLES / "answers.yaml").read_text().replace(
        "    oci: oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy\n",
        "    path: ./charts/kata-deploy-3.29.0.tgz\n")
    plan = build_plan(parse_answers(text), facts)
    cmd = next(c for c in plan.changes if c.target == "kata-system/kata-deploy").detail["command"]
    assert cmd[3:5] == ["kata-deploy", "./charts/kata-deploy-3.29.0.tgz"]
    assert "--version" not in cmd


def test_relabelling_a_node_that_runs_gpu_pods_is_warned_about(example):
    answers, facts = example
    busy = replace(facts.cluster.node("gpu-node-1"), gpu_pods=("ml/train-0",))
    nodes = tuple(busy if n.name == "gpu-node-1" else n for n in facts.cluster.nodes)
    plan = build_plan(answers, replace(facts, cluster=replace(facts.cluster, nodes=nodes)))
    assert any("gpu-node-1 runs GPU pods (ml/train-0)" in w for w in plan.warnings)
    assert not any("runs GPU pods" in w for w in build_plan(answers, facts).warnings)


def test_gpu_pods_are_looked_for_only_on_the_nodes_the_plan_relabels(example):
    """Discovery leaves every node's GPU pods unknown; the plan gathers them for the nodes
    it relabels (gpu-node-3 is left alone), then warns, the same in every front end."""
    answers, facts = example
    unknown = tuple(replace(n, gpu_pods=None) for n in facts.cluster.nodes)
    facts = replace(facts, cluster=replace(facts.cluster, nodes=unknown))
    plan = build_plan(answers, facts)
    scan = next(s for s in plan.phase("gather") if s.action == "gpu-pods")
    assert scan.params.nodes == ("gpu-node-1", "gpu-node-2")
    assert not any("runs GPU pods" in w for w in plan.warnings)
    found = with_gpu_pods(facts, {"gpu-node-1": ("ml/train-0",), "gpu-node-2": ()})
    plan = build_plan(answers, found)
    assert not any(s.action == "gpu-pods" for s in plan.steps)
    assert [w for w in plan.warnings if "runs GPU pods" in w] == [
        "gpu-node-1 runs GPU pods (ml/train-0); relabelling it moves its GPUs away from them"
        " - drain it first"]
    assert found.cluster.node("gpu-node-3").gpu_pods is None


def test_a_release_left_pending_by_an_interrupted_run_is_recovered_first(example):
    answers, facts = example
    stuck = ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", "v26.3.1",
                         "pending-install")
    facts = replace(facts, cluster=replace(facts.cluster, releases=(stuck,)))
    step = next(s for s in build_plan(answers, facts).steps if s.id == "install/gpu-operator")
    assert step.params.recover == "uninstall"
    assert step.changes[0].description.startswith("helm uninstall the release left "
                                                   "pending-install by an interrupted run")


ROOT = EXAMPLES.parents[1]


def _recorded(tmp_path: Path, edit) -> Facts:
    """The example cluster, edited, with its host trees wherever the repository keeps them."""
    text = edit((EXAMPLES / "facts.yaml").read_text()).replace(
        "../../tests/fixtures/hosts", str(ROOT / "tests/fixtures/hosts"))
    path = tmp_path / "facts.yaml"
    path.write_text(text)
    return load_recorded_facts(path)


def test_each_kata_host_check_carries_the_nodes_kubernetes_side(tmp_path):
    answers = load_answers(EXAMPLES / "answers.yaml")
    plan = build_plan(answers, load_recorded_facts(EXAMPLES / "facts.yaml"))
    one = next(s for s in plan.steps if s.id == "check/gpu-node-1")
    assert one.params.kubernetes == KubeletSide("k8s", "2.0.5", "/var/lib/kubelet")
    assert one.note == ""  # kubeadm's layout goes without saying
    # two k0s Kata nodes (one recorded as such, one by its kubelet version), k0s trees
    facts = _recorded(tmp_path, lambda t: t.replace("distribution: k8s ", "distribution: k0s ")
                      .replace("kubeletRoot: /var/lib/kubelet", "kubeletRoot: /var/lib/k0s/kubelet")
                      .replace("v1.33.2\n    containerRuntime: containerd://2.0.5\n    labels: "
                               "{feature.node.kubernetes.io/pci-10de.present: \"true\"}\n"
                               "    allocatable: {cpu: \"96\", memory: 1Ti}\n    ready: true\n"
                               "  - name: gpu-node-3",
                               "v1.33.2+k0s\n    containerRuntime: containerd://2.0.5\n    "
                               "labels: {feature.node.kubernetes.io/pci-10de.present: \"true\"}"
                               "\n    allocatable: {cpu: \"96\", memory: 1Ti}\n    ready: true\n"
                               "  - name: gpu-node-3")
                      .replace("gpu-node-1: {tree: ../../tests/fixtures/hosts/gpu-vfio-ready}",
                               "gpu-node-1: {tree: ../../tests/fixtures/hosts/k0s-worker}")
                      .replace("gpu-node-2: {tree: ../../tests/fixtures/hosts/gpu-host-driver}",
                               "gpu-node-2: {tree: ../../tests/fixtures/hosts/k0s-worker}"))
    plan = build_plan(answers, facts)
    steps = {s.id: s for s in plan.steps}
    assert steps["check/gpu-node-1"].note == "k0s, kubelet root /var/lib/k0s/kubelet"
    assert steps["check/gpu-node-2"].params.kubernetes.distribution == "k0s"
    rendered = "\n".join(render_plan(plan.to_dict()))
    assert "[check/gpu-node-2] Host prerequisites on gpu-node-2 - k0s, kubelet root " \
           "/var/lib/k0s/kubelet" in rendered
    # the gate is judged from k0s's file and not fixed there: named, not covered
    gate = next(r for r in steps["check/gpu-node-1"].params.checks
                if r.name == "kubelet-podresources-gate")
    assert gate.status == "fail" and "spec.featureGates" in gate.remedy
    assert not any(s.startswith("fix/gpu-node-1/kubelet-gate") for s in steps)
    assert any(d.startswith("kubelet-gate: not done on k0s")
               for d in steps["check/gpu-node-1"].params.deferred)
    assert any("/var/lib/k0s/kubelet (k0s)" in w and "device-plugins" in w
               for w in plan.warnings)
    kd = next(c for c in plan.changes if c.target.endswith("/kata-deploy"))
    assert kd.detail["values"]["k8sDistribution"] == "k0s"


def test_a_grace_kata_node_is_planned_without_fixes_and_warned_of_the_device_plugin(tmp_path):
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = _recorded(tmp_path, lambda t: t.replace(
        "gpu-node-1: {tree: ../../tests/fixtures/hosts/gpu-vfio-ready}",
        "gpu-node-1: {tree: ../../tests/fixtures/hosts/grace-gh200}"))
    plan = build_plan(answers, facts)
    assert not [s for s in plan.steps if s.id.startswith("fix/gpu-node-1/")]
    checks = next(s for s in plan.steps if s.id == "check/gpu-node-1").params.checks
    assert {r.name: r.status for r in checks}["vfio-available"] == "pass"
    assert any(w.startswith("gpu-node-1: Grace GPUs go to nvgrace_gpu_vfio_pci")
               for w in plan.warnings)
