"""installer.engine.drift: each kind of drift, from the install's plan on recorded facts."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from installer.answers.model import load_answers
from installer.cluster.facts import WORKLOAD_LABEL, Facts, ProbeFailure, ReleaseFacts
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.drift import (
    Observed,
    PodSeen,
    RuntimeClassSeen,
    checked,
    differing_keys,
    drift,
)
from installer.engine.plan import build_plan
from remote.hostfacts import Backup

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
RC = "kata-qemu-nvidia-gpu"
SEEN = Observed(RC, RuntimeClassSeen(RC, RC, "3.29.0"),
                (PodSeen("kata-deploy-a", "gpu-node-1"), PodSeen("kata-deploy-b", "gpu-node-2")))


def installed() -> tuple:
    """The example answers on a cluster as the install left it: Kata nodes labelled, both
    releases deployed with the planned versions and values, both Kata hosts prepared."""
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    ready = facts.hosts["gpu-node-1"]  # the gpu-vfio-ready tree
    labelled = tuple(replace(n, labels={**n.labels, WORKLOAD_LABEL: "vm-passthrough"})
                     if n.name in ("gpu-node-1", "gpu-node-2") else n
                     for n in facts.cluster.nodes)
    facts = replace(facts, hosts={"gpu-node-1": ready, "gpu-node-2": ready},
                    cluster=replace(facts.cluster, nodes=labelled, recorded_labels={}))
    helm = [c.detail for c in build_plan(answers, facts).changes if c.kind == "helm"]
    releases = tuple(ReleaseFacts(d["release"], d["namespace"], d["release"], d["version"],
                                  "deployed", d["values"],
                                  app_version="3.29.0" if d["release"] == "kata-deploy" else "")
                     for d in helm)
    return answers, replace(facts, cluster=replace(facts.cluster, releases=releases))


def found(answers, facts: Facts, observed: Observed = SEEN):
    return drift(answers, facts, build_plan(answers, facts), observed)


def with_release(facts: Facts, name: str, **changes) -> Facts:
    releases = tuple(replace(r, **changes) if r.name == name else r
                     for r in facts.cluster.releases)
    return replace(facts, cluster=replace(facts.cluster, releases=releases))


def test_the_cluster_as_installed_has_no_drift():
    answers, facts = installed()
    assert build_plan(answers, facts).changes == ()
    assert found(answers, facts) == []
    assert checked(answers, facts, SEEN)["hosts"] == {"gpu-node-1": "probed",
                                                      "gpu-node-2": "probed"}


def test_a_node_label_changed_since_is_a_label_drift():
    answers, facts = installed()
    nodes = tuple(replace(n, labels={**n.labels, WORKLOAD_LABEL: "container"})
                  if n.name == "gpu-node-2" else n for n in facts.cluster.nodes)
    (d,) = found(answers, replace(facts, cluster=replace(facts.cluster, nodes=nodes)))
    assert (d.kind, d.target) == ("label", "gpu-node-2")
    assert d.expected == f"{WORKLOAD_LABEL}=vm-passthrough"
    assert d.found == f"{WORKLOAD_LABEL}=container"


def test_a_lost_record_of_the_labels_before_the_install_is_drift():
    answers, facts = installed()
    (d,) = found(answers, replace(facts, cluster=replace(facts.cluster, recorded_labels=None)))
    assert (d.kind, d.target) == ("label", "kube-system/gpu-kata-installer-state")
    assert "missing" in d.found


def test_a_chart_at_another_version_is_a_chart_drift():
    answers, facts = installed()
    (d,) = found(answers, with_release(facts, "gpu-operator", version="v26.3.0"))
    assert (d.kind, d.target) == ("chart", "gpu-operator/gpu-operator")
    assert d.expected == "chart version v26.3.1" and d.found == "chart version v26.3.0"


def test_chart_values_changed_since_name_the_keys_that_differ_not_their_values():
    answers, facts = installed()
    current = next(r for r in facts.cluster.releases if r.name == "gpu-operator").values
    key = next(k for k, v in current.items() if isinstance(v, dict))
    edited = {**current, key: {**current[key], "enabled": "s3cret"}, "extra": 1}
    (d,) = found(answers, with_release(facts, "gpu-operator", values=edited))
    assert d.kind == "chart" and d.found == "values differ at: " + ", ".join(
        sorted([f"{key}.enabled", "extra"]))
    assert "s3cret" not in str(d)


def test_a_missing_release_is_a_chart_drift():
    answers, facts = installed()
    kept = tuple(r for r in facts.cluster.releases if r.name != "kata-deploy")
    (d,) = found(answers, replace(facts, cluster=replace(facts.cluster, releases=kept)))
    assert (d.kind, d.target, d.found) == ("chart", "kata-system/kata-deploy", "release missing")


def test_differing_keys_recurse_into_dicts_and_compare_lists_whole():
    assert differing_keys({"a": {"b": 1, "c": [1]}, "d": 1},
                          {"a": {"b": 1, "c": [2]}, "e": 1}) == ["a.c", "d", "e"]
    assert differing_keys({"a": {"b": 1}}, {"a": 1}) == ["a"]


def test_a_host_whose_files_lost_a_fix_is_a_host_drift():
    """The vfio-pci ids= file deleted: the plan's own vfio-bind fix is the drift."""
    answers, facts = installed()
    host = facts.hosts["gpu-node-2"]
    files = {k: v for k, v in host.modprobe_d.items() if "ids=" not in v}
    assert files != host.modprobe_d
    edited = replace(host, modprobe_d=files,
                     files={k: v for k, v in host.files.items() if k not in host.modprobe_d
                            or k in files})
    (d,) = found(answers, replace(facts, hosts={**facts.hosts, "gpu-node-2": edited}))
    assert (d.kind, d.target) == ("host", "gpu-node-2")
    assert "vfio-bind" in d.expected and "vfio-bind" in d.fix


def test_a_file_a_fix_created_and_one_put_back_by_hand_are_host_drift_the_plan_cannot_see():
    """The host's backups say what the fixes changed: a blacklist the fix created is gone (the
    driver is unloaded, so no plan would write it again before the next boot), and a file
    edited back to its backup's content."""
    answers, facts = installed()
    host = facts.hosts["gpu-node-1"]
    blacklist = "etc/modprobe.d/gpu-kata-blacklist-nvidia.conf"
    kubelet = "var/lib/kubelet/config.yaml"  # as it was before the fix: put back by hand
    grub = host.files["etc/default/grub"]
    before = grub.replace("intel_iommu=on", "")
    edited = replace(host, files={**host.files, "etc/default/grub": before}, backups=[
        Backup(blacklist, "nvidia-driver-off", blacklist + ".gpu-kata-installer."
               "nvidia-driver-off.absent", None),
        Backup("etc/default/grub", "iommu-cmdline",
               "etc/default/grub.gpu-kata-installer.iommu-cmdline.bak", before),
        Backup(kubelet, "kubelet-gate", kubelet + ".gpu-kata-installer.kubelet-gate.bak",
               host.files[kubelet])])
    assert blacklist not in edited.files
    drifts = found(answers, replace(facts, hosts={**facts.hosts, "gpu-node-1": edited}))
    by_file = {d.expected.split()[0]: d for d in drifts if d.kind == "host"}
    assert "missing" in by_file[f"/{blacklist}"].found
    assert "before host fix kubelet-gate" in by_file[f"/{kubelet}"].found
    # GRUB without the IOMMU argument the kernel runs with is said once, by what it means
    assert "next boot" in by_file["intel_iommu=on"].found and "/etc/default/grub" not in by_file
    # a file that still holds the fix's change is no drift
    kept = replace(edited, files={**edited.files, blacklist: "blacklist nvidia\n",
                                  "etc/default/grub": grub,
                                  kubelet: host.files[kubelet] + "featureGates: {}\n"})
    assert not [d for d in found(answers, replace(facts, hosts={**facts.hosts,
                                                               "gpu-node-1": kept}))
                if "as host fix" in d.expected]


def test_a_boot_config_that_lost_the_iommu_argument_is_a_host_drift():
    """The running kernel still has intel_iommu=on (so no plan sees it), GRUB does not."""
    answers, facts = installed()
    host = facts.hosts["gpu-node-1"]
    assert "intel_iommu=on" in host.cmdline_args
    grub = host.files["etc/default/grub"].replace("intel_iommu=on", "")
    edited = replace(host, files={**host.files, "etc/default/grub": grub})
    (d,) = found(answers, replace(facts, hosts={**facts.hosts, "gpu-node-1": edited}))
    assert (d.kind, d.target) == ("host", "gpu-node-1")
    assert "intel_iommu=on" in d.expected and "next boot" in d.found


def test_a_missing_runtimeclass_and_one_of_another_kata_version_are_drift():
    answers, facts = installed()
    (d,) = found(answers, facts, replace(SEEN, runtime_class=None))
    assert (d.kind, d.target, d.found) == ("runtimeclass", RC, "missing")
    older = replace(SEEN, runtime_class=RuntimeClassSeen(RC, "kata-qemu", "3.28.0"))
    assert [d.found for d in found(answers, facts, older)] == [
        "handler kata-qemu", "katacontainers.io/kata-version 3.28.0"]
    # before kata-deploy 3.32 the class carries no annotation: nothing to compare
    assert found(answers, facts, replace(SEEN, runtime_class=RuntimeClassSeen(RC, RC, None))) \
        == []


def test_gpus_not_on_vfio_pci_on_a_kata_node_are_drift():
    answers, facts = installed()
    host = facts.hosts["gpu-node-1"]
    gpu = host.gpus[0]
    devices = tuple(replace(d, driver="nvidia") if d.bdf == gpu.bdf else d
                    for d in host.devices)
    edited = replace(host, devices=list(devices) if isinstance(host.devices, list) else devices)
    drifts = found(answers, replace(facts, hosts={**facts.hosts, "gpu-node-1": edited}))
    vfio = [d for d in drifts if d.kind == "vfio"]
    assert [(d.target, d.found) for d in vfio] == [("gpu-node-1", f"{gpu.bdf} on nvidia")]


def test_kata_deploy_on_a_node_not_chosen_for_kata_is_drift():
    answers, facts = installed()
    stray = replace(SEEN, kata_deploy_pods=(*SEEN.kata_deploy_pods,
                                            PodSeen("kata-deploy-c", "gpu-node-3")))
    (d,) = found(answers, facts, stray)
    assert (d.kind, d.target) == ("kata-deploy", "gpu-node-3")
    assert "kata-system/kata-deploy-c" in d.found


@pytest.mark.parametrize("kind", ["unreachable", "auth"])
def test_a_host_that_could_not_be_probed_is_could_not_check_never_a_match(kind):
    answers, facts = installed()
    gone = ProbeFailure(kind, "connection refused", "start sshd")
    d = found(answers, replace(facts, hosts={**facts.hosts, "gpu-node-2": gone}))
    assert [(x.kind, x.target) for x in d] == [("unchecked", "gpu-node-2")]
    assert d[0].found.startswith("could not check:") and d[0].fix == "start sshd"
    assert checked(answers, replace(facts, hosts={**facts.hosts, "gpu-node-2": gone}),
                   SEEN)["hosts"]["gpu-node-2"] == "could not check"


def test_drift_is_grouped_by_kind():
    answers, facts = installed()
    nodes = tuple(replace(n, labels={**n.labels, WORKLOAD_LABEL: "container"})
                  if n.name == "gpu-node-2" else n for n in facts.cluster.nodes)
    facts = replace(facts, cluster=replace(facts.cluster, nodes=nodes))
    kinds = [d.kind for d in found(answers, facts, replace(SEEN, runtime_class=None))]
    assert kinds == sorted(kinds, key=["label", "chart", "runtimeclass"].index)


def test_a_node_an_interrupted_run_left_cordoned_is_uncordoned_by_the_next_and_is_drift():
    """Cordoned for a reboot (the installer's mark), the host since back and nothing left to
    do there: the plan uncordons it, status reports it; an upgrade's own cordon is left to
    `upgrade`, and a node not Ready stays cordoned with a warning."""
    answers, facts = installed()

    def cordoned(why: str, ready: bool = True) -> Facts:
        nodes = tuple(replace(n, cordoned_for=why, ready=ready) if n.name == "gpu-node-2"
                      else n for n in facts.cluster.nodes)
        return replace(facts, cluster=replace(facts.cluster, nodes=nodes))

    plan = build_plan(answers, cordoned("reboot"))
    (step,) = [s for s in plan.steps if s.changes]
    assert step.id == "uncordon/gpu-node-2" and "interrupted run" in step.title
    (d,) = found(answers, cordoned("role-change"))
    assert (d.kind, d.target, d.expected) == ("cordon", "gpu-node-2", "schedulable")
    assert build_plan(answers, cordoned("upgrade")).changes == ()
    down = build_plan(answers, cordoned("reboot", ready=False))
    assert down.changes == () and any("left cordoned until" in w for w in down.warnings)
