"""Pod mode (hostAccess: pod) on the lab's real API server: the installer reaches each host
through a privileged pod and pods/exec (the lab maps the exec into the node's simulated
host, tests/lab/hostexec.py), never over SSH - and gets what SSH gets.

- every lab host: the probe through its pod gives the SSH probe's facts and verdicts;
- a whole install (host fixes, the reboot, host verification) and an uninstall that reverts
  the hosts byte for byte, with no pod and no namespace left;
- a leftover of an interrupted run is removed (shown) before the next run's first pod;
- a user without a permission is told which verb on which resource, and nothing is made.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
import yaml

from installer.answers.model import load_answers
from installer.cluster import kube
from installer.cluster.facts import Facts, ProbeFailure
from installer.engine.events import ChangeEvent, Event
from installer.engine.runner import Context, Engine
from installer.engine.runtime import run_services
from installer.engine.steps import default_executors
from installer.errors import UserError
from installer.hosts.checks import run_checks
from installer.hosts.hostplan import node_info
from installer.hosts.podaccess import LEFTOVER_SELECTOR, manifest, pod_name
from installer.hosts.podrbac import check_pod_mode
from installer.redact import Redactor
from tests.integration.cli_run import JsonRun, env, installer, write_answers
from tests.integration.conftest import tree_digest

pytestmark = pytest.mark.lab
NS = "gpu-kata-installer"


class Yes:
    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        return True


class Seen:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


@pytest.fixture
def in_lab(lab_bare, tmp_path, monkeypatch):
    """The lab, with this process's environment set as the installer's would be (helm,
    kubeconfig, state directory): the in-process runs below need it."""
    for key, value in env(lab_bare, tmp_path).items():
        monkeypatch.setenv(key, value)
    return lab_bare


def answers_file(lab, tmp_path: Path, mode: str, **changes) -> Path:
    """The lab's answers, every lab host a Kata node (so every one is probed)."""
    path = write_answers(lab, tmp_path, hostAccess={"mode": mode}, **changes)
    data = yaml.safe_load(path.read_text())
    for item in data["nodes"]["items"]:
        item["choice"] = "kata"
    path.write_text(yaml.safe_dump(data))
    return path


def gather(path: Path) -> tuple[Facts, list[Event]]:
    """Discovery and the probe, in this process, as a run does them (consent given)."""
    answers = load_answers(path)
    seen = Seen()
    ctx = Context(dry_run=False, sinks=[seen], decider=Yes(),
                  services=run_services(answers, Redactor()))
    _, facts = asyncio.run(Engine(answers, ctx, default_executors()).gather(Facts(None)))
    return facts, seen.events


def pods_left(lab) -> list[str]:
    out = lab.kubectl("get", "pods", "-A", "-l", LEFTOVER_SELECTOR, "-o", "name").stdout
    return out.split()


def namespaces(lab) -> set[str]:
    return set(lab.kubectl("get", "ns", "-o", "name").stdout.replace("namespace/", "").split())


def test_every_lab_host_gives_the_same_facts_and_verdicts_through_its_pod(in_lab, tmp_path):
    lab = in_lab
    (tmp_path / "ssh").mkdir()
    over_ssh, _ = gather(answers_file(lab, tmp_path / "ssh", "ssh"))
    through_pods, events = gather(answers_file(lab, tmp_path, "pod"))
    names = sorted(over_ssh.hosts)
    assert len(names) == len([n for n in lab.info.nodes if not n.name.startswith("scale-")])
    assert sorted(through_pods.hosts) == names
    for name in names:
        ssh, pod = over_ssh.hosts[name], through_pods.hosts[name]
        assert not isinstance(pod, ProbeFailure), (name, pod)
        assert pod == ssh, name
        info = node_info(through_pods.cluster.node(name))
        assert [(r.name, r.status) for r in run_checks(pod, info)] == \
            [(r.name, r.status) for r in run_checks(ssh, info)], name
    made = [e for e in events if isinstance(e, ChangeEvent) and e.applied]
    created = sorted(e.target for e in made if e.message.startswith("create pod"))
    deleted = sorted(e.target for e in made if e.message.startswith("delete pod"))
    assert created == deleted == sorted(f"{NS}/{pod_name(n)}" for n in names)
    assert any(e.message.startswith(f"create namespace {NS}") for e in made)
    labels = json.loads(lab.kubectl("get", "ns", NS, "-o", "json").stdout)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert pods_left(lab) == []


def test_an_install_and_a_reverting_uninstall_through_pods_leave_the_hosts_as_they_were(
        lab_bare, tmp_path):
    lab = lab_bare
    # SSH on a port nothing listens on: a step that used SSH would fail
    answers = write_answers(lab, tmp_path, hostAccess={"mode": "pod"}, ssh={"port": 1},
                            uninstall={"revertHosts": True})
    roots = {n.name: Path(n.host_root) for n in lab.info.nodes if n.profile.startswith("gpu")}
    before = {name: tree_digest(root / "etc") for name, root in roots.items()}
    run = installer(lab, tmp_path, "--answers", str(answers), "--yes", "--json", timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    applied = [e for e in events if e.get("kind") == "change" and e.get("applied")]
    fixes = {e["path"] for e in applied if e["path"].startswith("fix/gpu-node-3/")}
    assert "fix/gpu-node-3/reboot" in fixes and len(fixes) >= 3, fixes
    verified = [e for e in events if e.get("path") == "verify/host/gpu-node-3"
                and e.get("status") == "ok"]
    assert verified, "the host verification ran through the pod"
    assert before["gpu-node-3"] != tree_digest(roots["gpu-node-3"] / "etc")
    assert pods_left(lab) == []
    fixed = {name: tree_digest(root / "etc") for name, root in roots.items()}
    again = installer(lab, tmp_path, "--answers", str(answers), "--yes", "--json", timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    redone = [json.loads(line) for line in again.stdout.splitlines() if line.startswith("{")]
    assert not [e for e in redone if e.get("kind") == "change" and e.get("applied")
                and e["path"].startswith("fix/")], "a second run fixes nothing"
    assert {name: tree_digest(root / "etc") for name, root in roots.items()} == fixed

    looked = installer(lab, tmp_path, "status", "--answers", str(answers), "--json", "--yes")
    report = json.loads(looked.stdout)
    assert (looked.returncode, report["drift"]) == (0, []), report
    assert set(report["checked"]["hosts"].values()) == {"probed"}
    unasked = installer(lab, tmp_path, "status", "--answers", str(answers), "--json")
    report = json.loads(unasked.stdout)
    assert unasked.returncode == 1 and "could not check" in report["checked"]["hosts"].values()
    assert "status --yes" in json.dumps(report["drift"])
    assert pods_left(lab) == []

    undo = installer(lab, tmp_path, "uninstall", "--answers", str(answers), "--yes",
                     timeout=900)
    assert undo.returncode == 0, undo.stdout[-4000:] + undo.stderr[-2000:]
    after = {name: tree_digest(root / "etc") for name, root in roots.items()}
    assert after == before
    assert pods_left(lab) == [] and NS not in namespaces(lab)


def test_a_pod_an_interrupted_run_left_is_removed_before_the_next_runs_first_pod(in_lab,
                                                                              tmp_path):
    lab = in_lab
    path = answers_file(lab, tmp_path, "pod")
    gather(path)  # the namespace, as a first run makes it
    settings = run_services(load_answers(path), Redactor())["pod_settings"]
    leftover = manifest("cpu-node-1", settings)
    leftover["metadata"]["name"] = "gki-host-interrupted"
    (tmp_path / "left.yaml").write_text(yaml.safe_dump(leftover))
    lab.kubectl("apply", "-f", str(tmp_path / "left.yaml"))
    assert pods_left(lab) == ["pod/gki-host-interrupted"]
    _, events = gather(path)
    removed = [e for e in events if isinstance(e, ChangeEvent) and e.applied
               and e.target == f"{NS}/gki-host-interrupted"]
    assert removed and "left by an interrupted run" in removed[0].message
    assert pods_left(lab) == []


def test_a_user_without_pods_exec_is_told_which_verb_on_which_resource(lab_bare, tmp_path):
    """The check asks the real API server (SelfSubjectAccessReviews, as the impersonated
    user of the context) before any pod; only what is missing is named."""
    lab = lab_bare
    config = yaml.safe_load(Path(lab.info.kubeconfig).read_text())
    for user in config["users"]:
        user["user"]["as"] = "limited-operator"
    limited = tmp_path / "limited.kubeconfig"
    limited.write_text(yaml.safe_dump(config))
    lab.kubectl("create", "namespace", NS)
    lab.kubectl("create", "role", "pods", "-n", NS, "--verb=create,get,list,delete",
                "--resource=pods,pods/log")
    lab.kubectl("create", "rolebinding", "pods", "-n", NS, "--role=pods",
                "--user=limited-operator")
    as_limited = kube.connect(str(limited), None)
    try:
        with pytest.raises(UserError) as refused:
            check_pod_mode(as_limited, NS)
        # what `rbac` prints, applied and bound as it says, is all the user needs
        stated = installer(lab, tmp_path, "rbac")
        assert stated.returncode == 0 and "create pods/exec" in stated.stdout
        (tmp_path / "rbac.yaml").write_text(stated.stdout)
        lab.kubectl("apply", "-f", str(tmp_path / "rbac.yaml"))
        lab.kubectl("create", "rolebinding", "gpu-kata-installer-host-access", "-n", NS,
                    "--role", "gpu-kata-installer-host-access", "--user", "limited-operator")
        lab.kubectl("create", "clusterrolebinding", "gpu-kata-installer-host-access-namespace",
                    "--clusterrole", "gpu-kata-installer-host-access-namespace",
                    "--user", "limited-operator")
        check_pod_mode(as_limited, NS)
    finally:
        lab.kubectl("delete", "clusterrolebinding", "gpu-kata-installer-host-access-namespace",
                    "--ignore-not-found")
        lab.kubectl("delete", "clusterrole", "gpu-kata-installer-host-access-namespace",
                    "--ignore-not-found")
        lab.kubectl("delete", "namespace", NS, "--wait=false")
    said = [p.message for p in refused.value.problems]
    assert "the context's user may not create pods/exec (namespace gpu-kata-installer): " \
        "run the probe and fixes in it" in said
    assert any(f"kubectl auth can-i create pods --subresource exec -n {NS}" in p.fix
               for p in refused.value.problems)
    assert any("may not get namespaces" in m for m in said)
    assert not any(m.startswith("the context's user may not create pods (") for m in said)
    assert refused.value.exit_code == 2


def test_a_run_stopped_while_its_pods_work_leaves_none(in_lab, tmp_path):
    """SIGINT (Ctrl-C) while the probe's pods exist: the run ends 130 and deletes them."""
    lab = in_lab
    path = answers_file(lab, tmp_path, "pod")
    run = JsonRun(lab, tmp_path, "--answers", str(path), "--yes")
    try:
        run.until(lambda e: e.get("kind") == "change" and e.get("applied")
                  and str(e.get("message", "")).startswith("create pod"))
        run.proc.send_signal(signal.SIGINT)
        code, err = run.finish()
    finally:
        if run.proc.poll() is None:
            run.kill_tree()
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    assert pods_left(lab) == []
