"""Pod mode's host access (installer.hosts.podaccess): the pod a node gets, the script's
stdin, and a run's life - created through the change callable, waited for, exec'd, removed
also on failure and interruption - with a fake API and a fake exec (the lab proves the real
path once its exec mapping lands)."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from dataclasses import replace

import pytest

from installer.cluster.apierrors import ApiError
from installer.cluster.podexec import ExecResult
from installer.hosts import podaccess
from installer.hosts.podaccess import (
    EXEC_COMMAND,
    PodAccess,
    PodSettings,
    complete_stdout,
    manifest,
    pod_name,
    stdin_script,
)
from remote.ssh import Script

SETTINGS = PodSettings(image="registry.example.com/library/busybox:1.37", namespace="gki",
                       concurrency=2, start_seconds=5, pull_secrets=("pull",))


@pytest.fixture(autouse=True)
def _fast(monkeypatch):
    monkeypatch.setattr(podaccess, "_polls", lambda: itertools.repeat(0.01))


def ended(result: ExecResult) -> ExecResult:
    """The result as the pod's shell gives it: stdout ends with stdin_script's marker."""
    if result.exit_status is None:
        return result
    return replace(result, stdout=result.stdout + b"\n@gki-end %d\n" % result.exit_status)


class FakeKube:
    """Pods by name; a created pod runs after `start_reads` reads (or waits on `waiting`)."""

    def __init__(self, waiting: str = "", start_reads: int = 1) -> None:
        self.pods: dict[str, dict] = {}
        self.log: list[str] = []
        self.waiting, self.start_reads = waiting, start_reads

    def get_json(self, path: str, **_: str) -> dict:
        name = path.rsplit("/", 1)[1]
        pod = self.pods.get(name)
        if pod is None:
            raise ApiError(404, "Not Found", json.dumps({"details": {"name": name}}), "GET", path)
        pod["reads"] += 1
        if self.waiting:
            pod["status"] = {"phase": "Pending", "containerStatuses": [
                {"state": {"waiting": {"reason": self.waiting, "message": "no such image"}}}]}
        elif pod["reads"] >= self.start_reads:
            pod["status"] = {"phase": "Running"}
        return pod

    def send_json(self, method: str, path: str, body: dict, *_: str) -> dict:
        self.log.append(f"create {body['metadata']['name']}")
        self.pods[body["metadata"]["name"]] = {**body, "reads": 0}
        return body

    def delete(self, path: str) -> None:
        name = path.rsplit("/", 1)[1]
        self.log.append(f"delete {name}")
        self.pods.pop(name, None)


class Changes:
    """Context.change's behaviour: describe, and call the action unless a dry-run."""

    def __init__(self, dry_run: bool = False) -> None:
        self.seen: list[str] = []
        self.dry_run = dry_run

    async def __call__(self, path, target, description, action, detail=None):
        self.seen.append(description.split(" (")[0])
        if self.dry_run:
            return None
        from installer.permit import grant_permit
        return await action(grant_permit(description))


def _exec(result: ExecResult, seen: list | None = None):
    async def fake(kube, ns, pod, command, stdin=b"", *, container="", timeout=300.0):
        if seen is not None:
            seen.append((ns, pod, tuple(command), stdin, container))
        return ended(result)
    return fake


def test_the_pod_is_privileged_pinned_tolerant_and_mounts_the_host_root():
    pod = manifest("gpu-1", SETTINGS)
    spec, c = pod["spec"], pod["spec"]["containers"][0]
    assert spec["nodeName"] == "gpu-1" and spec["hostPID"] is True
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert c["securityContext"] == {"privileged": True}
    assert c["image"] == SETTINGS.image
    assert spec["volumes"][0]["hostPath"]["path"] == "/"
    assert c["volumeMounts"][0]["mountPath"] == "/host"
    assert spec["imagePullSecrets"] == [{"name": "pull"}]
    assert "hostNetwork" not in spec and spec["activeDeadlineSeconds"] > 0
    assert pod["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "gpu-kata-installer",
                                         "gpu-kata-installer.io/host-access": "true"}


def test_a_long_node_name_gives_a_short_unique_pod_name():
    a, b = pod_name("n" * 200 + "a"), pod_name("n" * 200 + "b")
    assert len(a) <= 63 and a != b and pod_name("gpu-1") == "gki-host-gpu-1"


@pytest.mark.parametrize("shell", ["dash", "bash"])  # dash buffers a pipe, bash does not
@pytest.mark.parametrize("command", [
    Script('printf "%s|" "$@"; read x; echo "read:$x."; exit 4', ("a b", "$c")),
    'echo plain; exit 4',
])
def test_the_stdin_script_runs_in_sh_with_its_arguments_and_its_stdin_kept_away(
        command, shell):
    # The shell reads the script from stdin as the pod's sh -s does; nothing the script
    # runs reads the rest of it, and what follows it is never run.
    r = subprocess.run([shell, "-s"], input=stdin_script(command) + b"echo never\n",
                       capture_output=True, timeout=10)
    assert r.returncode == 4
    out = complete_stdout(r.stdout)
    assert out == (b"a b|$c|read:.\n" if isinstance(command, Script) else b"plain\n")
    assert complete_stdout(r.stdout[:-3]) is None  # the end lost: said, never taken as all


async def test_a_run_creates_waits_execs_and_removes_the_pod_and_answers_as_ssh_does():
    kube, changes, seen = FakeKube(start_reads=3), Changes(), []
    access = PodAccess(kube, SETTINGS, changes, exec_fn=_exec(
        ExecResult(0, b"KEY=v\n", b"", protocol="v5.channel.k8s.io"), seen))
    r = await access.run("gpu-1", Script("echo hi"))
    assert (r.name, r.exit_status, r.stdout, r.ok) == ("gpu-1", 0, b"KEY=v\n", True)
    assert seen == [("gki", "gki-host-gpu-1", EXEC_COMMAND, stdin_script(Script("echo hi")),
                     "host")]
    assert changes.seen == ["create pod gki/gki-host-gpu-1 on gpu-1",
                            "delete pod gki/gki-host-gpu-1 on gpu-1"]
    assert kube.pods == {}


async def test_a_pod_that_cannot_pull_its_image_is_an_unreachable_host_with_the_fix():
    kube = FakeKube(waiting="ImagePullBackOff")
    r = await PodAccess(kube, SETTINGS, Changes(), exec_fn=_exec(ExecResult(0))).run(
        "gpu-1", "true")
    assert r.error is not None and r.error.kind == "unreachable"
    assert "ImagePullBackOff" in r.error.message and "hostAccess.podImage" in r.error.remedy
    assert kube.pods == {} and kube.log[-1] == "delete gki-host-gpu-1"


async def test_a_failed_exec_and_a_timeout_are_host_errors_and_the_pod_is_removed():
    kube = FakeKube()
    for result, kind in ((ExecResult(None, failure="exec: chroot not found"), "error"),
                         (ExecResult(None, failure="late", timed_out=True), "timeout")):
        r = await PodAccess(kube, SETTINGS, Changes(), exec_fn=_exec(result)).run("n", "true")
        assert r.error is not None and r.error.kind == kind and r.exit_status is None
        assert kube.pods == {}


async def test_an_interrupted_run_still_removes_its_pod():
    kube = FakeKube()

    async def hang(*_a, **_k):
        await asyncio.sleep(60)

    task = asyncio.ensure_future(PodAccess(kube, SETTINGS, Changes(), exec_fn=hang).run(
        "n", "true"))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kube.log == ["create gki-host-n", "delete gki-host-n"] and kube.pods == {}


async def test_a_leftover_pod_of_an_interrupted_run_is_removed_before_the_new_one():
    kube = FakeKube()
    kube.pods["gki-host-n"] = {**manifest("n", SETTINGS), "reads": 0}
    await PodAccess(kube, SETTINGS, Changes(), exec_fn=_exec(ExecResult(0))).run("n", "true")
    assert kube.log == ["delete gki-host-n", "create gki-host-n", "delete gki-host-n"]


async def test_a_dry_run_shows_the_pod_created_then_removed_and_reaches_no_host():
    kube, changes = FakeKube(), Changes(dry_run=True)
    r = await PodAccess(kube, SETTINGS, changes, exec_fn=_exec(ExecResult(0))).run("n", "true")
    assert changes.seen == ["create pod gki/gki-host-n on n", "delete pod gki/gki-host-n on n"]
    assert kube.log == [] and r.error is not None and "dry-run" in r.error.message


class Overlap:
    """An exec that takes a moment and counts how many run at once; `refuse`: that pod's
    exec is forbidden."""

    def __init__(self, refuse: str = "") -> None:
        self.running = self.peak = 0
        self.refuse = refuse

    async def __call__(self, kube_, ns, pod, *a, **k):
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        if pod == self.refuse:
            raise ApiError(403, "Forbidden", "{}", "POST",
                           f"/api/v1/namespaces/{ns}/pods/{pod}/exec")
        return ended(ExecResult(0, pod.encode()))


async def test_nodes_run_at_most_concurrency_at_a_time_and_a_refusal_is_one_nodes_result():
    kube, execs = FakeKube(), Overlap(refuse="gki-host-n3")
    results = await PodAccess(kube, SETTINGS, Changes(), exec_fn=execs).run_on_nodes(
        {f"n{i}": "true" for i in range(6)})
    assert execs.peak == SETTINGS.concurrency
    assert results["n0"].ok and not results["n3"].ok
    assert "may not create pods/exec" in results["n3"].error.message
    assert kube.pods == {}


async def test_a_script_whose_stream_lost_its_end_runs_again_and_then_fails_plainly():
    kube, calls = FakeKube(), []
    cut = ExecResult(0, b"KEY=v\nMORE=")  # the exit status came, the end of stdout did not

    async def flaky(kube_, ns, pod, *a, **k):
        calls.append(pod)
        return cut if len(calls) < 3 else ended(ExecResult(0, b"KEY=v\nMORE=w\n"))

    r = await PodAccess(kube, SETTINGS, Changes(), exec_fn=flaky).run("n", "true")
    assert (len(calls), r.ok, r.stdout) == (3, True, b"KEY=v\nMORE=w\n")

    async def always_cut(kube_, ns, pod, *a, **k):
        return cut

    r = await PodAccess(kube, SETTINGS, Changes(), exec_fn=always_cut).run("n", "true")
    assert not r.ok and "ended before the script's output did" in r.error.message
    assert "hostAccess: ssh" in r.error.remedy and kube.pods == {}


async def test_accesses_that_share_a_gate_keep_one_bound_between_them():
    """A run's steps each build their PodAccess; the run's one gate bounds them all."""
    kube, execs = FakeKube(), Overlap()
    gate = asyncio.Semaphore(SETTINGS.concurrency)
    steps = [PodAccess(kube, SETTINGS, Changes(), exec_fn=execs, gate=gate)
             for _ in range(3)]
    await asyncio.gather(*(a.run(f"n{i}-{j}", "true") for i, a in enumerate(steps)
                           for j in range(2)))
    assert execs.peak == SETTINGS.concurrency < 6


async def test_a_run_cancelled_while_its_create_is_on_the_wire_still_removes_the_pod():
    """Ctrl-C between the create's request and its answer: the pod lands on the API server
    after the cancel, and the cleanup waits for it before deleting it."""
    class SlowCreate(FakeKube):
        def send_json(self, method, path, body, *rest):
            time.sleep(0.3)  # the request is out; the answer comes after the cancel
            return super().send_json(method, path, body, *rest)

    kube = SlowCreate()
    run = asyncio.ensure_future(PodAccess(kube, SETTINGS, Changes(),
                                          exec_fn=_exec(ExecResult(0))).run("n", "true"))
    await asyncio.sleep(0.1)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert kube.log == ["create gki-host-n", "delete gki-host-n"] and kube.pods == {}
