"""The compatibility table: each row that refuses or warns, on the node shapes that trigger it,
and the plan that stops on a refusal before anything changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers, parse_answers
from installer.answers.versions import DEFAULT_GPU_OPERATOR, DEFAULT_KATA_DEPLOY, parse
from installer.charts.compat import containerd_version, findings
from installer.cluster.facts import NodeFacts, distribution_of
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.plan import build_plan
from installer.errors import UserError
from tests.unit.test_answers import BASE

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"


def node(name: str = "gpu-1", kubelet: str = "v1.33.4", runtime: str = "containerd://2.1.4",
         **labels: str) -> NodeFacts:
    return NodeFacts(name, kubelet_version=kubelet, container_runtime=runtime,
                     labels={k.replace("_", "."): v for k, v in labels.items()})


@pytest.mark.parametrize(("kubelet", "labels", "want"), [
    ("v1.33.4", {}, "k8s"),
    ("v1.33.4+k3s1", {}, "k3s"),
    ("v1.32.8+rke2r1", {}, "rke2"),
    ("v1.33.4+k0s", {}, "k0s"),
    ("v1.33.4", {"microk8s.io/cluster": "true"}, "microk8s"),
])
def test_the_distribution_comes_from_the_node_object(kubelet, labels, want):
    assert distribution_of(NodeFacts("n", kubelet_version=kubelet, labels=labels)) == want


def test_containerds_version_is_read_from_the_runtime_version_and_only_for_containerd():
    assert str(containerd_version(node(runtime="containerd://2.3.0"))) == "2.3.0"
    # A package revision is not a pre-release: this is containerd 1.7.27, and so is Debian's.
    assert str(containerd_version(node(runtime="containerd://1.7.27-0ubuntu1"))) == "1.7.27"
    assert str(containerd_version(node(runtime="containerd://1.7.24~ds1"))) == "1.7.24"
    assert containerd_version(node(runtime="cri-o://1.31.0")) is None


def test_containerd_2_3_refuses_kata_deploy_before_3_30_and_names_the_node_and_fix():
    nodes = [node("gpu-1", runtime="containerd://2.3.0"), node("gpu-2")]
    (row,) = [f for f in findings("3.29.0", "v26.7.0", nodes) if f.level == "refuse"]
    assert "gpu-1" in row.text and "gpu-2" not in row.text
    assert row.path == "kataDeploy.version" and "3.30.0" in row.fix
    assert not [f for f in findings("3.30.0", "v26.7.0", nodes) if f.level == "refuse"]


def test_kata_nodes_of_two_distributions_are_refused():
    nodes = [node("a", kubelet="v1.33.4+k3s1"), node("b")]
    assert [f.path for f in findings("4.1.0", "v26.7.0", nodes) if f.level == "refuse"] \
        == ["nodes"]


def test_k3s_and_rke2_before_3_32_are_warned_of_the_dangling_import():
    nodes = [node("a", kubelet="v1.32.8+rke2r1")]
    assert any("drop-in" in f.text for f in findings("3.31.0", "v26.7.0", nodes))
    assert not any("drop-in" in f.text for f in findings("3.32.0", "v26.7.0", nodes))


@pytest.mark.parametrize("version", ["v26.3.0", "v26.3.1", "v26.3.2", "v26.3.3"])
def test_the_vfio_manager_prestop_defect_is_named_for_the_versions_it_affects(version):
    assert any("preStop" in f.text and version in f.text
               for f in findings("4.1.0", version, [node()]))


def test_the_current_versions_on_a_current_node_are_clean():
    assert findings(DEFAULT_KATA_DEPLOY, DEFAULT_GPU_OPERATOR, [node()]) == []


def test_an_unverified_version_is_a_warning_that_names_the_verified_ones():
    (row,) = findings("4.2.0", "v26.7.0", [node()])
    assert row.level == "warn" and "4.1.0" in row.text


def test_answers_without_versions_install_the_current_ones():
    answers = parse_answers(BASE.replace("kataDeploy: {version: 3.29.0}", "kataDeploy: {}")
                            .replace("gpuOperator: {version: v26.3.1}", "gpuOperator: {}"))
    assert answers.kata_deploy.version == DEFAULT_KATA_DEPLOY == "4.1.0"
    assert answers.gpu_operator.version == DEFAULT_GPU_OPERATOR == "v26.7.0"


def test_a_refused_combination_stops_the_plan_naming_the_setting():
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    nodes = tuple(replace(n, container_runtime="containerd://2.3.1", containerd_version=None)
                  for n in facts.cluster.nodes)  # None: derived again, as not recorded
    facts = replace(facts, cluster=replace(facts.cluster, nodes=nodes))
    with pytest.raises(UserError) as info:
        build_plan(answers, facts)
    assert info.value.problems[0].where == "kataDeploy.version"
    assert "containerd 2.3" in info.value.problems[0].message


def test_the_plan_says_the_table_warnings_and_sets_the_distribution():
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    nodes = tuple(replace(n, kubelet_version=f"{n.kubelet_version}+k3s1", distribution=None,
                          kubelet_root=None)
                  for n in facts.cluster.nodes)
    facts = replace(facts, cluster=replace(facts.cluster, nodes=nodes))
    plan = build_plan(answers, facts)
    kd = next(c for c in plan.changes if c.target.endswith("/kata-deploy"))
    assert kd.detail["values"]["k8sDistribution"] == "k3s"
    if parse(answers.kata_deploy.version) < (3, 32, 0):
        assert any("drop-in" in w for w in plan.warnings)


def test_a_moved_kubelet_root_is_warned_of_for_the_kata_device_plugin():
    nodes = [node("k0s-1", kubelet="v1.33.4+k0s"), node("k0s-2", kubelet="v1.33.4+k0s")]
    (row,) = [f for f in findings("4.1.0", "v26.7.0", nodes) if "kubelet" in f.text]
    assert row.level == "warn" and "k0s-1, k0s-2" in row.text
    assert "/var/lib/k0s/kubelet (k0s)" in row.text
    assert "/var/lib/kubelet/device-plugins" in row.text
    recorded = [replace(node("m"), distribution="microk8s")]
    assert any("/var/snap/microk8s/common/var/lib/kubelet" in f.text
               for f in findings("4.1.0", "v26.7.0", recorded))
    # the default root, or an operator this table was not read from: nothing to say
    assert not [f for f in findings("4.1.0", "v26.7.0", [node()]) if "kubelet" in f.text]
    assert not [f for f in findings("4.1.0", "v26.9.0", nodes) if "device plugin" in f.text]


def test_grace_gpus_on_their_vfio_variant_get_no_pgpu_from_the_known_plugins():
    from installer.charts.compat import host_findings
    from installer.cluster.facts import ProbeFailure
    from remote.probe import probe_local
    from tests.fixtures.trees import OURS
    hosts = {"gh": probe_local(OURS / "grace-gh200"), "x86": probe_local(OURS / "gpu-vfio-ready"),
             "down": ProbeFailure("timeout", "no answer")}
    (row,) = host_findings("v26.7.0", hosts)
    assert row.level == "warn" and row.text.startswith("gh: Grace GPUs go to nvgrace_gpu_vfio_pci")
    assert "advertises only GPUs on vfio-pci" in row.text
    assert host_findings("v26.9.0", hosts) == []  # not read from that version's sources
    assert host_findings("v26.7.0", {"x86": hosts["x86"]}) == []
