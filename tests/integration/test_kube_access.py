"""Reaching the lab's real API server with less than an admin's kubeconfig: a user RBAC
forbids to list RuntimeClasses and Secrets, a server on a closed port, a boolean written as
a string, a KUBECONFIG list with a missing file, and the API server's own 404 and 503
answers. Each gives exit 2 (the operator's input: credentials, rights, the kubeconfig) or 1
(the cluster), a message naming the verb and the resource or the server, and never a
traceback; troubleshooting reports what it could not read as findings instead."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from installer.cluster import kube
from installer.cluster.apierrors import ApiError
from tests.integration.cli_run import installer
from tests.integration.secrets import SA_NAMESPACE, delete_account, token_kubeconfig
from tests.lab.answers import lab_answers

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]

LIMITED = "gki-limited"  # the ServiceAccount and its ClusterRole


@contextlib.contextmanager
def reader(lab, tmp_path: Path, resources: list[str]) -> Iterator[tuple[Path, str]]:
    """A kubeconfig (and its token) whose user may get and list just `resources` (core
    group) cluster-wide."""
    lab.apply({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": LIMITED}, "rules": [
                   {"apiGroups": [""], "resources": resources, "verbs": ["get", "list"]}]})
    try:
        yield tmp_path / "kubeconfig", token_kubeconfig(lab, tmp_path / "kubeconfig",
                                                        LIMITED, LIMITED)
    finally:
        delete_account(lab, LIMITED)
        lab.kubectl("delete", "clusterrole", LIMITED, "--ignore-not-found")


@pytest.fixture
def limited(lab, tmp_path):
    """A user who may read nodes, pods (and their logs) and events cluster-wide, and nothing
    else: no RuntimeClasses, no Secrets (so no helm releases), no ClusterPolicy, DaemonSets
    or ConfigMaps - the RBAC-limited operator the issue names."""
    with reader(lab, tmp_path, ["nodes", "pods", "pods/log", "events"]) as found:
        yield found


def _answers(lab, tmp_path: Path, kubeconfig: Path) -> Path:
    data = lab_answers(lab.info)
    data["cluster"] = {"kubeconfig": str(kubeconfig)}
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _no_traceback(out: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]


def test_a_user_rbac_forbids_runtimeclasses_and_secrets(lab, tmp_path, limited):
    kubeconfig, token = limited
    answers = _answers(lab, tmp_path, kubeconfig)
    # The install: exit 2 before any plan, every read it needs and may not make named once.
    dry = installer(lab, tmp_path, "--answers", str(answers), "--dry-run")
    _no_traceback(dry)
    assert dry.returncode == 2, (dry.stdout[-2000:], dry.stderr[-2000:])
    err = dry.stderr
    assert f"context '{LIMITED}' cannot read what the installer needs" in err
    for refused in ("may not list runtimeclasses.node.k8s.io (cluster-wide)",
                    "may not list secrets (all namespaces): helm keeps its release records",
                    "may not get clusterpolicies.nvidia.com (cluster-wide)",
                    "may not list daemonsets.apps (all namespaces)",
                    "may not get configmaps (namespace kube-system)"):
        assert refused in err, (refused, err)
    assert "kubectl auth can-i list runtimeclasses.node.k8s.io --all-namespaces" in err
    assert "is forbidden: User \"system:serviceaccount:" in err  # the API server's own words
    assert "→ probe" not in dry.stdout  # stopped at discovery: no host was reached

    # troubleshoot (through the engine's gather, hosts probed): what it could not read comes
    # first, as findings, and the rest is still diagnosed.
    shot = installer(lab, tmp_path, "troubleshoot", "--json", "--answers", str(answers))
    _no_traceback(shot)
    assert shot.returncode == 1, shot.stderr[-2000:]
    found = json.loads(shot.stdout)
    unread = {f["symptom"]: f for f in found if f["rule"] in ("cluster-unread",
                                                               "namespace-unread")}
    assert found[:len(unread)] == list(unread.values())
    assert {"the cluster: cannot list runtimeclasses.node.k8s.io (HTTP 403 Forbidden)",
            "all namespaces: cannot list secrets (HTTP 403 Forbidden)",
            "the cluster: cannot get clusterpolicies.nvidia.com (HTTP 403 Forbidden)"} <= set(
        unread), list(unread)
    rc = unread["the cluster: cannot list runtimeclasses.node.k8s.io (HTTP 403 Forbidden)"]
    assert rc["rule"] == "cluster-unread"
    assert "kubectl auth can-i list runtimeclasses.node.k8s.io" in rc["fix"]
    assert rc["evidence"][0] == "HTTP 403 Forbidden" and "forbidden" in rc["evidence"][1]
    # The diagnosis still ran on what was read: the lab's nodes are there to be judged.
    assert any(f["rule"] not in ("cluster-unread", "namespace-unread") for f in found)

    # bundle (the discovery without answers): written, its findings say what is missing.
    archive = tmp_path / "bundle.tgz"
    bundle = installer(lab, tmp_path, "bundle", "--kubeconfig", str(kubeconfig), "--output",
                       str(archive))
    _no_traceback(bundle)
    assert bundle.returncode == 0, bundle.stderr[-2000:]
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/findings.json"))
        in_bundle = json.loads(tar.extractfile(member).read())
        summary = tar.extractfile(next(m for m in tar.getmembers()
                                       if m.name.endswith("/SUMMARY.md"))).read().decode()
    assert {f["symptom"] for f in in_bundle} >= {
        "the cluster: cannot list runtimeclasses.node.k8s.io (HTTP 403 Forbidden)",
        "all namespaces: cannot list secrets (HTTP 403 Forbidden)"}
    assert "may not list secrets" in summary
    for out in (dry, shot, bundle):
        assert token not in out.stdout + out.stderr


def test_troubleshoot_by_a_user_who_may_read_only_nodes_reports_every_read_it_could_not(
        lab, tmp_path):
    """No pods anywhere either: the gather's look for GPU pods on the nodes to relabel, the
    namespaces' pods and events and the cluster's pods are refused too - findings, each
    once, and the hosts are still probed and checked."""
    with reader(lab, tmp_path, ["nodes"]) as (kubeconfig, _):
        answers = _answers(lab, tmp_path, kubeconfig)
        shot = installer(lab, tmp_path, "troubleshoot", "--json", "--answers", str(answers))
    _no_traceback(shot)
    assert shot.returncode == 1, shot.stderr[-2000:]
    found = json.loads(shot.stdout)
    symptoms = [f["symptom"] for f in found if f["rule"].endswith("-unread")]
    assert len(symptoms) == len(set(symptoms)), symptoms
    assert {"all namespaces: cannot list pods (HTTP 403 Forbidden)",
            "namespace kata-system: cannot list pods (HTTP 403 Forbidden)",
            "namespace gpu-operator: cannot list pods (HTTP 403 Forbidden)",
            "the cluster: cannot list runtimeclasses.node.k8s.io (HTTP 403 Forbidden)"} <= set(
        symptoms), symptoms
    # the host checks ran: the lab's unprepared host is diagnosed from its probe
    assert any(f["rule"] in ("iommu-off", "host-driver-loaded") for f in found), \
        [f["rule"] for f in found]


def _admin(lab) -> dict:
    return yaml.safe_load(lab.kubeconfig.read_text())


def test_an_api_server_on_a_closed_port_exits_1_naming_the_server_and_the_cause(lab, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again once the block ends
    config = _admin(lab)
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump(config))
    runs = {"install": ("--answers", str(_answers(lab, tmp_path, kubeconfig)), "--dry-run"),
            "troubleshoot": ("troubleshoot", "--json", "--kubeconfig", str(kubeconfig)),
            "bundle": ("bundle", "--kubeconfig", str(kubeconfig), "--output",
                       str(tmp_path / "b.tgz"))}
    for entry, args in runs.items():
        out = installer(lab, tmp_path, *args, timeout=120)
        _no_traceback(out)
        assert out.returncode == 1, (entry, out.stderr[-2000:])
        assert f"cannot reach the API server at https://127.0.0.1:{port}" in out.stderr, entry
        assert "Connection refused" in out.stderr and "fix:" in out.stderr, entry


def test_a_boolean_written_as_a_string_is_refused_as_kubectl_refuses_it(lab, tmp_path):
    """`insecure-skip-tls-verify: "false"` with no CA: the installer read the string as true
    and reached the cluster with TLS verification off. kubectl refuses the file; so does
    the installer, naming the field and the fix."""
    config = _admin(lab)
    cluster = config["clusters"][0]["cluster"]
    del cluster["certificate-authority"]
    cluster["insecure-skip-tls-verify"] = "false"
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump(config))
    by_kubectl = lab.kubectl("--kubeconfig", str(kubeconfig), "get", "nodes", check=False)
    assert by_kubectl.returncode != 0 and "insecure-skip-tls-verify" in by_kubectl.stderr
    for args in (("--answers", str(_answers(lab, tmp_path, kubeconfig)), "--dry-run"),
                 ("troubleshoot", "--json", "--kubeconfig", str(kubeconfig))):
        out = installer(lab, tmp_path, *args, timeout=120)
        _no_traceback(out)
        assert out.returncode == 2, out.stderr[-2000:]
        assert "clusters[kwok-lab].cluster.insecure-skip-tls-verify is the string 'false', " \
               "not a boolean" in out.stderr
        assert "fix: write insecure-skip-tls-verify: false without quotes" in out.stderr
    # Written as a YAML boolean, it means what it says: verification on, and with no CA to
    # verify the lab's certificate against, the server is refused.
    cluster["insecure-skip-tls-verify"] = False
    kubeconfig.write_text(yaml.safe_dump(config))
    out = installer(lab, tmp_path, "troubleshoot", "--json", "--kubeconfig", str(kubeconfig),
                    timeout=120)
    _no_traceback(out)
    assert out.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in out.stderr, out.stderr


def test_a_kubeconfig_list_with_a_missing_file_reaches_the_cluster_as_kubectl_does(lab, tmp_path):
    listed = f"{tmp_path / 'not-there'}{os.pathsep}{lab.kubeconfig}"
    by_kubectl = lab.kubectl("get", "nodes", "-o", "name", check=False)
    env_kubectl = subprocess.run([lab.info.binaries["kubectl"], "get", "nodes", "-o", "name"],
                                 env={**lab.env, "KUBECONFIG": listed}, capture_output=True,
                                 text=True, timeout=60)
    assert env_kubectl.returncode == 0 and env_kubectl.stdout == by_kubectl.stdout
    answers = lab_answers(lab.info)
    answers["cluster"] = {}  # the kubeconfig from KUBECONFIG, like kubectl
    (tmp_path / "answers.yaml").write_text(yaml.safe_dump(answers))
    base = {**os.environ, **lab.env, "XDG_STATE_HOME": str(tmp_path / "state")}
    for env_value, want in ((listed, 0), (f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}", 2)):
        out = subprocess.run(
            [sys.executable, "-m", "installer", "--answers", str(tmp_path / "answers.yaml"),
             "--dry-run", "--json"], cwd=ROOT, env={**base, "KUBECONFIG": env_value},
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        _no_traceback(out)
        if want == 0:
            # discovered through the second file (helm too: it reads the same list)
            events = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            done = {e["path"]: e for e in events if e.get("kind") == "step-finished"}
            assert done["discover/cluster"]["status"] == "ok", out.stdout[-3000:]
            assert out.returncode in (0, 3), out.stderr[-2000:]  # the lab's checks may fail
        else:
            assert out.returncode == 2, out.stderr[-2000:]
            assert "none of the kubeconfig files KUBECONFIG lists exists" in out.stderr
            assert str(tmp_path / "a") in out.stderr and str(tmp_path / "b") in out.stderr


def test_the_api_servers_own_404_and_503_answers_are_told_apart(lab):
    """Bodies as the real API server writes them: a group it does not serve ("404 page not
    found"), an object that is not there (a NotFound Status naming it), and an aggregated
    API whose service is gone (503)."""
    k = kube.connect(str(lab.kubeconfig), None)
    with pytest.raises(ApiError) as gone_api:
        # a group no chart of the lab installs (an earlier test may leave the NFD CRDs)
        k.get_json("/apis/gki-absent.example.com/v1/widgets")
    assert gone_api.value.status == 404 and not gone_api.value.object_missing
    assert gone_api.value.exit_code == 1
    assert "does not serve widgets.gki-absent.example.com (all namespaces)" in \
        gone_api.value.summary
    with pytest.raises(ApiError) as no_object:
        k.get_json(f"/api/v1/namespaces/{SA_NAMESPACE}/configmaps/gki-no-such-configmap")
    assert no_object.value.object_missing
    assert no_object.value.summary.startswith(
        f"configmaps gki-no-such-configmap (namespace {SA_NAMESPACE}) not found")
    lab.apply({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
               "metadata": {"name": "v1beta1.gki.example.com"},
               "spec": {"group": "gki.example.com", "version": "v1beta1",
                        "service": {"namespace": SA_NAMESPACE, "name": "gki-gone"},
                        "insecureSkipTLSVerify": True, "groupPriorityMinimum": 100,
                        "versionPriority": 100}})
    try:
        def answer() -> ApiError | None:
            try:
                k.get_json("/apis/gki.example.com/v1beta1/things")
            except ApiError as exc:
                return exc if exc.status == 503 else None
            return None

        unavailable = lab.wait_for("the aggregated API's 503", answer, timeout=30)
    finally:
        lab.kubectl("delete", "apiservice", "v1beta1.gki.example.com", "--ignore-not-found")
    assert unavailable.exit_code == 1
    assert unavailable.summary == ("context 'kwok-lab': the API server could not list "
                                   "things.gki.example.com (all namespaces): HTTP 503 Service "
                                   "Unavailable"), unavailable.summary
