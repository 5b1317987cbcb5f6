"""The support bundle holds the evidence and the summaries, and never a planted secret."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from installer.cluster.apierrors import ApiError
from installer.cluster.facts import ReleaseFacts
from installer.diagnosis import gather
from installer.diagnosis.bundle import RunProgress, summary_html, summary_markdown, write_bundle
from installer.diagnosis.progress import node_grid, steps_from_log
from installer.diagnosis.rules import Finding
from installer.redact import Redactor

FINDING = Finding("sandbox-mode-not-kata", "GPU pods Pending", "mode is 'kubevirt'",
                  ("ClusterPolicy spec.sandboxWorkloads = {'mode': 'kubevirt'}",),
                  "set sandboxWorkloads.mode=kata", 96)
ROOT = Path(__file__).resolve().parents[2]


def read(path) -> dict[str, str]:
    with tarfile.open(path) as tar:
        return {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar
                if m.isfile()}


def test_bundle_has_evidence_summaries_and_no_secrets(tmp_path):
    redactor = Redactor()
    redactor.add("hunter2-sudo-pass")
    files = {"logs/run.log": "sudo -S <<< hunter2-sudo-pass\nAuthorization: Bearer eyJtoken.x",
             "cluster/clusterpolicy.yaml": "sandboxWorkloads: {mode: kubevirt}"}
    path = write_bundle(tmp_path / "b.tar.gz", files, [FINDING], redactor)
    assert path.stat().st_mode & 0o077 == 0
    content = read(path)
    assert "kubevirt" in content["cluster/clusterpolicy.yaml"]
    assert "mode is 'kubevirt'" in content["SUMMARY.md"]
    assert "<h2>mode is &#x27;kubevirt&#x27;</h2>" in content["summary.html"]
    everything = "".join(content.values())
    assert "hunter2-sudo-pass" not in everything and "eyJtoken" not in everything


def test_a_directory_gets_the_bundle_inside_it_with_the_default_name(tmp_path):
    path = write_bundle(tmp_path, {"a.txt": "x"}, [FINDING], Redactor())
    assert path.parent == tmp_path and path.name.startswith("gpu-kata-bundle-")
    assert path.name.endswith(".tar.gz") and read(path)["a.txt"] == "x"


def test_a_regular_file_is_replaced_whole_and_no_temporary_file_is_left(tmp_path):
    old = tmp_path / "b.tar.gz"
    old.write_text("an older bundle")
    write_bundle(old, {"a.txt": "new"}, [FINDING], Redactor())
    assert read(old)["a.txt"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz"]


WRITE_TOO_BIG = """
import resource, signal, sys
from pathlib import Path
from installer.diagnosis.bundle import write_bundle
from installer.errors import UserError
from installer.redact import Redactor
from tests.unit.test_bundle import FINDING
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_bundle(Path(sys.argv[1]), {"big.bin": __import__("os").urandom(200_000).hex()},
                 [FINDING], Redactor())
except UserError as exc:
    print(exc.exit_code, exc)
"""


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary_one(tmp_path):
    """A real failed write (the file size limit, as a full disk would): exit 1 with the
    cause; the file named keeps its old bytes."""
    old = tmp_path / "b.tar.gz"
    old.write_text("an older bundle")
    out = subprocess.run([sys.executable, "-c", WRITE_TOO_BIG, str(old)], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert out.stdout.startswith(f"1 could not write the bundle {old}"), out.stdout + out.stderr
    assert "file too large" in out.stdout and "fix:" in out.stdout
    assert old.read_text() == "an older bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz"]


def test_the_html_summary_escapes_outside_text_and_the_files_keep_it_whole(tmp_path):
    """A log line in a finding's evidence is someone else's text: in the HTML summary it is
    escaped (no element of its own), in findings.json it is the line as the pod wrote it."""
    line = "validator: <script>alert(1)</script> & \x1b[2J\x1b]0;pwned\x07"
    finding = Finding("host-driver-loaded", "validator crash-loops", "<b>driver</b> loaded",
                      (line,), "bind to vfio-pci", 90)
    files = {"findings.json": json.dumps([finding.to_json()])}
    content = read(write_bundle(tmp_path / "b.tar.gz", files, [finding], Redactor()))
    html = content["summary.html"]
    assert "<script>" not in html and "<b>driver" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert json.loads(content["findings.json"])[0]["evidence"] == [line]


# -- the must-gather part: events, logs, node describes, versions, summaries, manifest ------

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(ns, name, kind, obj, type_, reason, last, first=None, count=1, message="m"):
    return {"metadata": {"namespace": ns, "name": name, "uid": name},
            "involvedObject": {"kind": kind, "name": obj}, "type": type_, "reason": reason,
            "firstTimestamp": first or last, "lastTimestamp": last, "count": count,
            "message": message, "source": {"component": "kubelet"}}


def pod(ns, name, containers, inits=(), restarts=None, phase="Running", image="img:1"):
    restarts = restarts or {}
    statuses = lambda names: [{"name": n, "restartCount": restarts.get(n, 0),  # noqa: E731
                               "state": {"running": {}}} for n in names]
    return {"metadata": {"namespace": ns, "name": name},
            "spec": {"initContainers": [{"name": n, "image": image} for n in inits],
                     "containers": [{"name": n, "image": image} for n in containers]},
            "status": {"phase": phase, "initContainerStatuses": statuses(inits),
                       "containerStatuses": statuses(containers)}}


def node(name, labels, kernel="6.8.0", kubelet="v1.33.4"):
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]},
            "status": {"nodeInfo": {"kubeletVersion": kubelet, "kernelVersion": kernel,
                                    "containerRuntimeVersion": "containerd://2.0.5",
                                    "osImage": "Ubuntu 24.04", "architecture": "amd64"}}}


def refused(path, status=403, said="forbidden here"):
    return ApiError(status, "Forbidden" if status == 403 else "Bad Request",
                    json.dumps({"kind": "Status", "message": said}), "GET", path)


class FakeKube:
    """The reads gather makes, answered from dicts; a path in `refuse` is refused."""

    def __init__(self, lists=None, texts=None, objects=None, refuse=()):
        self.lists, self.texts, self.objects = lists or {}, texts or {}, objects or {}
        self.refuse, self.asked = set(refuse), []

    def list_items(self, path, **query):
        self.asked.append((path, query))
        if path in self.refuse:
            raise refused(path)
        return iter(self.lists.get(path, []))

    def get_text(self, path, **query):
        key = (path, query.get("container"), query.get("previous"))
        self.asked.append(key)
        if key not in self.texts:
            raise refused(path, 400, "previous terminated container not found")
        return self.texts[key]

    def get_json(self, path, **query):
        if path not in self.objects:
            raise refused(path, 404, "not found")
        return self.objects[path]


def test_events_are_all_of_them_normal_and_warning_with_counts_sorted_by_last_seen():
    """Namespaces' events and Node events, each once, oldest last-seen first; an
    events.k8s.io event (eventTime, series) reads like a core one; a refused namespace is a
    note."""
    new_style = {"metadata": {"namespace": "gpu-operator", "name": "e3", "uid": "e3"},
                 "involvedObject": {"kind": "Pod", "name": "validator"}, "type": "Warning",
                 "reason": "BackOff", "eventTime": "2026-01-02T03:00:00Z",
                 "series": {"count": 7, "lastObservedTime": "2026-01-02T03:03:00Z"},
                 "reportingComponent": "kubelet", "message": "Back-off restarting"}
    node_ev = event("default", "e4", "Node", "gpu-node-1", "Normal", "Starting",
                    "2026-01-02T02:00:00Z")
    k = FakeKube(lists={
        "/api/v1/namespaces/kata-system/events": [
            event("kata-system", "e1", "Pod", "kata-deploy-x", "Normal", "Pulled",
                  "2026-01-02T03:02:00Z", "2026-01-02T01:00:00Z", count=3)],
        "/api/v1/namespaces/gpu-operator/events": [new_style],
        "/api/v1/events": [node_ev, node_ev]}, refuse={"/api/v1/namespaces/team-a/events"})
    out = gather.Gathered()
    records = gather.read_events(k, ("kata-system", "gpu-operator", "team-a"), out)
    assert [(r["object"], r["type"], r["count"]) for r in records] == [
        ("Node/gpu-node-1", "Normal", 1), ("Pod/kata-deploy-x", "Normal", 3),
        ("Pod/validator", "Warning", 7)]
    assert records[1]["firstSeen"] == "2026-01-02T01:00:00Z"
    assert records[2]["lastSeen"] == "2026-01-02T03:03:00Z"
    assert ("/api/v1/events", {"fieldSelector": "involvedObject.kind=Node"}) in k.asked
    assert out.notes == ["events of namespace team-a: could not be read "
                         "(HTTP 403 Forbidden: forbidden here)"]
    text = gather.events_text(records).splitlines()
    assert text[0].startswith("LAST SEEN\tFIRST SEEN\tCOUNT\tTYPE\tREASON")
    assert text[3].split("\t")[:7] == ["2026-01-02T03:03:00Z", "2026-01-02T03:00:00Z", "7",
                                        "Warning", "BackOff", "gpu-operator", "Pod/validator"]


def test_logs_of_every_container_init_first_and_previous_only_after_a_restart():
    p = pod("gpu-operator", "sandbox-validator", ["main"], inits=["vfio-pci-validation"],
            restarts={"vfio-pci-validation": 2})
    base = "/api/v1/namespaces/gpu-operator/pods/sandbox-validator/log"
    k = FakeKube(texts={(base, "vfio-pci-validation", "false"): "waiting for vfio\n",
                        (base, "vfio-pci-validation", "true"): "vfio-pci not bound",
                        (base, "main", "false"): ""})
    out = gather.Gathered()
    gather.read_logs(k, [p], out)
    prefix = "logs/gpu-operator/sandbox-validator/"
    assert out.files == {f"{prefix}vfio-pci-validation.log": "waiting for vfio\n",
                         f"{prefix}vfio-pci-validation.previous.log": "vfio-pci not bound\n",
                         f"{prefix}main.log": ""}
    assert (base, "main", "true") not in k.asked  # never restarted: no previous log asked
    assert out.notes == []


def test_logs_are_bounded_and_the_bundle_says_what_was_cut(monkeypatch):
    """Troubled pods first; the pods past the cap and a log cut at the tail are named; a log
    that cannot be read is a note, not a stop."""
    monkeypatch.setattr(gather, "MAX_LOG_PODS", 2)
    monkeypatch.setattr(gather, "LOG_TAIL_LINES", 3)
    pods = [pod("ns", "a-fine", ["c"]), pod("ns", "b-fine", ["c"]),
            pod("ns", "z-pending", ["c"], phase="Pending")]
    logs = lambda n: f"/api/v1/namespaces/ns/pods/{n}/log"  # noqa: E731
    k = FakeKube(texts={(logs("z-pending"), "c", "false"): "1\n2\n3\n",
                        (logs("a-fine"), "c", "false"): "ok\n"})
    out = gather.Gathered()
    gather.read_logs(k, pods, out)
    assert sorted(out.files) == ["logs/ns/a-fine/c.log", "logs/ns/z-pending/c.log"]
    assert out.notes[0] == "logs: 1 of 3 pods left out (the first 2, troubled pods first, " \
                           "kept): ns/b-fine"
    assert "logs/ns/z-pending/c.log: only the last 3 lines" in out.notes[1]
    assert len(out.notes) == 2


def test_only_the_nodes_that_carry_a_gpu_are_described_with_their_taints_and_events():
    nodes = [node("gpu-node-1", {"feature.node.kubernetes.io/pci-10de.present": "true"}),
             node("gpu-node-2", {"nvidia.com/gpu.present": "true"}),
             node("cpu-node-1", {"kubernetes.io/os": "linux"})]
    k = FakeKube(lists={"/api/v1/events": [event("default", "e", "Node", "gpu-node-1",
                                                 "Warning", "Rebooted", "2026-01-02T03:00:00Z")]})
    out = gather.Gathered()
    gather.describe_gpu_nodes(k, nodes, out, NOW)
    assert sorted(out.files) == ["describe-nodes/gpu-node-1.txt", "describe-nodes/gpu-node-2.txt"]
    text = out.files["describe-nodes/gpu-node-1.txt"]
    assert "nvidia.com/gpu:NoSchedule" in text and "Kernel Version:" in text
    assert "Rebooted" in text


def test_versions_of_everything_and_their_short_table():
    rc = {"metadata": {"name": "kata-qemu-nvidia-gpu",
                       "annotations": {"katacontainers.io/kata-version": "3.32.0"}}}
    found = gather.versions(
        installer="0.1.0", helm="v3.19.0", server={"gitVersion": "v1.33.4", "major": "1"},
        nodes=[node("gpu-node-1", {}), node("gpu-node-2", {}, kernel="6.11.0")],
        releases=[ReleaseFacts("gpu-operator", "gpu-operator", "gpu-operator", "v26.3.1",
                               "deployed", app_version="v26.3.1")],
        pods=[pod("gpu-operator", "validator", ["main"], inits=["init"], image="nvcr.io/v:1")],
        runtime_classes=[rc, {"metadata": {"name": "runc"}}])
    assert found["kubernetes"] == {"gitVersion": "v1.33.4"}
    assert found["nodes"]["gpu-node-2"] == {
        "kubelet": "v1.33.4", "containerRuntime": "containerd://2.0.5", "kernel": "6.11.0",
        "osImage": "Ubuntu 24.04", "architecture": "amd64"}
    assert found["releases"][0]["appVersion"] == "v26.3.1"
    assert found["images"] == {"nvcr.io/v:1": ["gpu-operator/validator:init",
                                              "gpu-operator/validator:main"]}
    assert found["kataVersion"] == {"kata-qemu-nvidia-gpu": "3.32.0"}
    rows = dict(gather.version_rows(found))
    assert rows["kernel"] == "6.11.0, 6.8.0" and rows["Kubernetes API server"] == "v1.33.4"
    assert rows["release gpu-operator/gpu-operator"] == "gpu-operator v26.3.1 (app v26.3.1)"
    assert rows["Kata Containers (RuntimeClass annotation)"] == "3.32.0"


RUN_LOG = [
    '2026-01-02 03:00:00,000 DEBUG {"kind": "run-started", "path": "run", "at": 100.0}',
    '2026-01-02 03:00:00,001 DEBUG {"kind": "plan", "path": "plan", "at": 100.0, "plan": '
    '{"steps": [{"id": "check/gpu-node-1"}, {"id": "check/gpu-node-2"}, '
    '{"id": "install/kata-deploy"}, {"id": "verify/kata-deploy"}]}}',
    '2026-01-02 03:00:01,000 DEBUG {"kind": "step-started", "path": "check/gpu-node-1", '
    '"at": 101.0}',
    '2026-01-02 03:00:05,000 DEBUG {"kind": "step-finished", "path": "check/gpu-node-1", '
    '"at": 105.0, "status": "ok"}',
    '2026-01-02 03:00:05,000 DEBUG {"kind": "step-started", "path": "check/gpu-node-2", '
    '"at": 105.0}',
    '2026-01-02 03:00:09,000 WARNING {"kind": "step-finished", "path": "check/gpu-node-2", '
    '"at": 111.0, "status": "failed"}',
    "a line that is not an event",
]


def test_a_run_log_gives_the_steps_and_the_grid_of_that_run():
    steps, last = steps_from_log(RUN_LOG)
    assert last == 111.0
    assert [(s.id, s.status, s.seconds(last)) for s in steps] == [
        ("check/gpu-node-1", "ok", 4.0), ("check/gpu-node-2", "failed", 6.0),
        ("install/kata-deploy", "pending", None), ("verify/kata-deploy", "pending", None)]
    assert steps_from_log(RUN_LOG[:1] + RUN_LOG[2:]) is None  # no plan: no run to draw


def test_the_summaries_start_with_findings_then_versions_then_the_last_run_per_node():
    grid = node_grid(*steps_from_log(RUN_LOG))
    run = RunProgress(grid, "run-20260102-030000.log")
    versions = [("gpu-kata-installer", "0.1.0"), ("kubelet", "v1.33.4")]
    md = summary_markdown([FINDING], "T", versions=versions, run=run, notes=["x"])
    assert md.index("## 1. mode is 'kubevirt'") < md.index("## Versions") \
        < md.index("## Last run, per node")
    assert "| kubelet | v1.33.4 |" in md
    assert "| gpu-node-2 | failed 6s |" in md and "| gpu-node-1 | ok 4s |" in md
    assert "run-20260102-030000.log" in md and "see `MANIFEST.txt`" in md
    page = summary_html([FINDING], "T", versions=versions, run=run)
    assert page.index("<section>") < page.index("<h2>Versions</h2>") \
        < page.index("<h2>Last run, per node</h2>")
    assert "<td class='failed' title=''>failed 6s</td>" in page
    assert "td.failed{background:" in page and "td.ok{background:" in page


def test_without_a_run_the_summaries_have_no_grid():
    md = summary_markdown([FINDING], "T", versions=[("helm", "v3.19.0")])
    page = summary_html([FINDING], "T", versions=[("helm", "v3.19.0")])
    assert "## Versions" in md and "Last run" not in md and "MANIFEST" not in md
    assert "<h2>Versions</h2>" in page and "Last run" not in page


def test_the_manifest_lists_every_file_with_its_size_and_what_could_not_be_read(tmp_path):
    files = {"a.txt": "12345", "logs/ns/p/c.log": "line\n"}
    notes = ["logs/ns/p/c.previous.log: could not be read (HTTP 400 Bad Request)"]
    path = write_bundle(tmp_path / "b.tar.gz", files, [FINDING], Redactor(), notes=notes)
    with tarfile.open(path) as tar:
        sizes = {m.name.split("/", 1)[1]: m.size for m in tar if m.isfile()}
    manifest = read(path)["MANIFEST.txt"]
    listed = {line.split()[1]: int(line.split()[0]) for line in manifest.splitlines()
              if line[:1] == " " or line[:1].isdigit()}
    assert listed == {k: v for k, v in sizes.items() if k != "MANIFEST.txt"}
    assert {"SUMMARY.md", "summary.html", "a.txt", "logs/ns/p/c.log"} <= set(listed)
    assert "Left out or not read:\n- logs/ns/p/c.previous.log: could not be read" in manifest


def test_new_kinds_of_content_pass_the_redactor(tmp_path):
    """All events, previous logs, node describes, versions and the notes: a planted secret
    in each reaches the bundle masked."""
    secret = "hunter2-planted-" + "x" * 8
    redactor = Redactor()
    redactor.add(secret)
    k = FakeKube(lists={"/api/v1/namespaces/ns/events": [
        event("ns", "e", "Pod", "p", "Normal", "Started", "2026-01-02T03:00:00Z",
              message=f"started with {secret}")]},
        texts={("/api/v1/namespaces/ns/pods/p/log", "c", "false"): "ok\n",
               ("/api/v1/namespaces/ns/pods/p/log", "c", "true"):
               "token: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl\n"})
    out = gather.Gathered()
    records = gather.read_events(k, ("ns",), out)
    out.files["cluster/events.txt"] = gather.events_text(records)
    out.files["cluster/events.json"] = json.dumps(records)
    gather.read_logs(k, [pod("ns", "p", ["c"], restarts={"c": 1})], out)
    gather.describe_gpu_nodes(k, [node("gpu-node-1", {
        "nvidia.com/gpu.present": "true", "planted": secret})], out, NOW)
    out.notes.append(f"a note naming {secret}")
    assert "logs/ns/p/c.previous.log" in out.files
    content = read(write_bundle(tmp_path / "b.tar.gz", out.files, [FINDING], redactor,
                                notes=out.notes))
    assert {"cluster/events.txt", "cluster/events.json", "logs/ns/p/c.previous.log",
            "describe-nodes/gpu-node-1.txt", "MANIFEST.txt"} <= set(content)
    for name, text in content.items():
        assert secret not in text and "eyJhbGciOiJSUzI1NiJ9" not in text, name
