"""Where each distribution's kubelet keeps its settings: the probe reads the right files on
the k0s and MicroK8s trees, the kubelet checks judge what those files say, and the
kubelet-gate fix edits MicroK8s's flags file (backed up, idempotent), refuses on k0s, k3s and
RKE2 with what to do by hand, and never edits a /var/lib/kubelet/config.yaml that the node's
kubelet does not read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from installer.hosts.checks import NodeInfo, run_checks
from remote.fixes import kubelet_gate, plan_fixes
from remote.kubelet import (
    KUBELET_ROOTS,
    host_distribution,
    parse_args_file,
    parse_gate_flag,
    read_settings,
)
from remote.probe import probe_local
from tests.fixtures.trees import OURS
from tests.unit.test_fixes_plan import copy, sh

GATE = "KubeletPodResourcesGet"
ARGS = "var/snap/microk8s/current/args/kubelet"


def checks(tree: Path | str, node: NodeInfo | None = None) -> dict:
    facts = probe_local(tree if isinstance(tree, Path) else OURS / tree)
    return {r.name: r for r in run_checks(facts, node)}


def test_the_probe_reads_each_distributions_kubelet_files_and_marks():
    k0s = probe_local(OURS / "k0s-worker")
    assert host_distribution(k0s) == "k0s" and k0s.markers == ["var/lib/k0s"]
    assert "run/k0s/kubelet/config.yaml" in k0s.files
    s = read_settings(k0s)
    # the leftover kubeadm file is there, but k0s's own config is the one read
    assert "var/lib/kubelet/config.yaml" in k0s.files
    assert s.sources == ("run/k0s/kubelet/config.yaml",)
    assert s.config["containerRuntimeEndpoint"] == "unix:///run/k0s/containerd.sock"
    mk = probe_local(OURS / "microk8s-node")
    assert host_distribution(mk) == "microk8s" and ARGS in mk.files  # through `current`
    flags = read_settings(mk).flags
    assert flags["--root-dir"] == "${SNAP_COMMON}/var/lib/kubelet"
    assert flags["--eviction-hard"] == "memory.available<100Mi,nodefs.available<1Gi," \
                                       "imagefs.available<1Gi"
    assert host_distribution(probe_local(OURS / "gpu-vfio-ready")) == "k8s"


def test_kubelet_roots_per_distribution():
    assert KUBELET_ROOTS == {"k8s": "/var/lib/kubelet", "k3s": "/var/lib/kubelet",
                             "rke2": "/var/lib/kubelet", "k0s": "/var/lib/k0s/kubelet",
                             "microk8s": "/var/snap/microk8s/common/var/lib/kubelet"}


def test_k0s_gate_is_judged_from_k0s_config_and_the_fix_refuses(tmp_path):
    node = NodeInfo("v1.33.4+k0s", "containerd://1.7.27", "k0s")
    r = checks("k0s-worker", node)["kubelet-podresources-gate"]
    assert r.status == "fail" and "< 1.34" in r.summary
    ev = "\n".join(r.evidence)
    assert "kubelet layout: k0s (from the node), root /var/lib/k0s/kubelet" in ev
    assert "run/k0s/kubelet/config.yaml: no featureGates" in ev
    assert "spec.featureGates" in r.remedy and "does not" in r.remedy
    root = copy("k0s-worker", tmp_path)
    facts = probe_local(root)
    changes, blocked = plan_fixes(facts, str(root), kubelet_version="v1.33.4+k0s",
                                  distribution="k0s")
    assert changes == [] and [b.fix for b in blocked] == ["kubelet-gate"]
    assert "worker profile" in blocked[0].reason and "spec.workerProfiles" in blocked[0].remedy
    assert "--kubelet-extra-args=--feature-gates=KubeletPodResourcesGet=true" in blocked[0].remedy
    # 1.34 has the gate on by default: nothing to refuse
    assert checks("k0s-worker", replace(node, kubelet_version="v1.34.1+k0s"))[
        "kubelet-podresources-gate"].status == "pass"
    assert plan_fixes(facts, kubelet_version="v1.34.1+k0s", distribution="k0s") == ([], [])


def test_k0s_before_1_33_keeps_its_config_under_var_lib_k0s(tmp_path):
    root = copy("k0s-worker", tmp_path)
    old = root / "var/lib/k0s/kubelet-config.yaml"
    (root / "run/k0s/kubelet/config.yaml").rename(old)
    old.write_text(old.read_text() + f"featureGates:\n  {GATE}: true\n"
                   "runtimeRequestTimeout: 30m0s\n")
    by = checks(root, NodeInfo("v1.32.8+k0s", None, "k0s"))
    assert by["kubelet-podresources-gate"].status == "pass"
    assert by["kubelet-runtime-timeout"].status == "pass"
    assert "var/lib/k0s/kubelet-config.yaml: runtimeRequestTimeout: 30m0s" in \
        by["kubelet-runtime-timeout"].evidence


def test_a_kubeadm_config_is_never_edited_on_a_node_whose_kubelet_does_not_read_it():
    facts = probe_local(OURS / "gpu-host-driver")  # var/lib/kubelet/config.yaml, no gate
    for dist in ("k3s", "rke2", "k0s"):
        changes, blocked = plan_fixes(facts, kubelet_version="v1.33.4", distribution=dist,
                                      only=frozenset({"kubelet-gate"}))
        assert changes == [], dist
        (b,) = blocked
        assert b.fix == "kubelet-gate" and f"not done on {dist}" in b.reason
    # k3s/rke2: where to set it, without the installer reading their config.yaml (join token)
    r = {x.name: x for x in run_checks(facts, NodeInfo("v1.33.4+k3s1", None, "k3s"))}
    gate = r["kubelet-podresources-gate"]
    assert "/etc/rancher/k3s/config.yaml" in gate.remedy and "join token" in gate.remedy
    assert "feature-gates=KubeletPodResourcesGet=true" in gate.remedy
    assert "var/lib/rancher/k3s/agent/etc/kubelet.conf.d/*.conf: not found" in gate.evidence
    assert "etc/rancher/k3s/config.yaml" not in facts.files and \
        "etc/rancher/k3s/config.yaml" not in facts.missing  # never read


def test_k3s_drop_ins_merge_in_name_order():
    f = probe_local(OURS / "gpu-host-driver")
    d = "var/lib/rancher/k3s/agent/etc/kubelet.conf.d/"
    f = replace(f, files={**f.files,
                          d + "00-k3s-defaults.conf": "runtimeRequestTimeout: 2m\n"
                          "featureGates:\n  A: true\n",
                          d + "50-site.conf": f"runtimeRequestTimeout: 25m\nfeatureGates:\n"
                          f"  {GATE}: true\n"})
    s = read_settings(f, "k3s")
    assert s.sources == (d + "00-k3s-defaults.conf", d + "50-site.conf")
    assert s.feature_gates() == {"A": True, GATE: True}
    assert s.config["runtimeRequestTimeout"] == "25m"
    by = {r.name: r for r in run_checks(f, NodeInfo("v1.33.4+k3s1", None, "k3s"))}
    assert by["kubelet-podresources-gate"].status == "pass"
    assert by["kubelet-runtime-timeout"].status == "pass"
    assert plan_fixes(f, kubelet_version="v1.33.4+k3s1", distribution="k3s",
                      only=frozenset({"kubelet-gate"})) == ([], [])


def test_microk8s_flags_are_judged_and_the_fix_edits_the_args_file(tmp_path):
    node = NodeInfo("v1.33.4", "containerd://1.7.27", "microk8s")
    by = checks("microk8s-node", node)
    gate = by["kubelet-podresources-gate"]
    assert gate.status == "fail"
    assert f"Add `--feature-gates={GATE}=true` to /{ARGS}" in gate.remedy
    assert "snap restart microk8s.daemon-kubelite" in gate.remedy
    assert by["kubelet-runtime-timeout"].status == "warn"
    assert "--runtime-request-timeout=20m" in by["kubelet-runtime-timeout"].remedy
    root = copy("microk8s-node", tmp_path)
    facts = probe_local(root)
    (c,) = plan_fixes(facts, str(root), kubelet_version="v1.33.4", distribution="microk8s")[0]
    assert c.name == "kubelet-gate" and c.files == (f"/{ARGS}",)
    assert f"+--feature-gates={GATE}=true\n" in c.preview
    assert "$ snap restart microk8s.daemon-kubelite" in c.preview
    real = root / "var/snap/microk8s/7964/args/kubelet"
    before = real.read_text()
    assert sh(c.apply_script).returncode == 0
    assert (root / "var/snap/microk8s/current").is_symlink()  # edited through the link
    assert real.read_text() == before + f"--feature-gates={GATE}=true\n"
    assert (real.parent / "kubelet.gpu-kata-installer.kubelet-gate.bak").read_text() == before
    again = sh(c.apply_script)
    assert again.returncode == 0 and "unchanged:" in again.stdout
    after = probe_local(root)
    assert plan_fixes(after, kubelet_version="v1.33.4", distribution="microk8s") == ([], [])
    assert {r.name: r.status for r in run_checks(after, node)}[
        "kubelet-podresources-gate"] == "pass"
    assert sh(c.undo_script).returncode == 0 and real.read_text() == before
    # with a timeout flag the timeout check passes, naming the flag
    real.write_text(before + "--runtime-request-timeout=20m\n")
    t = checks(root, node)["kubelet-runtime-timeout"]
    assert t.status == "pass" and f"{ARGS}: --runtime-request-timeout=20m" in t.evidence


@pytest.mark.parametrize(("text", "want"), [
    ("--a=1\n", f"--a=1\n--feature-gates={GATE}=true\n"),
    ("--a=1", f"--a=1\n--feature-gates={GATE}=true\n"),
    ("--feature-gates=DevicePlugins=true\n--b=2\n",
     f"--feature-gates=DevicePlugins=true,{GATE}=true\n--b=2\n"),
    (f"--feature-gates=\"{GATE}=false,X=true\"\n", f"--feature-gates=\"X=true,{GATE}=true\"\n"),
    (f"--feature-gates {GATE}=false\n", f"--feature-gates {GATE}=true\n"),
])
def test_the_gate_joins_or_starts_the_feature_gates_flag(text, want):
    assert kubelet_gate.add_gate_flag(text) == want
    gates = parse_gate_flag(parse_args_file(want)["--feature-gates"])
    assert gates[GATE] is True


def test_two_feature_gates_lines_are_refused(tmp_path):
    root = copy("microk8s-node", tmp_path)
    real = root / "var/snap/microk8s/7964/args/kubelet"
    real.write_text(real.read_text() + "--feature-gates=A=true\n--feature-gates=B=true\n")
    _, blocked = plan_fixes(probe_local(root), kubelet_version="v1.33.4",
                            distribution="microk8s", only=frozenset({"kubelet-gate"}))
    assert [b.fix for b in blocked] == ["kubelet-gate"]
    assert "more than one --feature-gates" in blocked[0].reason
    assert f"--feature-gates={GATE}=true" in blocked[0].remedy
