"""Read-only cluster views: pod rows from API objects, kubeconfig contexts, findings,
and a followed log that ends when asked even if the pod is quiet."""

from __future__ import annotations

import threading
import time

from installer.cluster.podread import PodReading, read_pod
from installer.diagnosis.clusterinfo import (
    ClusterView,
    EventRow,
    basic_findings,
    follow_log,
    list_contexts,
    screen_findings,
)
from installer.engine.steps.sample import pending_reason
from tests.unit.test_diagnose import healthy

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: https://127.0.0.1:6443}
users:
- name: admin
  user: {token: abc}
contexts:
- name: lab
  context: {cluster: lab, user: admin}
- name: other
  context: {cluster: lab, user: admin}
current-context: lab
"""


def test_a_crashlooping_pod_row_names_the_waiting_reason():
    pod = {"metadata": {"name": "validator", "namespace": "gpu-operator"},
           "spec": {"nodeName": "gpu-node-2", "containers": [{"name": "v"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "v", "ready": False, "restartCount": 7,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    r = read_pod(pod)
    assert (r.namespace, r.name, r.phase, r.node, r.ready, r.restarts, r.reason, r.containers) \
        == ("gpu-operator", "validator", "Running", "gpu-node-2", "0/1", 7, "CrashLoopBackOff",
            ("v",))


def test_an_unschedulable_pod_row_says_so():
    pod = {"metadata": {"name": "sample", "namespace": "default"},
           "spec": {"containers": [{"name": "c"}]},
           "status": {"phase": "Pending", "conditions": [
               {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}
    assert read_pod(pod).reason == "Unschedulable"


def test_the_sample_quotes_the_scheduler_s_reason_and_message_from_one_pod_reading():
    message = "0/4 nodes are available: 1 Insufficient nvidia.com/pgpu."
    pod = {"metadata": {"name": "cuda-vectoradd-kata", "namespace": "default"},
           "spec": {"containers": [{"name": "c"}]},
           "status": {"phase": "Pending", "conditions": [
               {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message}]}}
    r = read_pod(pod)
    assert (r.unschedulable_reason, r.unschedulable) == ("Unschedulable", message)
    assert pending_reason(pod) == f"Unschedulable: {message}"
    pod["status"] = {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}]}
    assert (read_pod(pod).unschedulable_reason, pending_reason(pod)) == ("", "")


def test_a_finished_container_is_not_a_reason_but_a_killed_one_is():
    def pod(reason):
        return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{}]},
                "status": {"phase": "Succeeded", "containerStatuses": [
                    {"state": {"terminated": {"reason": reason}}}]}}
    assert read_pod(pod("Completed")).reason == ""
    assert read_pod(pod("OOMKilled")).reason == "OOMKilled"


def test_contexts_of_a_kubeconfig_and_of_a_missing_one(tmp_path):
    path = tmp_path / "config"
    path.write_text(KUBECONFIG)
    ctx = list_contexts(str(path))
    assert ctx.names == ("lab", "other") and ctx.current == "lab" and ctx.error is None
    missing = list_contexts(str(tmp_path / "nope"))
    assert missing.names == () and "no file at" in missing.error
    path.write_text("{{{ not yaml")
    assert "cannot read" in list_contexts(str(path)).error


def test_the_screen_s_findings_are_the_headless_ones_with_the_run_s_failed_steps_first():
    from installer.diagnosis.rules import CheckView, State, troubleshoot_findings

    state = State(host_checks={"n": (CheckView("iommu-enabled", "fail", ("off",), "turn it on",
                                               "IOMMU off"),
                                     CheckView("hugepages", "fail", ("0",), "", "no hugepages"),
                                     CheckView("x", "warn", (), "", "meh", ignored=True))})
    view = ClusterView(
        pods=(PodReading("gpu-operator", "ok", "Running", "n", "1/1", 0, ""),),
        events=(EventRow("gpu-operator", "pod/validator", "Warning", "BackOff", "restarting"),),
        state=state)
    found = basic_findings(view, (("install/gpu-operator", "helm failed", "timeout"),))
    # the ignored check's warning is left out, and so is the check the iommu-off finding cites
    wheres = [f.where for f in found]
    assert wheres[:2] == ["install/gpu-operator", "iommu-off"] and wheres[-1] == "n hugepages"
    assert "n iommu-enabled" not in wheres
    assert not [f for f in found if "pod" in f.where or "BackOff" in f.message]  # own tabs
    assert found[0].message == "helm failed (step install/gpu-operator failed)"
    assert found[-1].message == "no hugepages (check hugepages fails on host n)"
    assert found[1:] == list(screen_findings(troubleshoot_findings(state)))
    assert basic_findings(ClusterView(state=healthy()))[0].message \
        == "nothing looks wrong in what was read"
    unread = basic_findings(ClusterView(errors=("cannot read the cluster: refused",)))
    assert [(f.where, f.message) for f in unread] == [("read", "cannot read the cluster: refused")]


class _QuietStream:
    """A log stream that sends two lines, then blocks like a quiet pod - until closed."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    def stream(self, size):
        yield b"first\nsec"
        yield b"ond\n"
        self.closed.wait(30)
        raise OSError("connection closed")

    def shutdown(self):
        self.closed.set()

    def close(self):
        self.closed.set()

    def release_conn(self):
        pass


class _Kube:
    def __init__(self, resp):
        self.resp = resp

    def open_stream(self, path, **query):
        assert path == "/api/v1/namespaces/ns/pods/pod/log" and query["follow"] == "true"
        return self.resp


def test_a_followed_log_delivers_whole_lines_and_stops_promptly_on_request():
    resp = _QuietStream()
    got: list[str] = []
    stop = threading.Event()
    t = threading.Thread(target=follow_log, args=(_Kube(resp), "ns", "pod", None, got.extend,
                                                  stop))
    t.start()
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == ["first", "second"]
    started = time.monotonic()
    stop.set()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - started < 2
