"""Diagnosis rules: each failure from domain.md section 6 yields a top finding with evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from installer.cluster.facts import NodeFacts, ReleaseFacts
from installer.cluster.podread import PodReading
from installer.diagnosis.rules import CheckView, EventInfo, State, diagnose

GPU = {"feature.node.kubernetes.io/pci-10de.present": "true"}
KATA = {**GPU, "nvidia.com/gpu.workload.config": "vm-passthrough",
        "nvidia.com/cc.ready.state": "false"}
POLICY = {"spec": {"sandboxWorkloads": {"enabled": True, "mode": "kata"}},
          "status": {"state": "ready"}}
KD = ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0", "deployed")


def healthy() -> State:
    return State(
        nodes=(NodeFacts("gpu-1", labels=KATA, allocatable={"nvidia.com/pgpu": "1"},
                         kubelet_version="v1.35.4", ready=True),),
        runtime_classes=("kata-qemu-nvidia-gpu",), cluster_policy=POLICY, releases=(KD,))


def top(state: State):
    findings = diagnose(state)
    assert findings, "expected a finding"
    return findings[0]


def test_a_healthy_cluster_has_no_findings():
    assert diagnose(healthy()) == []


def node(state: State, **labels) -> State:
    n = state.nodes[0]
    return replace(state, nodes=(replace(n, labels={**n.labels, **labels}),))


CASES = {
    "typo label": (lambda s: node(s, **{"nvidia.com/gpu.workload.config": "kata"}),
                   "workload-label-invalid", "=kata"),
    "wrong mode": (lambda s: replace(s, cluster_policy={"spec": {"sandboxWorkloads": {
        "enabled": True, "mode": "kubevirt"}}}), "sandbox-mode-not-kata", "'kubevirt'"),
    "runtime class missing": (lambda s: replace(s, runtime_classes=(), releases=(), events=(
        EventInfo("default", "Pod/x", "FailedCreatePodSandBox",
                  'RuntimeClass "kata-qemu-nvidia-gpu" not found'),)),
                              "runtime-class-missing", "not found"),
    "host driver": (lambda s: replace(node(s, **{"nvidia.com/gpu.deploy.driver": "pre-installed"}),
                                      pods=(PodReading(
                                          "gpu-operator", "nvidia-sandbox-validator-a",
                                          "Running", node="gpu-1",
                                          labels={"app": "nvidia-sandbox-validator"},
                                          waiting_reason="CrashLoopBackOff",
                                          log_tail=("device not bound to 'vfio-pci'",)),)),
                    "host-driver-loaded", "pre-installed"),
    "iommu off": (lambda s: replace(s, host_checks={"gpu-1": (CheckView(
        "iommu-enabled", "fail", ("/proc/cmdline: BOOT_IMAGE=/vmlinuz ro",)),)}),
                  "iommu-off", "/proc/cmdline"),
    "feature gate": (lambda s: replace(s, events=(EventInfo(
        "default", "Pod/cuda", "Failed", "PodResources API Get method disabled"),)),
                     "kubelet-podresources-gate", "PodResources API"),
    "cc blocks scheduling": (lambda s: replace(node(s, **{"nvidia.com/cc.ready.state": "true"}),
                                               pods=(PodReading(
                                                   "default", "cuda", "Pending",
                                                   runtime_class="kata-qemu-nvidia-gpu",
                                                   unschedulable="0/4 nodes: didn't match Pod's "
                                                   "node affinity/selector"),)),
                             "cc-ready-state-blocks-scheduling", "cc.ready.state=true"),
    "two nfd": (lambda s: replace(s, nfd_workers=("gpu-operator/gpu-operator-node-feature-"
                                                  "discovery-worker",
                                                  "kube-system/node-feature-discovery-worker")),
                "nfd-twice", "kube-system/node-feature-discovery-worker"),
    "no pgpu": (lambda s: replace(s, nodes=(replace(s.nodes[0], allocatable={}),), events=(
        EventInfo("default", "Pod/cuda", "FailedScheduling",
                  "0/4 nodes are available: 1 Insufficient nvidia.com/pgpu."),)),
                "insufficient-pgpu", "Insufficient nvidia.com/pgpu"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_top_finding_names_the_cause_with_evidence(case):
    mutate, rule, evidence_word = CASES[case]
    finding = top(mutate(healthy()))
    assert finding.rule == rule
    assert any(evidence_word in e for e in finding.evidence), finding.evidence
    assert finding.fix


def test_cc_manager_crash_on_non_cc_gpus_suggests_cc_off():
    state = replace(node(healthy(), **{"nvidia.com/cc.ready.state": "true"}), pods=(PodReading(
        "gpu-operator", "nvidia-cc-manager-x", "Running", node="gpu-1",
        labels={"name": "nvidia-cc-manager"}, waiting_reason="CrashLoopBackOff",
        log_tail=("Some GPUs are not cc-capable",)),))
    finding = top(state)
    assert finding.rule == "cc-gpus-not-capable" and "ccMode: off" in finding.fix


def test_no_node_labelled_is_a_finding():
    state = replace(healthy(), nodes=(NodeFacts("gpu-1", labels=GPU),))
    assert top(state).rule == "no-kata-nodes"


def test_findings_are_ordered_by_likelihood():
    state = replace(node(healthy(), **{"nvidia.com/gpu.workload.config": "kata"}),
                    nfd_workers=("a/x-node-feature-discovery-worker",
                                 "b/node-feature-discovery-worker"))
    scores = [f.score for f in diagnose(state)]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 2


def test_a_host_driver_on_a_traditional_node_is_not_a_finding():
    s = node(healthy(), **{"nvidia.com/gpu.workload.config": "container",
                           "nvidia.com/gpu.deploy.driver": "pre-installed"})
    assert "host-driver-loaded" not in {f.rule for f in diagnose(s)}
    s = node(s, **{"nvidia.com/gpu.workload.config": "vm-passthrough"})
    assert top(s).rule == "host-driver-loaded"


class _Refusing:
    """An API that lists kata-system's pods and events but answers 403 for gpu-operator's and
    for the whole cluster's, as a context confined by RBAC does."""

    def list_items(self, path: str, **query: str):
        from installer.cluster.kube import ApiError

        if path.startswith("/api/v1/namespaces/kata-system/"):
            return iter(())
        raise ApiError(403, "Forbidden", "", "GET", path)

    def get_json(self, path: str, **query: str):
        return POLICY


def test_what_the_api_refused_is_a_finding_before_the_rules_and_never_no_problem(capsys):
    import asyncio

    from installer.cluster.facts import ClusterFacts
    from installer.commands.troubleshoot import all_findings, print_findings
    from installer.diagnosis.clusterstate import read_state

    cluster = ClusterFacts(context="c", server_version="v1.35.4", recorded_labels=None,
                           nodes=healthy().nodes, runtime_classes=healthy().runtime_classes,
                           releases=(KD,))
    state = asyncio.run(read_state(_Refusing(), cluster, ("kata-system", "gpu-operator")))
    assert [str(e) for e in state.unread] == [
        "namespace gpu-operator: cannot list pods (HTTP 403 Forbidden)",
        "all namespaces: cannot list pods (HTTP 403 Forbidden)"]
    assert diagnose(state) == []  # what was read is healthy ...
    found = all_findings(state)  # ... but the command says it did not read everything
    assert [f.rule for f in found] == ["namespace-unread", "namespace-unread"]
    assert "kubectl auth can-i list pods -n gpu-operator" in found[0].fix
    print_findings(found, as_json=False)
    out = capsys.readouterr().out
    assert "No problem found" not in out
    assert "symptom: namespace gpu-operator: cannot list pods (HTTP 403 Forbidden)" in out


def test_a_kata_gpu_pod_pending_for_memory_names_the_runtime_class_overhead():
    pending = PodReading("default", "cuda-vectoradd-kata", "Pending",
                         runtime_class="kata-qemu-nvidia-gpu",
                         requests={"memory": "16Gi", "nvidia.com/pgpu": "1"},
                         overhead={"cpu": "1", "memory": "10240Mi"},
                         unschedulable="0/4 nodes are available: 2 Insufficient memory, "
                         "2 node(s) didn't match Pod's node affinity/selector.")
    state = replace(healthy(), nodes=(replace(healthy().nodes[0], allocatable={
        "nvidia.com/pgpu": "1", "memory": "20Gi", "cpu": "64"}),), pods=(pending,))
    finding = top(state)
    assert finding.rule == "kata-overhead-no-room"
    assert "Insufficient memory" in finding.symptom
    assert "overhead (cpu 1, memory 10240Mi)" in finding.cause
    assert any("requests memory 16Gi" in e for e in finding.evidence)
    assert "node gpu-1 allocatable memory 20Gi" in finding.evidence
    # a plain pod Pending for memory is not the Kata overhead's doing
    plain = replace(pending, runtime_class=None)
    assert not [f for f in diagnose(replace(state, pods=(plain,)))
                if f.rule == "kata-overhead-no-room"]


def test_insufficient_gpus_knows_per_model_names():
    event = EventInfo("default", "Pod/cuda", "FailedScheduling",
                      "0/4 nodes are available: 1 Insufficient nvidia.com/GH100_H100_SXM5_80GB.")
    state = replace(healthy(), events=(event,), nodes=(replace(
        healthy().nodes[0], allocatable={"nvidia.com/GH100_H100_SXM5_80GB": "2"}),))
    finding = next(f for f in diagnose(state) if f.rule == "insufficient-pgpu")
    assert finding.cause == "every passthrough GPU is already in use"
    assert "node gpu-1 allocatable nvidia.com/GH100_H100_SXM5_80GB=2" in finding.evidence


def _host_checks(tree: str, node=None):
    from installer.hosts.checks import run_checks
    from remote.probe import probe_local
    from tests.fixtures.trees import OURS
    return tuple(CheckView(r.name, r.status, tuple(r.evidence), r.remedy)
                 for r in run_checks(probe_local(OURS / tree), node))


def test_an_enabled_host_fabric_manager_is_a_finding_with_its_fix():
    state = replace(healthy(), host_checks={"hgx-1": _host_checks("hgx-nvswitch")},
                    nvswitch_nodes=("hgx-1",))
    (f,) = [f for f in diagnose(state) if f.rule == "host-fabric-manager"]
    assert "is enabled on host hgx-1" in f.cause and f.score == 58
    assert any("multi-user.target.wants/nvidia-fabricmanager.service" in e for e in f.evidence)
    assert "systemctl disable --now nvidia-fabricmanager" in f.fix
    # an HGX host without the host unit: nothing about it
    assert not [f for f in diagnose(replace(state, host_checks={"gpu-1": _host_checks(
        "gpu-vfio-ready")})) if f.rule == "host-fabric-manager"]


def test_the_gate_finding_says_where_a_k0s_node_sets_it():
    from installer.hosts.checks import NodeInfo
    checks = _host_checks("k0s-worker", NodeInfo("v1.33.4+k0s", None, "k0s"))
    state = replace(healthy(), host_checks={"k0s-1": checks}, events=(EventInfo(
        "default", "Pod/cuda", "Failed", "PodResources API Get method disabled"),))
    f = top(state)
    assert f.rule == "kubelet-podresources-gate" and "spec.featureGates" in f.fix
    assert "run/k0s/kubelet/config.yaml" in "\n".join(f.evidence)


class _Quiet:
    """An API with nothing in the namespaces and the healthy ClusterPolicy."""

    def list_items(self, path: str, **query: str):
        return iter(())

    def get_json(self, path: str, **query: str):
        return POLICY


def test_headless_and_the_screen_give_one_cluster_the_same_findings(monkeypatch):
    """A k0s host whose kubelet-runtime-timeout check warns before any pod timed out: the
    screen listed the warning, headless `troubleshoot` found nothing. Both now read the same
    inputs (the host checks, the probed hosts) through rules.troubleshoot_findings."""
    import asyncio

    from installer.cluster import kube
    from installer.cluster.facts import ClusterFacts
    from installer.commands.troubleshoot import all_findings
    from installer.diagnosis.clusterinfo import basic_findings, cluster_view, screen_findings
    from installer.diagnosis.clusterstate import nvswitch_nodes_of, read_state
    from installer.hosts.checks import CheckResult, NodeInfo, run_checks
    from remote.probe import probe_local
    from tests.fixtures.trees import OURS

    cluster = ClusterFacts(context="c", server_version="v1.35.4", recorded_labels=None,
                           nodes=healthy().nodes, runtime_classes=healthy().runtime_classes,
                           releases=(KD,))

    async def discover(k):
        return cluster

    monkeypatch.setattr(kube, "discover", discover)
    host = probe_local(OURS / "k0s-worker")
    checks = {"gpu-1": tuple(run_checks(host, NodeInfo("v1.33.4+k0s", None, "k0s")))}
    hosts = {"gpu-1": host}
    namespaces = ("kata-system", "gpu-operator")
    # what `collect` hands the rules: the check phase's host checks, the probed hosts' NVSwitches
    state = asyncio.run(read_state(_Quiet(), cluster, namespaces, checks,
                                   nvswitch_nodes_of(hosts)))
    headless = all_findings(state)
    # the screen's: the wizard's last check run (with the cluster-wide checks) and its hosts
    cluster_checks = (CheckResult("nodes-ready", "pass", None, "all Ready"),)
    view = asyncio.run(cluster_view(_Quiet(), namespaces, {**checks, "cluster": cluster_checks},
                                    hosts=hosts))
    assert view.state == state
    assert basic_findings(view) == list(screen_findings(headless))
    timeout = [f for f in headless if f.rule == "host-check" and "kubelet-runtime-timeout" in
               f.symptom]
    assert timeout and timeout[0].severity == "warning" and timeout[0].score == 20
    assert timeout[0].to_json().keys() == {"rule", "symptom", "cause", "evidence", "fix", "score"}


def test_a_pod_pinned_to_a_node_without_pgpu_is_not_read_as_blocked_by_the_cc_label():
    """Right after the charts go in, a prepared node may not carry cc.ready.state yet; a pod
    pinned to the unprepared node reads '1 Insufficient nvidia.com/pgpu, 3 didn't match the
    node affinity' - its pin, not the label - so the host driver on its node comes first."""
    prepared = replace(healthy().nodes[0], labels={
        k: v for k, v in KATA.items() if k != "nvidia.com/cc.ready.state"})
    unprepared = NodeFacts("gpu-3", labels=KATA, allocatable={}, kubelet_version="v1.35.4",
                           ready=True)
    pinned = PodReading("default", "cuda", "Pending", runtime_class="kata-qemu-nvidia-gpu",
                        unschedulable="0/4 nodes are available: 1 Insufficient nvidia.com/pgpu, "
                        "3 node(s) didn't match Pod's node affinity/selector.")
    driver = CheckView("host-nvidia-driver", "fail", ("lsmod: nvidia 5 0",))
    state = replace(healthy(), nodes=(prepared, unprepared), pods=(pinned,),
                    host_checks={"gpu-3": (driver,)})
    findings = diagnose(state)
    assert findings[0].rule == "host-driver-loaded" and "gpu-3" in findings[0].cause
    cc = [f for f in findings if f.rule == "cc-ready-state-blocks-scheduling"]
    assert cc and not any("Pending" in e for e in cc[0].evidence)


def test_a_check_a_rule_already_cites_is_not_listed_again():
    """IOMMU off: the iommu-off finding quotes the failing check; a second 'check fails'
    finding for the same check on the same host would say it twice. Another failing check
    no rule cites is still listed."""
    from installer.diagnosis.rules import troubleshoot_findings

    iommu = CheckView("iommu-enabled", "fail", ("/proc/cmdline: BOOT_IMAGE=/vmlinuz ro",))
    hugepages = CheckView("hugepages", "warn", ("HugePages_Total: 0",))
    found = troubleshoot_findings(replace(healthy(), host_checks={"gpu-1": (iommu, hugepages)}))
    assert [f.rule for f in found] == ["iommu-off", "host-check"]
    assert "hugepages" in found[1].symptom
