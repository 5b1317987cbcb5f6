"""Pod exec reaches the simulated hosts: a privileged pod pinned to a KWOK node, with the host
root at /host, runs `chroot /host ...` inside that node's simulated host through the real API
server's pods/exec, and the probe gives what it gives over SSH (tests/lab/hostexec.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from remote.probe import PROBE_SCRIPT, parse_probe, probe_command
from tests.lab import hostexec

from .test_lab_ssh import ssh

pytestmark = pytest.mark.lab

NS = "default"


def host_pod(node: str) -> dict:
    """What pod mode creates per node: privileged, hostPID, host root at /host, pinned."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"host-exec-{node}", "namespace": NS},
        "spec": {
            "nodeName": node,
            "hostPID": True,
            "restartPolicy": "Never",
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "host",
                "image": "busybox:1.36",
                "command": ["sleep", "3600"],
                "securityContext": {"privileged": True},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}],
            }],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
        },
    }


def phase(lab, name: str) -> str:
    return lab.kube.get(f"/api/v1/namespaces/{NS}/pods/{name}").get("status", {}).get("phase", "")


def start(lab, node: str) -> str:
    pod = host_pod(node)
    lab.apply(pod)
    name = pod["metadata"]["name"]
    lab.wait_for(f"{name} Running", lambda: phase(lab, name) == "Running", timeout=30)
    return name


def pod_exec(lab, name: str, *cmd: str, stdin: str | None = None, check: bool = True):
    args = ["exec", *(["-i"] if stdin is not None else []), name, "--", *cmd]
    return lab.kubectl(*args, input=stdin, check=check, timeout=60)


@pytest.fixture
def ssh_lab(lab_bare):
    if not all(n.ssh for n in lab_bare.nodes):
        pytest.skip("lab runs without sshd: pod exec enters a host through its sshd's namespace")
    return lab_bare


def test_exec_in_a_pod_on_gpu_node_2_runs_in_its_simulated_host(ssh_lab):
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    root = Path(lab.node("gpu-node-2").host_root)

    out = pod_exec(lab, name, "chroot", "/host", "cat", "/etc/hostname").stdout
    assert out.strip() == (root / "etc/hostname").read_text().strip() == "gpu-node-2"

    via_pod = pod_exec(lab, name, "chroot", "/host", "sh", "-s", stdin=PROBE_SCRIPT).stdout
    via_ssh = ssh(lab.node("gpu-node-2"), "sudo " + probe_command())
    assert via_pod.rstrip().endswith("@done")
    assert parse_probe(via_pod) == parse_probe(via_ssh)
    assert via_pod == via_ssh


def test_a_pod_on_another_node_reaches_that_nodes_host(ssh_lab):
    lab = ssh_lab
    pods = {node: start(lab, node) for node in ("gpu-node-3", "cpu-node-1")}
    facts = {}
    for node, name in pods.items():
        assert pod_exec(lab, name, "chroot", "/host", "hostname").stdout.strip() == node
        facts[node] = parse_probe(pod_exec(lab, name, "chroot", "/host", "sh", "-s",
                                           stdin=PROBE_SCRIPT).stdout)
        assert facts[node] == parse_probe(ssh(lab.node(node), "sudo " + probe_command()))
    assert facts["gpu-node-3"] != facts["cpu-node-1"]


def test_nothing_reaches_the_real_root(ssh_lab):
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    marker = f"lab-pod-exec-{uuid.uuid4().hex}"
    script = f"echo written > /tmp/{marker}; touch /{marker}"
    pod_exec(lab, name, "chroot", "/host", "sh", "-c", script)
    root = Path(lab.node("gpu-node-2").host_root)
    assert (root / "tmp" / marker).read_text() == "written\n"
    assert (root / marker).exists()
    assert not Path("/tmp", marker).exists() and not Path("/", marker).exists()
    (root / marker).unlink()
    (root / "tmp" / marker).unlink()

    # Commands that are not `chroot /host ...` are refused, not run on this machine.
    for cmd in (("cat", "/etc/hostname"), ("chroot", "/", "true"), ("sh", "-c", "true"),
                ("stdin-relay", "true")):
        r = pod_exec(lab, name, *cmd, check=False)
        assert r.returncode != 0, cmd
    r = pod_exec(lab, name, "chroot", "/", "true", check=False)
    assert "only 'chroot /host" in r.stderr


def test_a_bare_host_pod_waits_for_its_mapping_and_leaves_nothing_behind(ssh_lab):
    lab = ssh_lab
    pod = host_pod("gpu-node-1")
    name = pod["metadata"]["name"]
    execs = f"{hostexec.EXEC_API}/namespaces/{NS}/execs"
    with lab.paused("simulator"):
        lab.apply(pod)
        lab.wait_for("pod bound", lambda: lab.kube.get(
            f"/api/v1/namespaces/{NS}/pods/{name}").get("spec", {}).get("nodeName"))
        lab.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=2s", check=False)
        assert phase(lab, name) == "Pending"  # KWOK holds it: no Exec yet
    lab.wait_for(f"{name} Running", lambda: phase(lab, name) == "Running", timeout=30)
    ex = lab.kube.get(f"{execs}/{name}")
    assert ex["metadata"]["ownerReferences"][0]["name"] == name
    assert pod_exec(lab, name, "chroot", "/host", "hostname").stdout.strip() == "gpu-node-1"

    lab.kubectl("delete", "pod", name, "--wait=true", "--timeout=60s")
    lab.wait_for("its Exec collected", lambda: not any(
        e["metadata"]["name"] == name for e in lab.kube.get(execs).get("items", [])))


def test_stdin_ends_when_the_client_has_sent_everything(ssh_lab):
    """KWOK never closes an exec's stdin; the lab's relay ends it once the client is quiet,
    so a script read with `sh -s` finishes (and a command reading to EOF returns)."""
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    r = pod_exec(lab, name, "chroot", "/host", "sh", "-s", stdin="echo one\necho two\n")
    assert r.stdout == "one\ntwo\n"
    r = pod_exec(lab, name, "chroot", "/host", "wc", "-c", stdin="x" * 300_000)
    assert r.stdout.strip() == "300000"


def test_a_failing_command_shows_its_status_only_in_the_error_text(ssh_lab):
    """KWOK v0.8.0 wraps the command's exit error, so the API server reports an internal
    error (kubectl exits 1) with `exit status N` in its text instead of a NonZeroExitCode
    status; a pod-mode client must not rely on the exit code in the lab (NOTES-22a.md)."""
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    r = pod_exec(lab, name, "chroot", "/host", "sh", "-c", "exit 7", check=False)
    assert r.returncode == 1
    assert "exit status 7" in r.stderr
