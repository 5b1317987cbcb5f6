"""Pod mode: reach a host through the cluster instead of SSH. Per node, a short-lived
privileged pod pinned to it, with the host's root mounted at /host; the probe or a fix script
runs in the host's own shell (`chroot /host sh -s`, the script on stdin, through the API
server's pods/exec), and the answer comes back as the same HostResult an SSH run gives, so
probe parsing and fix results need no second path.

Why a pod per call and not a DaemonSet: the pod is a change the plan shows (created, then
removed, through the engine's `Context.change`), lives only while its node is worked on,
and exists only on the nodes the run reaches. Leftovers (an installer killed mid-run) carry
the installer's labels and an active deadline: they stop on their own, are found by label,
and the next run for the node deletes its own first (the name is the node's).

Why `chroot` and root `/`: the fix scripts act on the running system (systemctl,
update-grub, modprobe) only when their host root is `/` (remote.fixes.base), and the probe
reads the host as it reads it over SSH. `hostPID` lets those commands see the host's
processes; no host network is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from installer.cluster import kube as kubeapi
from installer.cluster.apierrors import ApiError
from installer.cluster.podexec import ExecResult, exec_in_pod
from installer.errors import UserError
from installer.permit import Permit
from remote.ssh import Command, HostError, HostResult, ResultCallback, Script

MANAGED_BY = ("app.kubernetes.io/managed-by", "gpu-kata-installer")
HOST_ACCESS_LABEL = "gpu-kata-installer.io/host-access"
LEFTOVER_SELECTOR = f"{MANAGED_BY[0]}={MANAGED_BY[1]},{HOST_ACCESS_LABEL}"
HOST_ROOT = "/host"
CONTAINER = "host"
EXEC_COMMAND = ("chroot", HOST_ROOT, "sh", "-s")
# PID 1 of the pod: waits, and ends at once on the kubelet's TERM (a graceful delete then
# takes a second, not the grace period).
_IDLE = "trap 'exit 0' TERM INT; while :; do sleep 1 & wait $!; done"
_GONE_SECONDS = 60.0
_TRIES = 3  # execs of one script whose stream lost the end of its output


class Change(Protocol):
    """The engine's `Context.change` as this module calls it (hosts sits below the engine)."""

    def __call__(self, path: str, target: str, description: str,
                 action: Callable[[Permit], Awaitable[Any]],
                 detail: dict[str, Any] | None = None) -> Awaitable[Any]: ...


Exec = Callable[..., Awaitable[ExecResult]]


@dataclass(frozen=True)
class PodSettings:
    """What the pods are made of: the image (already under images.registry when that is
    set: the caller mirrors it), the namespace, limits."""

    image: str
    namespace: str
    concurrency: int = 20
    start_seconds: float = 120.0
    command_timeout: float = 300.0
    pull_secrets: tuple[str, ...] = ()


def _polls() -> Iterator[float]:
    """Pauses between reads of a pod: short at first (a pod starts or goes within a second
    on a warm node), then once a second."""
    yield from (0.1, 0.2, 0.4)
    while True:
        yield 1.0


def pod_name(node: str) -> str:
    """The node's pod: `gki-host-<node>`, shortened with a hash when the node's name is
    long (a pod name is a DNS subdomain of at most 253 characters; kept to 63, a label's
    length, so it can name things too)."""
    name = f"gki-host-{node}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(node.encode()).hexdigest()[:10]
    return f"{name[:52].rstrip('-.')}-{digest}"


def manifest(node: str, settings: PodSettings) -> dict[str, Any]:
    """The pod for `node` (pure: the plan shows it as the change's detail)."""
    lifetime = int(settings.start_seconds + settings.command_timeout + _GONE_SECONDS)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(node), "namespace": settings.namespace,
                     "labels": {MANAGED_BY[0]: MANAGED_BY[1], HOST_ACCESS_LABEL: "true"},
                     "annotations": {"gpu-kata-installer.io/node": node}},
        "spec": {
            "nodeName": node,  # pinned: no scheduler, and a cordoned node is still reached
            "hostPID": True,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": lifetime,  # a leftover stops on its own
            "terminationGracePeriodSeconds": 10,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],  # every taint (NoSchedule, NoExecute)
            **({"imagePullSecrets": [{"name": s} for s in settings.pull_secrets]}
               if settings.pull_secrets else {}),
            "containers": [{
                "name": CONTAINER, "image": settings.image,
                "command": ["sh", "-c", _IDLE],
                "securityContext": {"privileged": True},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "volumeMounts": [{"name": "host-root", "mountPath": HOST_ROOT,
                                  "mountPropagation": "HostToContainer"}],
            }],
            "volumes": [{"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}}],
        },
    }


END = b"@gki-end"  # the stdin script's last line of stdout: its presence proves it all came


def stdin_script(command: Command) -> bytes:
    """What the host's shell reads on stdin: the script as one subshell with stdin from
    /dev/null (nothing it runs can eat the rest of the script; its own `exit` ends only the
    subshell, so the marker still follows), then its end marker, then
    `exit`, so the shell ends without an end of stdin - the v4 exec protocol cannot send
    one. The marker is there because an exec stream can lose the end of stdout and still
    report the exit status (kubernetes/kubernetes#124571): without it, a probe cut short
    would read as a host with less on it."""
    body, args = (command.body, command.args) if isinstance(command, Script) else (command, ())
    return (f"set -- {shlex.join(args)}\n(\n{body}\n) </dev/null\n"
            f"gki_rc=$?\nprintf '\\n{END.decode()} %d\\n' \"$gki_rc\"\nexit \"$gki_rc\"\n"
            ).encode()


def complete_stdout(stdout: bytes) -> bytes | None:
    """stdout without the end marker stdin_script adds, or None when the marker is
    missing (the stream lost the end)."""
    head, sep, tail = stdout.rpartition(b"\n" + END + b" ")
    if not sep or not tail.rstrip(b"\n").lstrip(b"-").isdigit():
        return None
    return head


_WAITING_BAD = re.compile(r"ErrImagePull|ImagePullBackOff|InvalidImageName|CreateContainer"
                          r"ConfigError|CreateContainerError|RunContainerError")


def _pod_state(pod: dict[str, Any] | None) -> tuple[str, str]:
    """(phase, why it is not running yet) of the pod as read."""
    if pod is None:
        return "Gone", "the pod is gone"
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    for c in status.get("containerStatuses") or []:
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            return phase, f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    return phase, str(status.get("reason") or status.get("message") or phase)


class PodAccess:
    """Runs commands on hosts through per-node pods. `change` is the engine's
    Context.change; nothing here creates or deletes a pod around it."""

    def __init__(self, kube: kubeapi.Kube, settings: PodSettings, change: Change,
                 path: str = "host-access", exec_fn: Exec = exec_in_pod,
                 gate: asyncio.Semaphore | None = None) -> None:
        self.kube, self.settings, self.change, self.path = kube, settings, change, path
        self._exec = exec_fn
        # at most settings.concurrency pods alive at once: a run shares one gate across its
        # steps (side-by-side verifications, a wave's chains), so the bound is the run's
        self.gate = gate or asyncio.Semaphore(max(1, settings.concurrency))
        self._creating: dict[str, asyncio.Future[Any]] = {}  # pod name -> its create

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            return self.kube.get_json(f"/api/v1/namespaces/{self.settings.namespace}/pods/"
                                      f"{name}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            return None

    async def _delete(self, node: str, name: str) -> None:
        await self.remove(name, f"on {node} (host access; graceful)")

    async def remove(self, name: str, why: str) -> None:
        """Delete the pod `name` (graceful, never forced) and wait until it is gone."""
        ns = self.settings.namespace

        async def act(permit: Permit) -> None:
            await kubeapi.delete_pod(self.kube, permit, ns, name)

        await self.change(self.path, f"{ns}/{name}", f"delete pod {ns}/{name} {why}", act)
        deadline, pause = time.monotonic() + _GONE_SECONDS, _polls()
        while time.monotonic() < deadline and await asyncio.to_thread(self._read, name):
            await asyncio.sleep(next(pause))

    async def _start(self, node: str, name: str) -> HostError | None:
        """Create the pod and wait until it runs; None when it does, else why not."""
        ns, body = self.settings.namespace, manifest(node, self.settings)
        if await asyncio.to_thread(self._read, name) is not None:
            await self._delete(node, name)  # an interrupted run's
        made: list[bool] = []

        async def act(permit: Permit) -> None:
            await kubeapi.create_pod(self.kube, permit, ns, body)
            made.append(True)

        # Cancelled mid-request (Ctrl-C), the create still lands on the API server; it runs
        # on as a task of its own, and _run's cleanup waits for it before deleting the pod.
        creating = asyncio.ensure_future(self.change(
            self.path, f"{ns}/{name}", f"create pod {ns}/{name} on {node} (host access: "
            "privileged, host root at /host; removed after)", act, {"manifest": body}))
        self._creating[name] = creating
        await asyncio.shield(creating)
        if not made:  # a dry-run: the pod's creation and removal are only shown
            await self._delete(node, name)
            return HostError("error", f"dry-run: pod {ns}/{name} is not created, so the host "
                             "is not reached", "run without --dry-run, or use recorded facts")
        deadline, pause = time.monotonic() + self.settings.start_seconds, _polls()
        while True:
            phase, why = _pod_state(await asyncio.to_thread(self._read, name))
            if phase == "Running":
                return None
            if phase in ("Succeeded", "Failed", "Gone") or _WAITING_BAD.search(why) \
                    or time.monotonic() > deadline:
                return HostError(
                    "unreachable", f"pod {ns}/{name} did not start on {node}: {why}",
                    f"check that nodes can pull {self.settings.image} (hostAccess.podImage, "
                    "images.registry and images.pullSecrets for a private registry) and "
                    f"that {ns} admits privileged pods (`kubectl describe pod -n {ns} {name}`)")
            await asyncio.sleep(next(pause))

    async def run(self, node: str, command: Command,
                  until: Callable[[], Awaitable[None]] | None = None) -> HostResult:
        """Run `command` as root in `node`'s root, through its pod; the pod is removed
        afterwards, also when this fails or is cancelled. `until`: awaited before the pod
        is removed - a reboot's script leaves the reboot to a background process of the
        pod's, which a removed pod's processes would take with them."""
        async with self.gate:
            return await self._run(node, command, until)

    async def _run(self, node: str, command: Command,
                   until: Callable[[], Awaitable[None]] | None) -> HostResult:
        ns, name = self.settings.namespace, pod_name(node)
        where, started = f"pod {ns}/{name}", time.monotonic()
        try:
            failed = await self._start(node, name)
            if failed is not None:
                return HostResult(node, where, error=failed,
                                  duration=time.monotonic() - started)
            # Every script run here may run again (the probe reads; a fix's edits are
            # idempotent): one whose stream lost its end is run again in the same pod. A
            # reboot (`until`) is never run twice.
            for _ in range(1 if until is not None else _TRIES):
                r = await self._exec(self.kube, ns, name, EXEC_COMMAND, stdin_script(command),
                                     container=CONTAINER,
                                     timeout=self.settings.command_timeout)
                stdout = complete_stdout(r.stdout)
                if stdout is not None or r.timed_out:
                    break
            if until is not None and r.exit_status == 0:
                await until()
        finally:
            creating = self._creating.pop(name, None)
            if creating is not None:
                await asyncio.wait([creating])
            if await asyncio.to_thread(self._read, name) is not None:
                await asyncio.shield(self._delete(node, name))
        error = None
        if r.exit_status is None:
            error = HostError("timeout" if r.timed_out else "error",
                              f"{where}: {r.failure}",
                              "raise ssh.commandTimeout" if r.timed_out else
                              f"check the pod's image has chroot and the host has sh "
                              f"(`kubectl logs -n {ns} {name}`)")
        elif stdout is None and until is None:
            error = HostError("error", f"{where}: the exec stream ended before the script's "
                              f"output did ({_TRIES} tries; exit status {r.exit_status})",
                              "an API server or kubelet dropping the end of exec output "
                              "(kubernetes/kubernetes#124571): run again, or reach this "
                              "node with hostAccess: ssh")
        return HostResult(node, where, r.exit_status, r.stdout if stdout is None else stdout,
                          r.stderr, error, time.monotonic() - started)

    async def run_on_nodes(self, commands: dict[str, Command],
                           on_result: ResultCallback | None = None) -> dict[str, HostResult]:
        """`run` on every node, at most `settings.concurrency` at a time; one node's failure
        is its result, never the others' stop."""
        async def one(node: str, command: Command) -> HostResult:
            try:
                r = await self.run(node, command)
            except UserError as exc:  # refused or unreachable API: said per node
                r = HostResult(node, f"pod {self.settings.namespace}/{pod_name(node)}",
                               error=HostError("error", exc.summary,
                                               exc.problems[0].fix if exc.problems else ""))
            if on_result is not None:
                out = on_result(r)
                if asyncio.iscoroutine(out):
                    await out
            return r

        results = await asyncio.gather(*(one(n, c) for n, c in commands.items()))
        return {r.name: r for r in results}


def leftovers(kube: kubeapi.Kube, namespace: str) -> list[str]:
    """The host-access pods in `namespace` (a run killed before its cleanup), by label."""
    return [p["metadata"]["name"] for p in kube.list_items(
        f"/api/v1/namespaces/{namespace}/pods", labelSelector=LEFTOVER_SELECTOR)]
