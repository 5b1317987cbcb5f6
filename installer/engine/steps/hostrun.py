"""Run a command on hosts, each the way the plan reaches it: over SSH, or through its
host-access pod (hostAccess: pod). The probe, the host fixes and the host verification call
this one function, so a check gives the same verdict, and a fix the same backup and result,
whichever way the host is reached.

Before a run's first pod: the permissions pod mode needs are checked (one
SelfSubjectAccessReview each: a user without one is told which verb on which resource,
before anything is created), host-access pods an interrupted run left are deleted, and the
namespace is made ready for privileged pods - each a change through the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from installer.cluster import kube as kubeapi
from installer.engine.params import SshTarget
from installer.engine.runner import Context
from installer.errors import Problem, UserError
from installer.hosts.access import HostAccess, target
from installer.hosts.podaccess import PodAccess, PodSettings, leftovers
from installer.hosts.podrbac import check_pod_mode, namespace_step
from remote.ssh import Command, HostResult, ResultCallback, run_on_hosts

_READY, _PREPARING = "pod_mode_ready", "pod_mode_preparing"
_GATE = "pod_gate"  # one bound on the run's live host-access pods, across its steps


def _kube(ctx: Context) -> kubeapi.Kube:
    k: kubeapi.Kube | None = ctx.services.get("kube")
    if k is None:
        raise UserError("hostAccess: pod needs the cluster, not recorded facts", [Problem(
            "hostAccess", "the hosts are reached through pods on the cluster, and this run "
                          "has no cluster connection (--facts)",
            "run without --facts, or set hostAccess: ssh")])
    return k


def _exec_by_get(k: kubeapi.Kube) -> bool:
    """API servers before 1.31 authorize the exec WebSocket's upgrade as `get pods/exec`."""
    try:
        v = k.get_json("/version")
        return (int(v.get("major", "1")), int(str(v.get("minor", "0")).rstrip("+"))) < (1, 31)
    except (kubeapi.ApiError, ValueError):
        return True  # ask for both: the review of an unneeded verb costs nothing


async def _prepare(ctx: Context, path: str, k: kubeapi.Kube, settings: PodSettings) -> None:
    """Once per run, before its first host-access pod (see the module's docstring); steps
    side by side wait for the first to finish it."""
    async with ctx.services.setdefault(_PREPARING, asyncio.Lock()):
        if not ctx.services.get(_READY):
            await _prepare_once(ctx, path, k, settings)
            ctx.services[_READY] = True


async def _prepare_once(ctx: Context, path: str, k: kubeapi.Kube, settings: PodSettings
                        ) -> None:
    ns = settings.namespace
    try:
        found = await asyncio.to_thread(k.get_json, f"/api/v1/namespaces/{ns}")
        known = True
    except kubeapi.ApiError as exc:
        if exc.status not in (403, 404):
            raise
        found, known = None, exc.status == 404  # a 403: the check below names it
    step, body = namespace_step(ns, found)
    await asyncio.to_thread(check_pod_mode, k, ns, exec_by_get=_exec_by_get(k),
                            ns_step=step if known else None)
    if step == "create" and body is not None:
        await ctx.change(path, ns, f"create namespace {ns} for the host-access pods "
                         "(pod-security.kubernetes.io/enforce=privileged)",
                         partial(kubeapi.create_namespace, k, body=body))
    elif step == "label" and body is not None:
        await ctx.change(path, ns, f"label namespace {ns} pod-security.kubernetes.io/"
                         "enforce=privileged (the installer's own namespace)",
                         partial(kubeapi.label_namespace, k, name=ns,
                                 labels=body["metadata"]["labels"]))
    if found is not None:
        left = await asyncio.to_thread(leftovers, k, ns)
        access = PodAccess(k, settings, ctx.change, path)
        for name in left:
            await access.remove(name, "left by an interrupted run")


async def pod_access(ctx: Context, path: str) -> PodAccess:
    k = _kube(ctx)
    settings: PodSettings = ctx.services["pod_settings"]
    await _prepare(ctx, path, k, settings)
    gate = ctx.services.setdefault(_GATE, asyncio.Semaphore(max(1, settings.concurrency)))
    return PodAccess(k, settings, ctx.change, path, gate=gate)


async def run_on(ctx: Context, path: str, targets: Sequence[SshTarget], command: Command, *,
                 sudo: bool, on_result: ResultCallback | None = None
                 ) -> dict[str, HostResult]:
    """`command` on every target, SSH and pod ones side by side; one result per node.
    `sudo` is for SSH (a host-access pod's shell is root already)."""
    access: HostAccess = ctx.services["hosts"]
    by_ssh = [target(t) for t in targets if not t.pod]
    by_pod = [t.node for t in targets if t.pod]

    async def over_ssh() -> dict[str, HostResult]:
        if not by_ssh:
            return {}
        return await run_on_hosts(by_ssh, command, access.options,
                                  limit=ctx.services.get("ssh_limit", 50), sudo=sudo,
                                  sudo_password=access.sudo_password, on_result=on_result,
                                  **access.ssh_kwargs())

    async def through_pods() -> dict[str, HostResult]:
        if not by_pod:
            return {}
        pods = await pod_access(ctx, path)
        return await pods.run_on_nodes(dict.fromkeys(by_pod, command), on_result)

    ssh, pod = await asyncio.gather(over_ssh(), through_pods())
    return {**ssh, **pod}


async def run_one(ctx: Context, path: str, t: SshTarget, command: Command, *, sudo: bool,
                  until: Callable[[], Awaitable[None]] | None = None) -> HostResult:
    """`command` on one host. `until` (pod mode): awaited before its pod is removed."""
    if t.pod and until is not None:
        return await (await pod_access(ctx, path)).run(t.node, command, until)
    (result,) = (await run_on(ctx, path, [t], command, sudo=sudo)).values()
    return result
