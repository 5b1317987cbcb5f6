"""A node's role changed in the answers on an installed cluster: the install plan cordons it,
drains its GPU pods, relabels it, takes its GPUs off vfio-pci where it leaves Kata (unbinding
them itself under GPU Operator v26.3.x, reverting the installer's vfio and driver-blacklist
files with a reboot), verifies it in its new role and uncordons it - in waves."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from installer.answers.model import load_answers, parse_answers
from installer.cluster.drain import drain_plan
from installer.cluster.facts import Facts, ReleaseFacts
from installer.cluster.kube import holds_nvidia
from installer.engine.params import (
    CordonParams,
    DrainParams,
    HostFixParams,
    RelabelParams,
    UncordonParams,
    VerifyRoleParams,
)
from installer.engine.plan import build_plan
from installer.engine.steps.rolechange import cluster_missing
from installer.engine.waves import Wave, schedule
from remote.probe import probe_local
from tests.unit.test_uninstall_revert import ANSWERS, EXAMPLES, facts_with, fixed_tree

WORKLOAD = "nvidia.com/gpu.workload.config"
LEAVING, JOINING = "gpu-node-2", "gpu-node-3"  # Kata -> traditional, traditional -> Kata


def answers(swap: bool = True, **policy: str):
    text = ANSWERS
    if swap:  # gpu-node-2 kata -> traditional, gpu-node-3 traditional -> kata
        text = text.replace("    - name: gpu-node-2\n      choice: kata",
                            "    - name: gpu-node-2\n      choice: traditional")
        text = text.replace("    - name: gpu-node-3\n      choice: traditional",
                            "    - name: gpu-node-3\n      choice: kata")
    for key, value in policy.items():
        text = text.replace(f"  {key}: ask", f"  {key}: {value}")
    return parse_answers(text, "answers.yaml")


def installed(facts: Facts, operator: str = "v26.3.1", gpu_pods=(), installed_=True) -> Facts:
    """The example cluster after a first install: gpu-node-1/2 on Kata, gpu-node-3
    traditional, both charts installed."""
    workloads = {"gpu-node-1": "vm-passthrough", "gpu-node-2": "vm-passthrough",
                 "gpu-node-3": "container"}
    nodes = tuple(replace(n, labels={**n.labels, WORKLOAD: workloads[n.name]},
                          gpu_pods=tuple(gpu_pods) if n.name in (LEAVING, JOINING) else ())
                  if n.name in workloads else n for n in facts.cluster.nodes)
    releases = [ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", operator,
                             "deployed"),
                ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0",
                             "deployed")] if installed_ else []
    return replace(facts, cluster=replace(facts.cluster, nodes=nodes, releases=releases,
                                          recorded_labels={}))


def chain(plan, node: str) -> list:
    return [s for s in plan.steps if getattr(s.params, "node", None) == node
            and s.phase == "change"]


def on_vfio(tree_facts):
    return replace(tree_facts, devices=[replace(d, driver="vfio-pci") if d.is_gpu else d
                                        for d in tree_facts.devices])


def leaving_host(facts: Facts, host) -> Facts:
    return replace(facts, hosts={**facts.hosts, LEAVING: host})


def test_kata_to_traditional_with_gpu_pods_is_cordon_drain_relabel_unbind_verify_uncordon():
    ans = answers()
    base = installed(facts_with(None), gpu_pods=("default/train-0",))
    host = on_vfio(base.hosts["gpu-node-1"])  # a host the installer never changed
    plan = build_plan(ans, leaving_host(base, host))
    steps = chain(plan, LEAVING)
    assert [type(s.params) for s in steps] == [CordonParams, DrainParams, RelabelParams,
                                               HostFixParams, VerifyRoleParams, UncordonParams]
    cordon, drain, relabel, unbind, verify, uncordon = steps
    assert cordon.params.why == "role-change"
    assert drain.params.only == "nvidia" and "default/train-0" in drain.changes[0].description
    assert relabel.changes[0].detail == {"node": LEAVING, "key": WORKLOAD,
                                         "from": "vm-passthrough", "to": "container"}
    change = unbind.params.fix.change
    assert "gki_release 0000:" in change.apply_script and not change.needs_reboot
    assert unbind.changes[0].ask_first  # hostFixes.vfioBind: ask
    assert verify.params.role == "traditional" and uncordon.changes[0].detail["key"] == "uncordon"
    # no plain label step and no "drain it first" warning for a planned change
    assert f"label/{LEAVING}" not in [s.id for s in plan.steps if not isinstance(
        s.params, RelabelParams)]
    assert not [w for w in plan.warnings if w.startswith(LEAVING) and "drain it first" in w]


def test_without_gpu_pods_the_chain_is_the_same_and_the_drain_says_none():
    plan = build_plan(answers(), installed(facts_with(None)))
    (drain,) = [s for s in chain(plan, LEAVING) if isinstance(s.params, DrainParams)]
    assert "none seen now" in drain.changes[0].description


@pytest.mark.parametrize(("operator", "unbinds"), [("v26.3.1", True), ("v26.3.3", True),
                                                  ("v26.7.0", False)])
def test_only_the_defective_operator_gets_its_gpus_unbound_by_the_plan(operator, unbinds):
    base = installed(facts_with(None), operator=operator)
    plan = build_plan(answers(), leaving_host(base, on_vfio(base.hosts["gpu-node-1"])))
    host = [s for s in chain(plan, LEAVING) if isinstance(s.params, HostFixParams)]
    assert bool(host) == unbinds


def test_the_installers_vfio_and_blacklist_files_are_reverted_with_a_reboot(tmp_path):
    root, _ = fixed_tree(tmp_path)
    base = installed(facts_with(None), operator="v26.7.0")
    plan = build_plan(answers(), leaving_host(base, on_vfio(probe_local(root))))
    host = [s for s in chain(plan, LEAVING) if isinstance(s.params, HostFixParams)]
    assert [s.id for s in host] == [f"release/{LEAVING}", f"release/{LEAVING}/reboot"]
    files = host[0].changes[0].detail["files"]
    # exactly the files of the vfio-bind and nvidia-driver-off backups (vfio-bind waits for
    # the IOMMU reboot on this tree, so its files are not there yet)
    assert files == sorted({f"/{b.path}" for b in probe_local(root).backups
                            if b.fix in ("vfio-bind", "nvidia-driver-off")})
    assert "/etc/modprobe.d/gpu-kata-blacklist-nvidia.conf" in files
    assert "/etc/default/grub" not in files  # the IOMMU fix stays: it serves containers too
    assert "gki_restore" in host[0].params.fix.change.apply_script
    assert host[1].changes[0].ask_first and "reboot" in host[1].changes[0].description


def test_a_skip_policy_reverts_nothing_and_names_the_files(tmp_path):
    root, _ = fixed_tree(tmp_path)
    base = installed(facts_with(None), operator="v26.7.0")
    plan = build_plan(answers(vfioBind="skip"), leaving_host(base, probe_local(root)))
    assert not [s for s in chain(plan, LEAVING) if isinstance(s.params, HostFixParams)]
    (said,) = [w for w in plan.warnings if w.startswith(f"{LEAVING}: the installer's")]
    assert "/etc/modprobe.d/gpu-kata-blacklist-nvidia.conf" in said and "--revert-hosts" in said


def test_the_leaving_host_is_probed_first():
    base = installed(facts_with(None))
    facts = replace(base, hosts={k: v for k, v in base.hosts.items() if k != LEAVING})
    plan = build_plan(answers(), facts)
    (probe,) = [s for s in plan.phase("gather") if s.id == "probe/hosts"]
    assert LEAVING in [t.node for t in probe.params.targets]


def test_traditional_to_kata_drains_before_the_relabel_and_verifies_as_kata():
    plan = build_plan(answers(), installed(facts_with(None), gpu_pods=("default/train-1",)))
    steps = chain(plan, JOINING)
    kinds = [type(s.params) for s in steps]
    assert kinds[:2] == [CordonParams, DrainParams] and kinds[-2:] == [VerifyRoleParams,
                                                                       UncordonParams]
    assert kinds.index(DrainParams) < kinds.index(RelabelParams)
    assert HostFixParams in kinds  # gpu-host-driver needs its fixes, inside this chain
    assert kinds.index(HostFixParams) < kinds.index(RelabelParams)
    assert steps[-2].params.role == "kata"
    assert [s.id for s in steps].count(f"cordon/{JOINING}") == 1  # one cordon, not two
    assert f"check/{JOINING}" in [s.id for s in plan.steps]


def test_role_chains_run_in_waves_of_max_unavailable():
    plan = build_plan(answers(), installed(facts_with(None)))
    waves = [w for w in schedule(plan.phase("change"), 1) if isinstance(w, Wave)]
    assert [w.nodes for w in waves] == [(LEAVING,), (JOINING,)]
    (verify,) = [s for s in chain(plan, LEAVING) if isinstance(s.params, VerifyRoleParams)]
    assert "wave 1 of 2" in verify.note
    both = [w for w in schedule(plan.phase("change"), 2) if isinstance(w, Wave)]
    assert [w.nodes for w in both] == [(LEAVING, JOINING)]


def test_a_first_install_keeps_the_plain_label_step():
    plan = build_plan(answers(), installed(facts_with(None), installed_=False))
    assert not [s for s in plan.steps if isinstance(s.params, (RelabelParams,
                                                                VerifyRoleParams))]


def test_no_change_of_role_no_chain():
    plan = build_plan(answers(swap=False), installed(facts_with(None)))
    assert not [s for s in plan.steps if isinstance(s.params, (RelabelParams,
                                                                VerifyRoleParams))]


def test_the_dry_run_json_shows_every_step_of_the_change():
    base = installed(facts_with(None), gpu_pods=("default/train-0",))
    plan = build_plan(answers(), leaving_host(base, on_vfio(base.hosts["gpu-node-1"])))
    data = json.loads(json.dumps(plan.to_dict()))
    mine = [s for s in data["steps"] if s["params"].get("node") == LEAVING
            and s["phase"] == "change"]
    assert [s["action"] for s in mine] == ["cordon", "drain", "relabel", "host-fix",
                                           "verify-role", "uncordon"]
    assert mine[0]["params"]["why"] == "role-change" and mine[1]["params"]["only"] == "nvidia"
    assert all(s["changes"] for s in mine)


def test_the_drain_of_a_role_change_picks_only_pods_holding_nvidia_devices():
    def pod(name, limits, owner=True):
        return {"metadata": {"name": name, "namespace": "default", "ownerReferences": [
            {"kind": "ReplicaSet", "controller": True}] if owner else []},
            "spec": {"containers": [{"resources": {"limits": limits}}]},
            "status": {"phase": "Running"}}

    pods = [pod("gpu", {"nvidia.com/gpu": "1"}), pod("web", {"cpu": "1"}),
            pod("bare", {"nvidia.com/pgpu": "1"}, owner=False)]
    plan = drain_plan(pods, holds_nvidia)
    assert plan.evict == ("default/gpu",) and plan.unmanaged == ("default/bare",)


@pytest.mark.parametrize(("role", "labels", "alloc", "missing"), [
    ("traditional", {}, {"nvidia.com/gpu": "2"}, ""),
    ("traditional", {}, {"nvidia.com/gpu": "2", "nvidia.com/pgpu": "2"}, "still advertises"),
    ("traditional", {}, {"nvidia.com/pgpu": "0"}, "does not advertise nvidia.com/gpu"),
    ("kata", {"katacontainers.io/kata-runtime": "true"}, {"nvidia.com/pgpu": "2"}, ""),
    ("kata", {}, {"nvidia.com/pgpu": "2"}, "kata-runtime"),
    ("kata", {"katacontainers.io/kata-runtime": "true"}, {"nvidia.com/gpu": "2"},
     "does not advertise nvidia.com/pgpu"),
])
def test_the_role_verification_reads_the_node(role, labels, alloc, missing):
    from installer.engine.params import SshTarget
    params = VerifyRoleParams("n", role, "nvidia.com/pgpu", SshTarget("n", None, None, None), 1)
    said = cluster_missing({"metadata": {"labels": labels}, "status": {"allocatable": alloc}},
                           params)
    assert (missing in said) if missing else said == ""


def test_the_example_answers_still_plan_as_before():
    """The examples run on a cluster without the charts: no role change."""
    from installer.cluster.factsfile import load_recorded_facts
    plan = build_plan(load_answers(EXAMPLES / "answers.yaml"),
                      load_recorded_facts(EXAMPLES / "facts.yaml"))
    assert not [s for s in plan.steps if isinstance(s.params, RelabelParams)]
