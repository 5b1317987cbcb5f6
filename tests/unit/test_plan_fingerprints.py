"""The plan's JSON and each step's journal fingerprint, pinned as the string-keyed plan made
them: a run journaled before the typed plan resumes after it, and `--dry-run --json`, the
review and the bundle show the same plan."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from installer.answers.model import load_answers, parse_answers
from installer.cluster.facts import Facts, ReleaseFacts, Taint
from installer.cluster.factsfile import load_recorded_facts
from installer.engine.plan import Plan, build_plan
from installer.engine.uninstall import build_uninstall_plan

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
PRIVATE = "images:\n  registry: registry.example.com/mirror\n  pullSecrets: [pull-a]\n"


def _plans() -> dict[str, Plan]:
    """Plans holding every kind of step, and each optional param both set and not."""
    answers = load_answers(EXAMPLES / "answers.yaml")
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    cluster = facts.cluster
    assert cluster is not None
    stuck = (ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", "v26.3.1",
                          "pending-install"),
             ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0",
                          "pending-upgrade"))
    tainted = tuple(replace(n, taints=(Taint("nvidia.com/gpu", "NoSchedule", "present"),),
                            gpu_pods=None) for n in cluster.nodes)
    private = parse_answers((EXAMPLES / "answers.yaml").read_text() + PRIVATE)
    deployed = (ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", "v26.3.1",
                             "deployed"),
                ReleaseFacts("kata-deploy", "kata-system", "kata-deploy", "3.29.0", "deployed"))
    return {
        "recorded": build_plan(answers, facts),
        "undiscovered": build_plan(answers, Facts(cluster=None)),
        "unprobed": build_plan(answers, replace(facts, hosts={})),
        "stuck-tainted-private": build_plan(private, replace(
            facts, hosts={}, cluster=replace(cluster, releases=stuck, nodes=tainted))),
        "uninstall": build_uninstall_plan(answers, replace(facts, cluster=replace(
            cluster, releases=deployed, recorded_labels={n.name: {} for n in cluster.nodes})),
            remove_crds=True),
        "uninstall-unrecorded": build_uninstall_plan(answers, replace(
            facts, cluster=replace(cluster, releases=deployed[:1]))),
        "uninstall-undiscovered": build_uninstall_plan(answers, Facts(cluster=None)),
    }


def _digest(plan: Plan) -> str:
    # not sorted: the keys' order is part of what `--dry-run --json` prints; the recorded
    # facts' path depends on where the repository is checked out
    shown = plan.to_dict()
    shown["factsSource"] = shown["factsSource"].replace(str(EXAMPLES), "<examples>")
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()[:16]


# Computed with the string-keyed plan (before installer.engine.params), on the same inputs
# (the plan digests with the examples' path masked).
PINS = {
    "recorded": ("53a2e4d5cf25b1d8", {
        "check/cluster": "2de72b0722e47927",
        "check/gpu-node-1": "612b99d2db49a7ef",
        "check/gpu-node-2": "bd005e2df1578260",
        "record/labels": "0dbfd490c0c7095c",
        "cordon/gpu-node-2": "cfe80ec2389312b2",
        "drain/gpu-node-2": "04b8922986768049",
        "fix/gpu-node-2/iommu-cmdline": "de795961a311b62b",
        "fix/gpu-node-2/nouveau-blacklist": "c28e7f72e26e37ed",
        "fix/gpu-node-2/nvidia-driver-off": "97b26bd2ef1906df",
        "fix/gpu-node-2/kubelet-gate": "25adbe7bff3ef384",
        "fix/gpu-node-2/reboot": "12076e0abeafc6c3",
        "fix/gpu-node-2/vfio-bind": "e1224c335181d21e",
        "uncordon/gpu-node-2": "d1950f7d1d65dcc5",
        "label/gpu-node-1": "02d6fa3cfbf5a8ff",
        "label/gpu-node-2": "3a873990e9a26b33",
        "label/gpu-node-3": "9d9e66623d7c9d40",
        "install/kata-deploy": "5f30f02b9ee7d435",
        "install/gpu-operator": "0eb07a81ed9f348c",
        "verify/kata-deploy": "e7d8070a56766949",
        "verify/gpu-operator": "a64a0ff73a5bbfdb",
        "verify/host/gpu-node-1": "0b2b73b043f54519",
        "verify/host/gpu-node-2": "a94d91293809acdc",
        "sample/cuda-vectoradd": "cb54a13d3950713a",
    }),
    "undiscovered": ("3cdaa54be67974be", {
        "discover/cluster": "62e86ce089dd2be1",
        "check/cluster": "2de72b0722e47927",
        "check/gpu-node-1": "b2fb9823816841a3",
        "check/gpu-node-2": "ab5fbbd206fb3195",
        "label/gpu-node-1": "02d6fa3cfbf5a8ff",
        "label/gpu-node-2": "3a873990e9a26b33",
        "label/gpu-node-3": "f22de6452ff504db",
        "install/kata-deploy": "6f57e238d29eff32",
        "install/gpu-operator": "83c8cc897c4257b0",
        "verify/kata-deploy": "e7d8070a56766949",
        "verify/gpu-operator": "a64a0ff73a5bbfdb",
        "verify/host/gpu-node-1": "c4db258d1b7740c9",
        "verify/host/gpu-node-2": "8f2731f2d136ff8c",
        "sample/cuda-vectoradd": "cb54a13d3950713a",
    }),
    "unprobed": ("d2285cda2bc28748", {
        "probe/hosts": "087e1e7a1d4c1f4a",
        "check/cluster": "2de72b0722e47927",
        "check/gpu-node-1": "12af76a12c1cc222",
        "check/gpu-node-2": "944a73475e44bee2",
        "record/labels": "0dbfd490c0c7095c",
        "label/gpu-node-1": "02d6fa3cfbf5a8ff",
        "label/gpu-node-2": "3a873990e9a26b33",
        "label/gpu-node-3": "9d9e66623d7c9d40",
        "install/kata-deploy": "5f30f02b9ee7d435",
        "install/gpu-operator": "0eb07a81ed9f348c",
        "verify/kata-deploy": "e7d8070a56766949",
        "verify/gpu-operator": "a64a0ff73a5bbfdb",
        "verify/host/gpu-node-1": "0b2b73b043f54519",
        "verify/host/gpu-node-2": "a94d91293809acdc",
        "sample/cuda-vectoradd": "cb54a13d3950713a",
    }),
    "stuck-tainted-private": ("e27239be9c06785d", {
        "scan/gpu-pods": "780efdbcff1e8a24",
        "probe/hosts": "087e1e7a1d4c1f4a",
        "check/cluster": "2de72b0722e47927",
        "check/gpu-node-1": "12af76a12c1cc222",
        "check/gpu-node-2": "944a73475e44bee2",
        "record/labels": "0dbfd490c0c7095c",
        "label/gpu-node-1": "02d6fa3cfbf5a8ff",
        "label/gpu-node-2": "3a873990e9a26b33",
        "label/gpu-node-3": "9d9e66623d7c9d40",
        "install/kata-deploy": "60d2f1a4bc91c394",
        "install/gpu-operator": "1a68d9c0e6bb93a3",
        "verify/kata-deploy": "e7d8070a56766949",
        "verify/gpu-operator": "a64a0ff73a5bbfdb",
        "verify/host/gpu-node-1": "0b2b73b043f54519",
        "verify/host/gpu-node-2": "a94d91293809acdc",
        "sample/cuda-vectoradd": "eb34f760c268da72",
    }),
    # The uninstalls gained a step (the GPUs GPU Operator v26.3.1 leaves on vfio-pci on
    # gpu-node-1, listed as left in place); every earlier step's fingerprint is unchanged.
    "uninstall": ("5119c67d2046101d", {
        "uninstall/sample": "2895df3ff784ed03",
        "uninstall/gpu-operator": "7f0062195d31b9bd",
        "uninstall/crds": "1ef04670169596a8",
        "uninstall/labels/gpu-node-3": "37737fc167c8ff3c",
        "uninstall/kata-deploy": "06af9a12cc0f3304",
        "revert/gpu-node-1": "955b6aa904dc29e9",
        "uninstall/state": "8d3120a7d52d1dea",
        "verify/uninstalled": "71f4b21f83fdcd5d",
    }),
    "uninstall-unrecorded": ("6b7227725158cf41", {
        "uninstall/sample": "2895df3ff784ed03",
        "uninstall/gpu-operator": "7f0062195d31b9bd",
        "uninstall/labels/gpu-node-3": "37737fc167c8ff3c",
        "uninstall/kata-deploy": "0b8caff7f304aded",
        "revert/gpu-node-1": "955b6aa904dc29e9",
        "verify/uninstalled": "ac84d6a00b33826d",
    }),
    "uninstall-undiscovered": ("a30bcedf03d6506b", {
        "discover/cluster": "62e86ce089dd2be1",
    }),
}


def test_the_plan_json_and_every_step_fingerprint_are_what_they_were() -> None:
    plans = _plans()
    assert set(plans) == set(PINS)
    for name, plan in plans.items():
        digest, steps = PINS[name]
        assert {s.id: s.fingerprint for s in plan.steps} == steps, name
        assert _digest(plan) == digest, name


def test_a_changed_param_changes_the_fingerprint() -> None:
    """The pins would hold for a fingerprint that ignored params: it must not."""
    step = next(s for s in _plans()["recorded"].steps if s.id == "install/kata-deploy")
    assert replace(step, params=replace(step.params, version="3.30.0")).fingerprint \
        != step.fingerprint
