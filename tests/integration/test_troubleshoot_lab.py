"""Troubleshooting on the lab: each failure is reproduced for real, and `troubleshoot`
names its cause with evidence; the support bundle holds that evidence and no secret."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from installer.diagnosis.rules import troubleshoot_findings
from tests.integration.cli_run import installer
from tests.integration.secrets import (
    SA_NAMESPACE,
    Planted,
    delete_account,
    plant_in_cluster,
    token_kubeconfig,
)
from tests.integration.test_lab_guide_flow import install_guide_charts
from tests.lab import guide
from tests.lab.answers import lab_answers

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


UNPREPARED = "gpu-node-3"  # host NVIDIA driver loaded, IOMMU off


def set_unprepared_aside(lab) -> None:
    """The unprepared host goes to containers, where its driver is right: the failure a test
    plants is then the cluster's only one, and must be the top finding."""
    lab.kubectl("label", "node", UNPREPARED, "nvidia.com/gpu.workload.config=container")


def troubleshoot(lab, tmp_path: Path, *extra: str, planted: Planted | None = None):
    answers = tmp_path / "answers.yaml"
    data = planted.answers(lab.info) if planted else lab_answers(lab.info)
    labels = lab.kube.get(f"/api/v1/nodes/{UNPREPARED}")["metadata"]["labels"]
    if labels.get("nvidia.com/gpu.workload.config") == "container":
        for item in data["nodes"]["items"]:
            if item["name"] == UNPREPARED:
                item["choice"] = "traditional"
    answers.write_text(yaml.safe_dump(data))
    env = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state"),
           **(planted.env if planted else {})}
    return subprocess.run([sys.executable, "-m", "installer", *extra, "--answers",
                           str(answers)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def findings(lab, tmp_path: Path, planted: Planted | None = None) -> list[dict]:
    out = troubleshoot(lab, tmp_path, "troubleshoot", "--json", planted=planted)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    return json.loads(out.stdout)


def find(lab, tmp_path: Path, rule: str, timeout: float = 60,
         planted: Planted | None = None, shown: str = "") -> tuple[dict, list[dict]]:
    """Wait until the simulator has shown the symptom and the rule fires - with `shown` in
    its evidence, when the simulator writes the symptom's parts (a node label, a pod's log)
    in separate requests that a reading may fall between."""
    def hit():
        found = findings(lab, tmp_path, planted)
        return next(((f, found) for f in found if f["rule"] == rule
                     and (not shown or any(shown in e for e in f["evidence"]))), None)
    return lab.wait_for(f"finding {rule}", hit, timeout=timeout, interval=2)


async def screen_view(lab):
    """What the troubleshoot screen reads (installer.diagnosis.clusterinfo.cluster_view): its tables
    and the state the findings are drawn from, from one listing of the namespaces."""
    from installer.cluster import kube
    from installer.diagnosis.clusterinfo import cluster_view

    return await cluster_view(kube.connect(str(lab.kubeconfig), None))


async def screen_findings(answers_path: Path) -> list[dict]:
    """What the troubleshoot screen's findings are drawn from, as the wizard reads them: its
    start-up discovery, a check run (screens.services.run_checks: a probe through the
    engine), then the view with those checks and hosts, through rules.troubleshoot_findings."""
    from installer.answers.model import load_answers
    from installer.cluster import kube
    from installer.diagnosis.clusterinfo import basic_findings, cluster_view
    from installer.diagnosis.clusterinfo import screen_findings as rows
    from installer.diagnosis.rules import troubleshoot_findings
    from screens.services import default_executors, discover_facts, run_checks

    answers = load_answers(answers_path)
    checked = await run_checks(answers, await discover_facts(answers.cluster),
                               default_executors())
    assert checked.facts is not None and checked.facts.hosts, checked.error
    view = await cluster_view(kube.connect(answers.cluster.kubeconfig, None),
                              (answers.kata_deploy.namespace, answers.gpu_operator.namespace),
                              checked.results, hosts=checked.facts.hosts)
    found = troubleshoot_findings(view.state)
    assert basic_findings(view) == list(rows(found))  # what the Findings table lists
    return [f.to_json() for f in found]


def test_headless_and_the_screen_find_the_same_on_one_cluster(lab_bare, tmp_path, monkeypatch):
    """gpu-node-3 unprepared (host driver, IOMMU off) and its checks failing or warning:
    headless `troubleshoot --json` and the screen's computation list the same findings in
    the same order, the host checks' verdicts included. The simulator may still be moving
    between the two reads: they must agree once, read back to back."""
    install_guide_charts(lab_bare)
    find(lab_bare, tmp_path, "host-driver-loaded", shown="pre-installed")
    for key, value in {**lab_bare.env, "XDG_STATE_HOME": str(tmp_path / "state")}.items():
        monkeypatch.setenv(key, value)  # as the headless run's (helm, the lab's tools)
    seen: list = []

    def agree():
        headless = findings(lab_bare, tmp_path)
        screen = asyncio.run(screen_findings(tmp_path / "answers.yaml"))
        seen[:] = [headless, screen]
        return headless == screen and headless

    found = lab_bare.wait_for("the same findings", agree, timeout=120, interval=1)
    rules = [f["rule"] for f in found]
    assert rules[0] == "host-driver-loaded" and "iommu-off" in rules, rules
    # the failing check is quoted by the rule it explains, and not listed again on its own
    iommu = next(f for f in found if f["rule"] == "iommu-off")
    assert any(e.startswith("host gpu-node-3 check iommu-enabled:") for e in iommu["evidence"])
    checks = [f for f in found if f["rule"] == "host-check"]
    assert not any("iommu-enabled" in f["symptom"] for f in checks), checks
    assert rules[len(rules) - len(checks):] == ["host-check"] * len(checks)  # after the rules


async def test_mode_left_at_kubevirt(lab_bare, tmp_path):
    ops = [v for v in guide.GPU_OPERATOR_SET if not v.startswith("sandboxWorkloads.mode")]
    install_guide_charts(lab_bare, operator_set=[*ops, "sandboxWorkloads.mode=kubevirt"])
    finding, found = find(lab_bare, tmp_path, "sandbox-mode-not-kata")
    assert found[0] == finding
    assert any("'mode': 'kubevirt'" in e for e in finding["evidence"])
    # the screen: same top finding (it has no host checks, so it may find less, never other)
    view = await screen_view(lab_bare)
    screen = troubleshoot_findings(view.state)
    assert screen[0].rule == finding["rule"], screen
    # The cluster is still converging (gpu-node-3's vfio-manager starts crash-looping in its
    # init container meanwhile): the headless run read after the screen sees what it saw.
    later = findings(lab_bare, tmp_path, None)
    assert {f.rule for f in screen} <= {f["rule"] for f in (*found, *later)}
    assert {"kata-system", "gpu-operator"} <= {p.namespace for p in view.pods}
    assert not view.errors, view.errors


def test_workload_label_typo(lab_bare, tmp_path):
    lab_bare.kubectl("label", "node", "gpu-node-1", "nvidia.com/gpu.workload.config=kata")
    install_guide_charts(lab_bare)
    finding, found = find(lab_bare, tmp_path, "workload-label-invalid")
    assert found[0] == finding
    assert "node gpu-node-1 label nvidia.com/gpu.workload.config=kata" in finding["evidence"]


def test_host_driver_loaded_and_iommu_off(lab_bare, tmp_path):
    install_guide_charts(lab_bare)  # gpu-node-3 becomes vm-passthrough by the default workload
    finding, found = find(lab_bare, tmp_path, "host-driver-loaded", shown="pre-installed")
    assert found[0] == finding and "gpu-node-3" in finding["cause"]
    assert any("pre-installed" in e for e in finding["evidence"])
    iommu = next(f for f in found if f["rule"] == "iommu-off")
    assert any("gpu-node-3" in e and "cmdline" in e for e in iommu["evidence"])


def test_runtime_class_missing(lab_bare, tmp_path):
    set_unprepared_aside(lab_bare)
    kata = [v for v in guide.KATA_DEPLOY_SET if "qemu-nvidia-gpu" not in v]
    install_guide_charts(lab_bare, kata_set=[*kata, "shims.qemu.enabled=true",
                                             "defaultShim.amd64=qemu"])
    finding, found = find(lab_bare, tmp_path, "runtime-class-missing")
    assert found[0] == finding
    assert "without the qemu-nvidia-gpu shim" in finding["cause"]
    assert any(e.startswith("RuntimeClasses present:") for e in finding["evidence"])


def test_cc_manager_missing_blocks_scheduling(lab_bare, tmp_path):
    set_unprepared_aside(lab_bare)
    install_guide_charts(lab_bare, operator_set=[*guide.GPU_OPERATOR_SET,
                                                 "ccManager.enabled=false"])
    lab_bare.apply(guide.sample_pod(node="gpu-node-1"))
    _finding, found = find(lab_bare, tmp_path, "cc-ready-state-blocks-scheduling")
    blocked = [f for f in found if f["rule"] == "cc-ready-state-blocks-scheduling"
               and "gpu-node-1" in f["cause"]]
    assert blocked and any("Pending" in e for e in blocked[0]["evidence"])
    assert found[0]["rule"] == "cc-ready-state-blocks-scheduling"


def test_two_nfds(lab_bare, tmp_path):
    set_unprepared_aside(lab_bare)
    kata = [v for v in guide.KATA_DEPLOY_SET if not v.startswith("node-feature-discovery")]
    install_guide_charts(lab_bare, kata_set=[*kata, "node-feature-discovery.enabled=true"])
    finding, found = find(lab_bare, tmp_path, "nfd-twice")
    assert found[0] == finding
    assert len(finding["evidence"]) >= 2


def test_no_pgpu_for_a_pod_pinned_to_the_unprepared_node(lab_bare, tmp_path):
    install_guide_charts(lab_bare)
    lab_bare.apply(guide.sample_pod(node="gpu-node-3"))
    finding, found = find(lab_bare, tmp_path, "insufficient-pgpu")
    assert any("Insufficient nvidia.com/pgpu" in e for e in finding["evidence"])
    # ... and the reason there is no pgpu on that node comes first
    assert found[0]["rule"] == "host-driver-loaded" and UNPREPARED in found[0]["cause"]


def test_bundle_holds_the_evidence_and_none_of_the_planted_secrets(planted, lab_bare, tmp_path):
    """All three secrets planted: the bundle reaches the cluster with the token and the hosts
    with the encrypted key and the sudo password, and holds none of them - nor any secret
    planted where it collects: the operator's release values (a password key, a password in
    a URL), a chart's Secret and ConfigMap (a private key), its helm release record, a Secret
    made by hand, a pod's log printing a private key, a Normal event quoting the sudo
    password. `--output` names a directory: the bundle goes inside it."""
    ops = [v for v in guide.GPU_OPERATOR_SET if not v.startswith("sandboxWorkloads.mode")]
    url_pw = "gki-op-urlpw-" + os.urandom(6).hex()
    op_pw = "gki-op-pw-" + os.urandom(6).hex()
    install_guide_charts(lab_bare, operator_set=[
        *ops, "sandboxWorkloads.mode=kubevirt", f"someKey.password={op_pw}",
        f"driver.repository=https://gkiuser:{url_pw}@mirror.example/nvidia"])
    plants = plant_in_cluster(lab_bare, tmp_path)
    lab_bare.apply({  # a Normal event: the bundle now holds every event, not only Warnings
        "apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": "GkiPlanted",
        "metadata": {"name": "gki-planted-event", "namespace": "gpu-operator"},
        "involvedObject": {"kind": "Pod", "name": "gki-x", "namespace": "gpu-operator"},
        "message": f"retried with {planted.sudo_password}; password={op_pw}",
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"})
    find(lab_bare, tmp_path, "sandbox-mode-not-kata", planted=planted)
    out_dir = tmp_path / "bundles"
    out_dir.mkdir()
    out = troubleshoot(lab_bare, tmp_path, "bundle", "--output", str(out_dir), planted=planted)
    assert out.returncode == 0, out.stderr[-2000:]
    (out_path,) = out_dir.iterdir()
    assert out_path.name.startswith("gpu-kata-bundle-") and out_path.name.endswith(".tar.gz")
    with tarfile.open(out_path) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                 for m in tar if m.isfile()}
    assert "kubevirt" in files["cluster/clusterpolicy.json"]
    assert "https://gkiuser:***REDACTED***@mirror.example/nvidia" \
        in files["cluster/clusterpolicy.json"]
    assert "sandboxWorkloads.mode is 'kubevirt'" in files["SUMMARY.md"]
    assert any(name.startswith("logs/gpu-operator/") for name in files)
    # a failing pod is described as kubectl describes it: containers' states, then its events
    described = [text for name, text in files.items() if name.startswith("describe/")]
    assert all(name.count("/") == 2 for name in files if name.startswith("describe/"))
    assert described and all("Containers:" in d and "Events:" in d for d in described)
    host = json.loads(files["hosts/gpu-node-3.json"])
    assert host["checks"] and "iommu" in json.dumps(host)  # probed as root through sudo
    # the evidence around each planted secret is still there
    listed = {s["name"]: s for s in json.loads(files["cluster/gpu-operator/secrets.json"])}
    assert listed["gki-direct"] == {"name": "gki-direct", "type": "Opaque", "keys": ["api-key"]}
    assert listed["gki-planted-credentials"]["keys"] == ["password", "settings.conf", "token"]
    record = listed["sh.helm.release.v1.gki-planted.v1"]
    assert record == {"name": record["name"], "type": "helm.sh/release.v1", "keys": ["release"]}
    assert "retries = 3" in files["cluster/gpu-operator/configmaps.json"]
    manifest = files["releases/gpu-operator-gki-planted.manifest.yaml"]
    assert "# Source: gki-planted/templates/secret.yaml" in manifest
    assert "name: gki-planted-credentials" in manifest
    assert "server: nvcr.io" in files["releases/gpu-operator-gki-planted.values.yaml"]
    assert "loaded key" in files[f"logs/gpu-operator/{plants.log_pod}/app.log"]
    assert "GkiPlanted" in files["cluster/events.txt"] and "retried with" in files[
        "cluster/events.json"]
    for name, text in files.items():
        assert planted.leaks(text) == [], name
        assert plants.leaks(text) == [], name
        assert op_pw not in text and url_pw not in text, name
    assert planted.leaks(out.stdout + out.stderr) == []
    assert plants.leaks(out.stdout + out.stderr) == []


RUN_LOG = [  # a run's log as installer.engine.sinks.LogFileSink writes it
    {"kind": "plan", "path": "plan", "at": 100.0, "plan": {"steps": [
        {"id": "check/gpu-node-1"}, {"id": "check/gpu-node-3"}, {"id": "label/gpu-node-1"}]}},
    {"kind": "step-started", "path": "check/gpu-node-1", "at": 101.0},
    {"kind": "step-finished", "path": "check/gpu-node-1", "at": 104.0, "status": "ok"},
    {"kind": "step-started", "path": "check/gpu-node-3", "at": 104.0},
    {"kind": "step-finished", "path": "check/gpu-node-3", "at": 109.0, "status": "failed"}]


def restarted(lab, namespace: str) -> list[tuple[str, str]]:
    """(pod, container) of the containers, init containers included, that have restarted."""
    pods, _ = lab.kube.list(f"/api/v1/namespaces/{namespace}/pods")
    statuses = [(p["metadata"]["name"], s) for p in pods for key in
                ("initContainerStatuses", "containerStatuses")
                for s in (p.get("status") or {}).get(key) or []]
    return [(pod, s["name"]) for pod, s in statuses if s.get("restartCount", 0) > 0]


def test_bundle_is_must_gather_grade(lab_bare, tmp_path):
    """kata-deploy 4.1.0 (its RuntimeClasses carry the kata version) and the operator, with
    gpu-node-3 unprepared so an operand crash-loops in an init container, and a Kata GPU pod
    pinned there in another namespace: the bundle holds every event (Normal ones too, the
    nodes', the GPU pod's namespace's), each container's log and the restarted one's
    previous log, the GPU nodes described, the versions of everything, the summary
    in order (findings, versions, the last run's per-node grid) and an index of it all."""
    chart = lab_bare.info.chart_versions["kata-deploy"]["4.1.0"]
    lab_bare.helm("install", "kata-deploy", chart, "-n", "kata-system", "--create-namespace",
                  "--wait", "--timeout", "2m", *guide.set_args(guide.KATA_DEPLOY_SET))
    lab_bare.helm("install", "gpu-operator", str(lab_bare.charts["gpu-operator"]), "-n",
                  "gpu-operator", "--create-namespace", *guide.set_args(guide.GPU_OPERATOR_SET))
    crashed = lab_bare.wait_for("an operand container restarted",
                                lambda: restarted(lab_bare, "gpu-operator"), timeout=180)
    lab_bare.apply(guide.sample_pod(node=UNPREPARED))  # a Kata GPU pod the scheduler refuses
    # a node event as the kubelet writes one (the lab's own come only when its nodes register)
    lab_bare.apply({"apiVersion": "v1", "kind": "Event", "metadata": {
        "name": f"{UNPREPARED}.gki-rebooted", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": UNPREPARED, "apiVersion": "v1"},
        "reason": "Rebooted", "type": "Warning", "count": 1, "source": {"component": "kubelet"},
        "message": f"Node {UNPREPARED} has been rebooted"})
    lab_bare.wait_for("the sample pod's FailedScheduling event", lambda: any(
        e.get("reason") == "FailedScheduling"
        for e in lab_bare.kube.list("/api/v1/namespaces/default/events")[0]), timeout=60)
    logs = tmp_path / "state" / "gpu-kata-installer" / "logs"
    logs.mkdir(parents=True)
    (logs / "run-20260101-000000.log").write_text("".join(
        f"2026-01-01 00:00:00,000 DEBUG {json.dumps(e)}\n" for e in RUN_LOG))
    out_path = tmp_path / "bundle.tar.gz"
    out = troubleshoot(lab_bare, tmp_path, "bundle", "--output", str(out_path))
    assert out.returncode == 0, out.stderr[-2000:]
    with tarfile.open(out_path) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar if m.isfile()}
        files = {n: tar.extractfile(m).read().decode() for n, m in members.items()}
    # every event of the namespaces and the nodes, Normal ones too, sorted by last seen
    events = json.loads(files["cluster/events.json"])
    assert {"Normal", "Warning"} <= {e["type"] for e in events}
    assert {"kata-system", "gpu-operator"} <= {e["namespace"] for e in events}
    assert any(e["namespace"] == "default" and e["reason"] == "FailedScheduling"
               and e["object"] == f"Pod/{guide.SAMPLE_POD_NAME}" for e in events)  # its namespace
    assert any(e["object"].startswith("Node/") for e in events)
    assert [e["lastSeen"] for e in events] == sorted(e["lastSeen"] for e in events)
    assert all({"count", "firstSeen", "lastSeen", "reason", "object"} <= set(e) for e in events)
    assert files["cluster/events.txt"].startswith("LAST SEEN\tFIRST SEEN\tCOUNT\tTYPE")
    # each container's log, init containers too, and the restarted one's previous log
    pod, container = crashed[0]
    assert f"logs/gpu-operator/{pod}/{container}.log" in files
    assert f"logs/gpu-operator/{pod}/{container}.previous.log" in files, sorted(files)
    assert any(n.startswith("logs/kata-system/") for n in files)
    # the GPU nodes described (labels, taints, system info), the CPU node not
    described = {n for n in files if n.startswith("describe-nodes/")}
    assert described == {f"describe-nodes/gpu-node-{i}.txt" for i in (1, 2, 3)}
    assert "Taints:" in files["describe-nodes/gpu-node-3.txt"]
    assert "Kernel Version:" in files["describe-nodes/gpu-node-3.txt"]
    # the versions of everything
    v = json.loads(files["versions.json"])
    assert v["kubernetes"]["gitVersion"].startswith("v1.")
    assert v["helm"].startswith("v4.") and v["installer"]
    assert set(v["nodes"]) == {"gpu-node-1", "gpu-node-2", "gpu-node-3", "cpu-node-1"}
    assert all(n["kernel"] and n["kubelet"] and n["osImage"] for n in v["nodes"].values())
    kata = next(r for r in v["releases"] if r["name"] == "kata-deploy")
    assert (kata["chart"], kata["version"], kata["appVersion"]) == \
        ("kata-deploy", "4.1.0", "4.1.0")
    assert v["kataVersion"] and set(v["kataVersion"].values()) == {"4.1.0"}
    assert any(f"gpu-operator/{pod}:" in w for ws in v["images"].values() for w in ws)
    # the summary: findings, then versions, then the last run's grid
    md = files["SUMMARY.md"]
    assert md.index("## 1. ") < md.index("## Versions") < md.index("## Last run, per node")
    assert "| release kata-system/kata-deploy | kata-deploy 4.1.0 (app 4.1.0) |" in md
    assert "| gpu-node-3 | failed 5s |" in md and "run-20260101-000000.log" in md
    assert "<td class='failed'" in files["summary.html"]
    # the index: every other file with its size as written
    listed = {line.split()[1]: int(line.split()[0])
              for line in files["MANIFEST.txt"].split("\n\n")[0].splitlines()[1:]}
    assert listed == {n: m.size for n, m in members.items() if n != "MANIFEST.txt"}
    # the wizard's `d`, `y` and `l p` on the same pod, through the real API server
    from installer.answers.model import Cluster
    from screens.services import KubeInspector

    cluster = lab_answers(lab_bare.info)["cluster"]
    inspector = KubeInspector(Cluster(kubeconfig=cluster["kubeconfig"],
                                      context=cluster.get("context")))
    described = asyncio.run(inspector.describe("pod", "gpu-operator", pod))
    assert "Init Containers:" in described and f"  {container}:" in described
    assert "Last State:" in described and "Events:" in described
    assert yaml.safe_load(asyncio.run(inspector.yaml("pod", "gpu-operator", pod)))[
        "metadata"]["name"] == pod
    previous = asyncio.run(inspector.logs("gpu-operator", pod, container, previous=True))
    assert previous == files[f"logs/gpu-operator/{pod}/{container}.previous.log"].splitlines()[
        -len(previous):] and previous
    node = asyncio.run(inspector.describe("node", "", UNPREPARED))
    assert node.startswith("Name:") and UNPREPARED in node.splitlines()[0]


READER = "gki-no-operator-pods"  # the ServiceAccount, its ClusterRole and its RoleBinding


def reader_rbac(lab) -> None:
    """What troubleshoot reads, except pods and events: cluster-wide nodes, secrets (helm),
    configmaps and the charts' API groups; pods and events only in kata-system. So the
    operator's namespace, and the cluster-wide pod list, are refused with HTTP 403."""
    lab.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": READER}, "rules": [
                   {"apiGroups": [""], "resources": ["nodes", "namespaces", "secrets",
                                                     "configmaps"],
                    "verbs": ["get", "list"]},
                   {"apiGroups": ["apps", "node.k8s.io", "nvidia.com"], "resources": ["*"],
                    "verbs": ["get", "list"]}]})
    lab.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": f"{READER}-pods"}, "rules": [
                   {"apiGroups": [""], "resources": ["pods", "pods/log", "events"],
                    "verbs": ["get", "list"]}]})
    lab.kubectl("create", "rolebinding", READER, "-n", "kata-system", "--clusterrole",
                f"{READER}-pods", "--serviceaccount", f"{SA_NAMESPACE}:{READER}")


def test_a_namespace_the_context_may_not_read_is_reported_not_skipped(lab_bare, tmp_path):
    install_guide_charts(lab_bare)
    reader_rbac(lab_bare)
    try:
        token = token_kubeconfig(lab_bare, tmp_path / "kubeconfig", READER, READER)
        as_json = installer(lab_bare, tmp_path, "troubleshoot", "--json", "--kubeconfig",
                            str(tmp_path / "kubeconfig"))
        text = installer(lab_bare, tmp_path, "troubleshoot", "--kubeconfig",
                         str(tmp_path / "kubeconfig"))
    finally:
        delete_account(lab_bare, READER)
        lab_bare.kubectl("delete", "clusterrole", READER, f"{READER}-pods", "--ignore-not-found")
        lab_bare.kubectl("delete", "rolebinding", READER, "-n", "kata-system",
                         "--ignore-not-found")
    assert as_json.returncode == 1, as_json.stderr[-2000:]  # findings: the view is partial
    found = json.loads(as_json.stdout)
    unread = [f for f in found if f["rule"] == "namespace-unread"]
    assert found[:len(unread)] == unread  # before every finding drawn from the partial view
    assert [f["symptom"] for f in unread] == [
        "namespace gpu-operator: cannot list pods (HTTP 403 Forbidden)",
        "all namespaces: cannot list pods (HTTP 403 Forbidden)"]
    assert "kubectl auth can-i list pods -n gpu-operator" in unread[0]["fix"]
    assert unread[0]["evidence"][0] == "HTTP 403 Forbidden"
    assert 'cannot list resource "pods"' in unread[0]["evidence"][1]  # the server's words
    assert text.returncode == 1, text.stderr[-2000:]
    assert "1. the context's user may not list pods (namespace gpu-operator)" in text.stdout
    assert "symptom: namespace gpu-operator: cannot list pods (HTTP 403 Forbidden)" in text.stdout
    assert "fix: use a context allowed to list pods in namespace gpu-operator" in text.stdout
    assert "No problem found" not in text.stdout
    for out in (as_json, text):
        assert token not in out.stdout + out.stderr
        assert "Traceback" not in out.stderr
