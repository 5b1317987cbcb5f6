"""Recorded facts files (`--facts`): anything not of the recorded shape is exit 2 naming the
file, the dotted path, the line and the fix - never a node probed as an empty host."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.cluster.facts import ProbeFailure
from installer.cluster.factsfile import load_recorded_facts
from installer.errors import EXIT_BAD_INPUT, UserError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "installer/examples/facts.yaml").read_text().replace(
    "../../tests/fixtures/hosts", str(ROOT / "tests/fixtures/hosts"))


def _load(tmp_path: Path, text: str):
    path = tmp_path / "facts.yaml"
    path.write_text(text)
    return path, load_recorded_facts(path)


def _refused(tmp_path: Path, text: str) -> tuple[Path, UserError]:
    with pytest.raises(UserError) as caught:
        _load(tmp_path, text)
    assert caught.value.exit_code == EXIT_BAD_INPUT
    return tmp_path / "facts.yaml", caught.value


def test_the_example_loads_with_its_host_trees_probed(tmp_path):
    _, facts = _load(tmp_path, EXAMPLE)
    assert [n.name for n in facts.cluster.nodes] == ["control-1", "gpu-node-1", "gpu-node-2",
                                                      "gpu-node-3"]
    assert facts.hosts["gpu-node-1"].hostname and facts.hosts["gpu-node-1"].cpu_flags
    assert isinstance(facts.hosts["control-1"], ProbeFailure)  # no tree: said, not guessed


@pytest.mark.parametrize(("edit", "where", "words"), [
    (lambda t: t + "bogus: 1\n", "bogus", "unknown key 'bogus'"),
    (lambda t: t.replace("    ready: true\n", "    ready: true\n    colour: red\n", 1),
     "nodes[0].colour", "unknown key 'colour'"),
    (lambda t: t.replace("gpu-node-1: {tree:", "gpu-node-1: {tre:"), "hosts.gpu-node-1.tre",
     "unknown key 'tre'"),
    (lambda t: t.replace("ready: true", "ready: 'yes'", 1), "nodes[0].ready", "boolean"),
    (lambda t: t.replace("name: gpu-node-1", "name: 'gpu node 1'"), "nodes[1].name",
     "not a Kubernetes node name"),
    (lambda t: t.replace("name: gpu-node-1", 'name: "gpu-node-1\\n"'), "nodes[1].name",
     "not a Kubernetes node name"),
    (lambda t: t.replace('pci-10de.present: "true"}', 'pci-10de.present: "tr ue"}', 1),
     "nodes[1].labels.feature.node.kubernetes.io/pci-10de.present", "label value"),
    (lambda t: t.replace("labels: {feature.node", "labels: {'bad key!': x, feature.node", 1),
     "nodes[1].labels.bad key!.[key]", "label key"),
    (lambda t: t.replace("address: 192.0.2.11", "address: 'fe80::1%$(id)'"),
     "nodes[1].address", "scope id"),
    (lambda t: t.replace("gpu-vfio-ready", "no-such-tree"), "hosts.gpu-node-1.tree",
     "no directory at"),
    (lambda t: t.replace(str(ROOT / "tests/fixtures/hosts/gpu-vfio-ready"),
                         str(ROOT / "installer")), "hosts.gpu-node-1.tree",
     "not a captured host tree"),
    (lambda t: t.replace(str(ROOT / "tests/fixtures/hosts/gpu-vfio-ready"),
                         str(ROOT / "README.md")), "hosts.gpu-node-1.tree", "not a directory"),
    (lambda t: t + "  gpu-node-9: {tree: .}\n", "hosts.gpu-node-9",
     "no node 'gpu-node-9' is listed under nodes"),
    (lambda t: t.replace("  - name: gpu-node-3", "  - name: gpu-node-2"), "(document)",
     "gpu-node-2 listed twice"),
    (lambda t: "nodes: [unclosed\n", "facts.yaml", "expected ',' or ']'"),
    (lambda t: "- a\n", "(document)", "must be a mapping"),
    (lambda t: "nodes: {name: a}\n", "nodes", "valid list"),
    (lambda t: t.replace("releases: []", "releases: [{name: kata-deploy}]"), "releases[0].chart",
     "required key 'chart' is missing"),
], ids=["unknown-top-level-key", "unknown-node-key", "unknown-host-key", "wrong-type",
        "bad-node-name", "node-name-newline", "bad-label-value", "bad-label-key",
        "ipv6-scope-metacharacters", "missing-host-tree", "tree-not-a-host", "tree-is-a-file",
        "host-for-an-unlisted-node", "duplicate-node", "malformed", "not-a-mapping",
        "nodes-not-a-list", "release-missing-key"])
def test_a_malformed_facts_file_names_the_file_the_path_and_the_fix(tmp_path, edit, where,
                                                                     words):
    path, error = _refused(tmp_path, edit(EXAMPLE))
    rendered = str(error)
    assert rendered.startswith(str(path)), rendered
    problem = next((p for p in error.problems if p.where.endswith(where)), None)
    assert problem is not None, rendered
    assert words in problem.message and problem.fix, rendered
    assert problem.line or where in ("(document)", "facts.yaml"), rendered
    assert "Traceback" not in rendered


def test_a_billion_laughs_facts_file_is_refused(tmp_path):
    from tests.unit.test_yamlload import billion_laughs

    _, error = _refused(tmp_path, EXAMPLE.replace("releases: []", "releases: []\nx:\n" + "".join(
        f"  {line}\n" for line in billion_laughs().splitlines())))
    assert "aliases expand" in str(error)


def test_the_kubernetes_side_of_a_node_is_recorded_or_derived(tmp_path):
    from installer.cluster.facts import containerd_version_of, distribution_of, kubelet_root_of
    text = EXAMPLE.replace(
        "  - name: gpu-node-2\n    address: 192.0.2.12\n    kubeletVersion: v1.33.2\n",
        "  - name: gpu-node-2\n    address: 192.0.2.12\n    kubeletVersion: v1.33.2+k0s\n")
    _, facts = _load(tmp_path, text)
    one, two, three = (facts.cluster.node(n) for n in ("gpu-node-1", "gpu-node-2", "gpu-node-3"))
    assert (one.distribution, one.containerd_version, one.kubelet_root) == \
        ("k8s", "2.0.5", "/var/lib/kubelet")  # as recorded
    assert (two.distribution, two.kubelet_root) == (None, None)  # not recorded: derived
    assert (distribution_of(two), containerd_version_of(two), kubelet_root_of(two)) == \
        ("k0s", "2.0.5", "/var/lib/k0s/kubelet")
    assert distribution_of(three) == "k8s" and kubelet_root_of(three) == "/var/lib/kubelet"
    # a recording that says microk8s is taken at its word, root and all
    _, facts = _load(tmp_path, text.replace("    distribution: k8s ", "    distribution: microk8s ")
                     .replace("kubeletRoot: /var/lib/kubelet",
                              "kubeletRoot: /var/snap/microk8s/common/var/lib/kubelet"))
    one = facts.cluster.node("gpu-node-1")
    assert distribution_of(one) == "microk8s"
    assert kubelet_root_of(one) == "/var/snap/microk8s/common/var/lib/kubelet"


@pytest.mark.parametrize(("old", "new", "where", "words"), [
    ("distribution: k8s", "distribution: openshift", "nodes[1].distribution", "k0s"),
    ("kubeletRoot: /var/lib/kubelet", "kubeletRoot: var/lib/kubelet", "nodes[1].kubeletRoot",
     "not an absolute path"),
    ("containerdVersion: 2.0.5", "containerdVersion: 2", "nodes[1].containerdVersion", "string"),
])
def test_bad_kubernetes_facts_are_refused_with_the_path(tmp_path, old, new, where, words):
    _, err = _refused(tmp_path, EXAMPLE.replace(old, new))
    (p,) = err.problems
    assert p.where == where and words in p.message and p.line, p


def test_discovery_records_distribution_containerd_and_kubelet_root():
    from installer.cluster.kube import _node_facts
    node = _node_facts({"metadata": {"name": "mk", "labels": {"microk8s.io/cluster": "true"}},
                        "status": {"nodeInfo": {"kubeletVersion": "v1.33.4",
                                                "containerRuntimeVersion":
                                                    "containerd://1.7.27"}}})
    assert (node.distribution, node.containerd_version, node.kubelet_root) == \
        ("microk8s", "1.7.27", "/var/snap/microk8s/common/var/lib/kubelet")
    crio = _node_facts({"metadata": {"name": "c"}, "status": {"nodeInfo": {
        "kubeletVersion": "v1.32.8+rke2r1", "containerRuntimeVersion": "cri-o://1.31.0"}}})
    assert (crio.distribution, crio.containerd_version, crio.kubelet_root) == \
        ("rke2", None, "/var/lib/kubelet")


def test_a_node_s_creation_time_is_read_and_may_be_recorded(tmp_path):
    """The Nodes table's Age: discovery keeps metadata.creationTimestamp, a recorded facts
    file may state it (`created`), and a file without it is still whole."""
    from installer.cluster.kube import _node_facts

    live = _node_facts({"metadata": {"name": "gpu-a", "creationTimestamp": "2026-01-02T03:04:05Z"},
                        "status": {}})
    assert live.created == "2026-01-02T03:04:05Z"
    text = EXAMPLE.replace("  - name: gpu-node-1\n",
                           "  - name: gpu-node-1\n    created: '2026-01-02T03:04:05Z'\n")
    _, facts = _load(tmp_path, text)
    assert facts.cluster.node("gpu-node-1").created == "2026-01-02T03:04:05Z"
    assert facts.cluster.node("gpu-node-2").created is None


def test_discovery_hands_over_the_nodes_read_so_far_page_by_page():
    """A long node list is read in pages: each page but the last is handed over as it comes
    (the Nodes screen shows them), and the facts are the whole list."""
    from installer.cluster.kube import _discover_sync

    class Paged:
        context = "c"

        def get_json(self, path, **query):
            return {"gitVersion": "v1.35.0"} if path == "/version" else {"items": []}

        def list_pages(self, path, **query):
            assert path == "/api/v1/nodes"
            for start, more in ((0, "t1"), (3, "t2"), (6, "")):
                yield {"metadata": {"continue": more},
                       "items": [{"metadata": {"name": f"n{i}"}} for i in range(start, start + 3)]}

    seen = []
    facts = _discover_sync(Paged(), seen.append)
    assert [[n.name for n in page] for page in seen] == [
        ["n0", "n1", "n2"], ["n0", "n1", "n2", "n3", "n4", "n5"]]
    assert [n.name for n in facts.nodes] == [f"n{i}" for i in range(9)]
