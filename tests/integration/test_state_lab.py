"""The installer's own state, corrupted, against the lab's API server and the real CLI: a
record ConfigMap it cannot read stops install and uninstall before any change (exit 1,
naming the ConfigMap and the fix) and leaves troubleshoot working; a corrupt journal is set
aside with a warning and the run goes on planning from the cluster."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from installer.cluster.facts import STATE_CONFIGMAP
from tests.integration.cli_run import installer
from tests.lab.answers import lab_answers

pytestmark = pytest.mark.lab
NS, NAME = STATE_CONFIGMAP

UNREADABLE = {
    "not JSON": ({"labels.json": '{"gpu-node-1": {"nvidia.com/gpu.workload.config": '},
                 "labels.json is not JSON"),
    "not a mapping of labels": ({"labels.json": '["gpu-node-1", 3]'},
                                "labels.json is not a mapping of node name -> {label: value}"),
    "a label value not a string": ({"labels.json": '{"gpu-node-1": {"a/b": 1}}'},
                                   "labels.json is not a mapping"),
    "no labels.json": ({"labels": "gpu-node-1"}, "the ConfigMap has no labels.json"),
}


def answers_file(lab, tmp_path: Path) -> Path:
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(lab_answers(lab.info)))
    return path


def test_an_unreadable_record_stops_install_and_uninstall_but_not_troubleshoot(lab_bare,
                                                                                tmp_path):
    lab = lab_bare
    answers = answers_file(lab, tmp_path)
    try:
        for case, (data, said) in UNREADABLE.items():
            lab.apply({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": NAME, "namespace": NS}, "data": data})
            for args in (("--answers", str(answers), "--dry-run"),
                         ("uninstall", "--answers", str(answers), "--dry-run")):
                out = installer(lab, tmp_path, *args, timeout=300)
                assert out.returncode == 1, (case, args, out.stdout[-2000:], out.stderr)
                assert "Traceback" not in out.stderr
                assert (f"error: the installer's record of the nodes' labels, ConfigMap "
                        f"{NS}/{NAME}, cannot be read") in out.stderr, (case, out.stderr)
                assert f"{NS}/{NAME} data.labels.json: {said}" in out.stderr, (case, out.stderr)
                assert f"kubectl -n {NS} delete configmap {NAME}" in out.stderr
            after = lab.kube.get(f"/api/v1/namespaces/{NS}/configmaps/{NAME}")
            assert after["data"] == data, case  # nothing overwrote it
        shoot = installer(lab, tmp_path, "troubleshoot", "--json", "--answers", str(answers),
                          timeout=300)
        assert shoot.returncode in (0, 1), shoot.stderr[-2000:]
        assert isinstance(json.loads(shoot.stdout), list)
    finally:
        lab.kubectl("delete", "configmap", NAME, "-n", NS, "--ignore-not-found")


def test_a_corrupt_journal_is_set_aside_and_the_run_plans_from_the_cluster(lab_bare, tmp_path):
    """A real run (uninstall of the bare lab: it deletes nothing that is not there) starts
    from a journal of garbage: it warns, sets the journal aside, and finishes."""
    lab = lab_bare
    answers = answers_file(lab, tmp_path)
    key = f"{lab.info.kubeconfig}|None"  # headless.journal_for: kubeconfig|context
    journal = (tmp_path / "state" / "gpu-kata-installer" / "journal"
               / f"{hashlib.sha256(key.encode()).hexdigest()[:12]}.jsonl")
    journal.parent.mkdir(parents=True)
    garbage = b'{"event": "step-done", "step": 7}\n\xff\xfe not a journal\n'
    journal.write_bytes(garbage)
    out = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--yes", "--json",
                    timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    events = [json.loads(line) for line in out.stdout.splitlines()]
    warning = next(e for e in events if e["kind"] == "warning" and e["path"] == "journal")
    assert f"the journal {journal} was corrupt" in warning["message"]
    (aside,) = journal.parent.glob(f"{journal.name}.corrupt-*")
    assert aside.read_bytes() == garbage
    assert json.loads(journal.read_text().splitlines()[-1])["event"] == "run-complete"
    again = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--yes", "--json",
                      timeout=300)
    assert again.returncode == 0 and "was corrupt" not in again.stdout


def test_uninstall_removes_the_verification_pods_an_interrupted_upgrade_left(lab_bare, tmp_path):
    """An upgrade killed mid-verification leaves its pinned pod (cuda-vectoradd-kata-<node>):
    the uninstall deletes it with the sample, gracefully, and no pod that is not its own."""
    lab = lab_bare
    labels = {"app.kubernetes.io/managed-by": "gpu-kata-installer"}

    def pod(name: str, **meta) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", **meta},
                "spec": {"nodeName": "cpu-node-1",
                         "containers": [{"name": "c", "image": "busybox"}]}}

    lab.apply(pod("cuda-vectoradd-kata-gpu-node-1", labels=labels))
    lab.apply(pod("someone-elses", labels=labels))
    out = installer(lab, tmp_path, "uninstall", "--answers", str(answers_file(lab, tmp_path)),
                    "--yes", timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "deleted default/cuda-vectoradd-kata-gpu-node-1" in out.stdout
    left = lab.kubectl("get", "pods", "-n", "default", "-o", "name").stdout
    assert "cuda-vectoradd-kata-gpu-node-1" not in left and "someone-elses" in left
    lab.kubectl("delete", "pod", "someone-elses", "-n", "default", "--wait=false")
