"""Cordon, drain and uncordon a node, as `kubectl drain` does, for the changes that take a node
out of service (a reboot, an upgrade wave, a change of role).

Why the Eviction API and never a delete: an eviction is refused (429) while it would break a
PodDisruptionBudget, so draining waits for the budget instead of breaking it; and a Kata GPU
pod deleted by force leaves its VM holding the GPU until the host reboots. Pods are only
ever evicted with their own grace period.

What is left alone, as kubectl drain --ignore-daemonsets does: DaemonSet pods (their
controller would put them straight back, and kata-deploy and the operands are among them),
mirror pods (the kubelet owns them), and pods already finished. A pod no controller would
recreate is not evicted: the drain stops and names it, since evicting it loses it for good
(kubectl refuses it too, without --force).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from installer.cluster.apierrors import ApiError
from installer.cluster.facts import CORDONED_FOR
from installer.cluster.kube import Kube, holds_nvidia
from installer.permit import Permit, require_permit

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
KATA_RUNTIME_PREFIX = "kata"
EVICT_RETRY_SECONDS = 5.0  # kubectl drain's own pause after a 429
TERMINATING_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class DrainPlan:
    """What draining a node would do: the pods to evict, and the ones that stop it."""

    evict: tuple[str, ...]  # namespace/name
    unmanaged: tuple[str, ...]  # no controller would recreate them: the drain refuses

    @property
    def blocked(self) -> bool:
        return bool(self.unmanaged)


def controller_of(pod: dict[str, Any]) -> dict[str, Any] | None:
    """The owner reference of the controller that would recreate the pod, if any."""
    return next((ref for ref in (pod.get("metadata") or {}).get("ownerReferences") or []
                 if ref.get("controller")), None)


def _key(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def is_kata_gpu_pod(pod: dict[str, Any]) -> bool:
    """A pod in a Kata VM holding NVIDIA devices: what a node's Kata GPU change disrupts."""
    spec = pod.get("spec") or {}
    return (str(spec.get("runtimeClassName") or "").startswith(KATA_RUNTIME_PREFIX)
            and holds_nvidia(pod))


def drain_plan(pods: list[dict[str, Any]],
               select: Callable[[dict[str, Any]], bool] = lambda _pod: True) -> DrainPlan:
    """The pods of one node that a drain evicts (of those `select` picks), and the ones it
    refuses to touch."""
    evict, unmanaged = [], []
    for pod in pods:
        meta = pod.get("metadata") or {}
        phase = (pod.get("status") or {}).get("phase")
        kind = (controller_of(pod) or {}).get("kind")
        if (kind == "DaemonSet" or MIRROR_ANNOTATION in (meta.get("annotations") or {})
                or phase in ("Succeeded", "Failed") or not select(pod)):
            continue
        (evict if kind else unmanaged).append(_key(pod))
    return DrainPlan(tuple(sorted(evict)), tuple(sorted(unmanaged)))


def pods_on(kube: Kube, node: str) -> list[dict[str, Any]]:
    return list(kube.list_items("/api/v1/pods", fieldSelector=f"spec.nodeName={node}"))


# The installer's cordon is marked (CORDONED_FOR) and its uncordon removes the mark: a node
# the operator had cordoned stays cordoned, and a run resumed after an interruption (or a
# rollback) still uncordons the nodes it cordoned.


def cordoned_by_us(node: dict[str, Any]) -> bool:
    return CORDONED_FOR in ((node.get("metadata") or {}).get("annotations") or {})


def _set_unschedulable(kube: Kube, node: str, why: str | None) -> None:
    """One patch for the flag and its mark, so neither is ever set without the other."""
    kube.send_json("PATCH", f"/api/v1/nodes/{node}",
                   {"metadata": {"annotations": {CORDONED_FOR: why}},
                    "spec": {"unschedulable": True if why else None}},
                   "application/strategic-merge-patch+json")


async def cordon(kube: Kube, permit: Permit, node: str, why: str) -> None:
    require_permit(permit)
    await asyncio.to_thread(_set_unschedulable, kube, node, why)


async def uncordon(kube: Kube, permit: Permit, node: str) -> None:
    require_permit(permit)
    await asyncio.to_thread(_set_unschedulable, kube, node, None)


def _evict_once(kube: Kube, key: str) -> bool:
    """True when the pod is evicted (or already gone); False while a budget forbids it."""
    namespace, name = key.split("/", 1)
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}}
    try:
        kube.send_json("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction", body)
    except ApiError as exc:
        if exc.status == 404:
            return True
        if exc.status == 429:  # a PodDisruptionBudget says not now
            return False
        raise
    return True


class DrainTimeout(Exception):
    """The drain did not finish in time: `waiting` names the pods still there and why."""

    def __init__(self, node: str, waiting: dict[str, str]) -> None:
        said = "; ".join(f"{k} ({why})" for k, why in sorted(waiting.items()))
        super().__init__(f"draining {node} did not finish: {said}")
        self.node, self.waiting = node, waiting


async def evict_and_wait(kube: Kube, permit: Permit, node: str, keys: tuple[str, ...],
                         timeout: float, on_wait: Callable[[str], None] = lambda _s: None
                         ) -> None:
    """Evict each pod (retrying while a budget refuses) and wait until none is left on the
    node. Raises DrainTimeout naming what is left; the node stays cordoned for the caller
    to decide."""
    require_permit(permit)
    deadline = time.monotonic() + timeout
    pending = dict.fromkeys(keys, "not evicted yet")
    while pending:
        for key in [k for k, why in pending.items() if why != "evicted; terminating"]:
            done = await asyncio.to_thread(_evict_once, kube, key)
            pending[key] = "evicted; terminating" if done else "a PodDisruptionBudget refuses"
        present = {_key(p) for p in await asyncio.to_thread(pods_on, kube, node)}
        pending = {k: why for k, why in pending.items() if k in present}
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise DrainTimeout(node, pending)
        on_wait(f"{len(pending)} pod(s) still on {node}: "
                + ", ".join(sorted(pending)[:3]) + (" ..." if len(pending) > 3 else ""))
        # A budget's refusal is asked again after kubectl's pause; pods evicted and only
        # terminating are looked at again soon.
        refused = any(why != "evicted; terminating" for why in pending.values())
        pause = EVICT_RETRY_SECONDS if refused else TERMINATING_POLL_SECONDS
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
