"""The lab's pod-exec mapping (tests/lab/hostexec.py): which pods get a KWOK Exec naming
their node's simulated host, which are held Pending until then, and that the KWOK stage
holds exactly what the Python twin says."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.lab import hostexec
from tests.lab.controlplane import STAGES


def pod(name="p", node="gpu-node-2", host_pid=True, root=True, owner=None, note=None, **meta):
    m = {"name": name, "namespace": "ns", "uid": f"uid-{name}", **meta}
    if owner:
        m["ownerReferences"] = [{"kind": owner, "name": "o", "uid": "x"}]
    if note is not None:
        m["annotations"] = {hostexec.HOLD_ANNOTATION: note}
    vols = [{"name": "h", "hostPath": {"path": "/" if root else "/opt/kata"}}]
    return {"metadata": m, "spec": {"nodeName": node, "hostPID": host_pid, "volumes": vols}}


def test_a_bare_host_root_pod_is_held_until_annotated():
    assert hostexec.held(pod())
    assert not hostexec.held(pod(note="gpu-node-2"))
    assert not hostexec.held(pod(owner="DaemonSet"))  # kata-deploy keeps its timing
    assert not hostexec.held(pod(host_pid=False))
    assert not hostexec.held(pod(root=False))
    assert hostexec.held(pod(owner="Job"))


def test_the_stage_holds_with_the_same_query():
    docs = [d for d in yaml.safe_load_all(STAGES.read_text()) if d]
    ready = next(d for d in docs if d["metadata"]["name"] == "pod-ready")
    exprs = ready["spec"]["selector"]["matchExpressions"]
    assert {"key": hostexec.HOLD_QUERY, "operator": "In", "values": ["go"]} in exprs


def test_plan_maps_host_nodes_and_only_releases_the_others():
    pods = [pod("a"), pod("b", node="scale-node-1"), pod("c", root=False),
            pod("d", node=None), pod("e", deletionTimestamp="2026-01-01T00:00:00Z"),
            pod("f", owner="DaemonSet")]
    got = [(p["metadata"]["name"], n) for p, n in hostexec.plan(pods, {"gpu-node-2"}, set())]
    assert got == [("a", "gpu-node-2"), ("b", ""), ("f", "gpu-node-2")]
    # served once; a held pod whose annotation write failed is served again
    assert hostexec.plan([pod("f", owner="DaemonSet")], {"gpu-node-2"}, {"uid-f"}) == []
    assert len(hostexec.plan([pod("a")], {"gpu-node-2"}, {"uid-a"})) == 1


def test_the_exec_names_the_host_and_is_owned_by_the_pod():
    ex = hostexec.exec_object(pod("a"), "gpu-node-2", Path("/tmp/lab-x"))
    assert (ex["kind"], ex["metadata"]["name"], ex["metadata"]["namespace"]) == ("Exec", "a", "ns")
    assert ex["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": "uid-a"}]
    envs = {e["name"]: e["value"] for e in ex["spec"]["execs"][0]["local"]["envs"]}
    assert envs == {"LAB_HOST_NODE": "gpu-node-2",
                    "LAB_HOST_PIDFILE": "/tmp/lab-x/run/sshd-gpu-node-2.pid"}


def test_only_the_host_entering_chroot_is_on_the_kwok_path():
    """Whatever is on that PATH can be exec'd by any mapped pod on this machine as root."""
    assert [p.name for p in hostexec.BIN_DIR.iterdir()] == ["chroot"]
    assert (hostexec.BIN_DIR / "chroot").stat().st_mode & 0o111
