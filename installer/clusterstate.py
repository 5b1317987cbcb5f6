"""Read what the diagnosis rules need from a live cluster (read-only).

Nodes and releases come from the same discovery the installer uses; pods, events and the
tails of failing pods' logs from the installer's namespaces, plus every pod that asks for
the Kata GPU runtime class wherever it runs. Host checks come from an optional probe.
"""

from __future__ import annotations

import asyncio
from typing import Any

from installer import kube
from installer.diagnose import CheckView, EventInfo, State
from installer.facts import ClusterFacts
from installer.verify import GPU_RUNTIME_CLASS, PodInfo

LOG_TAIL = 20


def pod_info(k: kube.Kube, pod: Any) -> PodInfo:
    statuses = pod.status.container_statuses or []
    waiting = next((s.state.waiting.reason for s in statuses
                    if s.state and s.state.waiting and s.state.waiting.reason), "")
    restarts = sum(s.restart_count or 0 for s in statuses)
    pending = next((c.message or "" for c in pod.status.conditions or []
                    if c.type == "PodScheduled" and c.status != "True"), "")
    tail: tuple[str, ...] = ()
    if waiting or restarts or pod.status.phase in ("Failed", "Succeeded"):
        tail = tuple(kube.log_tail(k, pod.metadata.namespace, pod.metadata.name, LOG_TAIL))
    return PodInfo(pod.metadata.namespace, pod.metadata.name, pod.spec.node_name,
                   pod.status.phase or "Unknown", dict(pod.metadata.labels or {}),
                   pod.spec.runtime_class_name, waiting, restarts, tail, pending)


def _read(k: kube.Kube, namespaces: tuple[str, ...]) -> tuple[Any, ...]:

    pods = [p for ns in namespaces for p in k.core().list_namespaced_pod(ns).items]
    seen = {(p.metadata.namespace, p.metadata.name) for p in pods}
    pods += [p for p in k.core().list_pod_for_all_namespaces().items
             if p.spec.runtime_class_name == GPU_RUNTIME_CLASS
             and (p.metadata.namespace, p.metadata.name) not in seen]
    events = [e for ns in {*namespaces, *(p.metadata.namespace for p in pods)}
              for e in k.core().list_namespaced_event(ns).items if e.type == "Warning"]
    policy = kube.read_cluster_policy(k)
    infos = tuple(pod_info(k, p) for p in pods)
    event_infos = tuple(EventInfo(e.metadata.namespace,
                                  f"{e.involved_object.kind}/{e.involved_object.name}",
                                  e.reason or "", e.message or "", e.type or "")
                        for e in events)
    return infos, event_infos, policy


async def read_state(k: kube.Kube, cluster: ClusterFacts, namespaces: tuple[str, ...],
                     host_checks: dict[str, list[dict[str, Any]]] | None = None,
                     nvswitch_nodes: tuple[str, ...] = ()) -> State:
    pods, events, policy = await asyncio.to_thread(_read, k, namespaces)
    checks = {node: tuple(CheckView(r["name"], r["status"], tuple(r.get("evidence", ())),
                                    r.get("remedy", "")) for r in results)
              for node, results in (host_checks or {}).items()}
    return State(nodes=cluster.nodes, runtime_classes=cluster.runtime_classes,
                 cluster_policy=policy, releases=cluster.releases,
                 nfd_workers=cluster.nfd_workers, pods=pods, events=events,
                 host_checks=checks, nvswitch_nodes=nvswitch_nodes,
                 operator_namespace=namespaces[-1], kata_namespace=namespaces[0])
