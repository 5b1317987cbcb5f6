"""Pod exec reaches the simulated hosts: a privileged pod pinned to a KWOK node, with the host
root at /host, runs `chroot /host ...` inside that node's simulated host through the real API
server's pods/exec, and the probe gives what it gives over SSH (tests/lab/hostexec.py)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from remote.probe import PROBE_SCRIPT, parse_probe, probe_command
from tests.lab import hostexec
from tests.lab.handle import own_lab

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
                ("env", "true")):
        r = pod_exec(lab, name, *cmd, check=False)
        assert r.returncode != 0, cmd
    r = pod_exec(lab, name, "chroot", "/", "true", check=False)
    assert r.returncode == 126 and "only 'chroot /host" in r.stderr


@pytest.mark.parametrize("argv0", ["/bin/sh", "/usr/sbin/chroot"])
def test_a_command_given_as_a_path_is_refused_before_it_runs(ssh_lab, argv0):
    """KWOK runs an exec on this machine; the lab's patched KWOK (tests/lab/kwok_patch.py)
    refuses an argv[0] with a '/', which would bypass the PATH holding only the lab's chroot."""
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    marker = Path("/tmp", f"lab-pod-exec-{uuid.uuid4().hex}")
    host_marker = Path(lab.node("gpu-node-2").host_root) / marker.relative_to("/")
    script = ["-c", f"touch {marker}"]
    cmd = [argv0, *script] if argv0 == "/bin/sh" else [argv0, "/host", "sh", *script]
    r = pod_exec(lab, name, *cmd, check=False)
    assert r.returncode != 0
    assert "refused" in r.stderr and "only a bare command name" in r.stderr
    assert not marker.exists() and not host_marker.exists()
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


def test_stdin_ends_when_the_client_closes_it(ssh_lab):
    """The lab's KWOK closes an exec's stdin when the client's ends, as a kubelet does, so a
    script read with `sh -s` finishes on end of input, however long the client pauses."""
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    r = pod_exec(lab, name, "chroot", "/host", "sh", "-s", stdin="echo one\necho two\n")
    assert r.stdout == "one\ntwo\n"
    r = pod_exec(lab, name, "chroot", "/host", "wc", "-c", stdin="x" * 300_000)
    assert r.stdout.strip() == "300000"

    kubectl = [lab.info.binaries["kubectl"], "exec", "-i", name, "--",
               "chroot", "/host", "sh", "-s"]
    with subprocess.Popen(kubectl, env=lab.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as p:
        p.stdin.write("echo before\n")
        p.stdin.flush()
        time.sleep(2)  # a pause is not the end of input
        p.stdin.write("echo after\n")
        p.stdin.close()
        assert p.stdout.read() == "before\nafter\n"
        assert p.wait(timeout=30) == 0


@pytest.mark.parametrize("status", [7, 1, 0])
def test_a_commands_exit_status_is_the_clients(ssh_lab, status):
    """A non-zero exit comes back as the kubelet's NonZeroExitCode status with the ExitCode
    cause, so kubectl exits with the command's status."""
    lab = ssh_lab
    name = start(lab, "gpu-node-2")
    r = pod_exec(lab, name, "chroot", "/host", "sh", "-c", f"exit {status}", check=False)
    assert r.returncode == status, r.stderr
    if status:
        assert f"command terminated with exit code {status}" in r.stderr
        assert "Internal error" not in r.stderr


def test_hosts_added_with_extra_node_are_mapped_too(tmp_path):
    """A bench gets N pod-exec-capable hosts from `Lab.up(extra_nodes=...)` (`--extra-node`):
    each is a KWOK node with its own sshd host, so its host pods are mapped like the
    default nodes' (pod-mode fan-out)."""
    extra = ["gpu-node-4=gpu-vfio-ready", "gpu-node-5=cc-host"]
    with own_lab(tmp_path / "lab", "127.0.16", extra_nodes=extra) as lab:
        for node in ("gpu-node-4", "gpu-node-5"):
            name = start(lab, node)
            assert pod_exec(lab, name, "chroot", "/host", "hostname").stdout.strip() == node
            facts = parse_probe(pod_exec(lab, name, "chroot", "/host", "sh", "-s",
                                         stdin=PROBE_SCRIPT).stdout)
            assert facts == parse_probe(ssh(lab.node(node), "sudo " + probe_command()))
