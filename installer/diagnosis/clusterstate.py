"""Read what the diagnosis rules need from a live cluster (read-only).

Nodes and releases come from the same discovery the installer uses; pods, events and the
tails of failing pods' logs from the installer's namespaces, plus every pod that asks for
the Kata GPU runtime class wherever it runs. Host checks come from an optional probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from installer.charts.verify import GPU_RUNTIME_CLASS
from installer.cluster import kube
from installer.cluster.facts import ClusterFacts, ProbeFailure
from installer.cluster.podread import PodReading, list_pods, read_pod
from installer.diagnosis.rules import CheckView, EventInfo, ReadError, State
from installer.hosts.checks import CheckResult

LOG_TAIL = 20


def _worth_a_log(r: PodReading) -> bool:
    """Failing, restarted, held in an init container or finished: the pods whose log the
    rules quote as evidence."""
    return (bool(r.waiting_reason or r.restarts or r.init_container)
            or r.phase in ("Failed", "Succeeded"))


def pod_info(k: kube.Kube, pod: dict[str, Any],
             wants_log: Callable[[PodReading], bool] = _worth_a_log) -> PodReading:
    """A pod (plain JSON) as verification and the rules read it, with its log's tail when
    `wants_log` says so (each tail is two API calls: keep pollers to the pods they quote)."""
    r = read_pod(pod)
    tail: tuple[str, ...] = ()
    if wants_log(r):
        tail = tuple(kube.log_tail(k, r.namespace, r.name, LOG_TAIL, r.init_container))
    return replace(r, log_tail=tail) if tail else r


@dataclass(frozen=True)
class Listing:
    """The pods and events (plain JSON) of some namespaces, listed once: the troubleshoot
    screen draws its tables from them and hands them to the rules, instead of both listing."""

    namespaces: tuple[str, ...]
    pods: tuple[dict[str, Any], ...]
    events: tuple[dict[str, Any], ...]
    errors: tuple[ReadError, ...] = ()  # namespaces that could not be read, and why


def list_namespaces(k: kube.Kube, namespaces: tuple[str, ...]) -> Listing:
    pods: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    errors: list[ReadError] = []
    for ns in namespaces:
        try:
            pods += list_pods(k, ns)
            events += k.list_items(f"/api/v1/namespaces/{ns}/events")
        except kube.ApiError as exc:  # a partial view still helps; say what could not be read
            if exc.status != 404:
                errors.append(exc.read)
    return Listing(namespaces, tuple(pods), tuple(events), tuple(errors))


def _read(k: kube.Kube, namespaces: tuple[str, ...], listing: Listing | None) -> tuple[Any, ...]:
    if listing is None or listing.namespaces != namespaces:
        listing = list_namespaces(k, namespaces)
    errors = list(listing.errors)
    pods = list(listing.pods)
    seen = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
    try:  # a context confined to some namespaces cannot list the cluster's pods
        pods += [p for p in list_pods(k)
                 if (p.get("spec") or {}).get("runtimeClassName") == GPU_RUNTIME_CLASS
                 and (p["metadata"]["namespace"], p["metadata"]["name"]) not in seen]
    except kube.ApiError as exc:
        errors.append(exc.read)
    events = [e for e in listing.events if e.get("type") == "Warning"]
    for ns in sorted({p["metadata"]["namespace"] for p in pods} - {*namespaces}):
        try:
            events += k.list_items(f"/api/v1/namespaces/{ns}/events",
                                   fieldSelector="type=Warning")
        except kube.ApiError as exc:
            errors.append(exc.read)
    try:
        policy = kube.read_cluster_policy(k)
    except kube.ApiError as exc:
        errors.append(exc.read)
        policy = None
    infos = tuple(pod_info(k, p) for p in pods)
    event_infos = tuple(EventInfo(e["metadata"]["namespace"],
                                  f"{e['involvedObject'].get('kind', '')}/"
                                  f"{e['involvedObject'].get('name', '')}",
                                  e.get("reason") or "", e.get("message") or "",
                                  e.get("type") or "")
                        for e in events)
    return infos, event_infos, policy, tuple(errors)


def check_views(host_checks: Mapping[str, Sequence[CheckResult]]
                ) -> dict[str, tuple[CheckView, ...]]:
    """The host checks' results as the rules read them."""
    return {node: tuple(CheckView(r.name, r.status, tuple(r.evidence), r.remedy, r.summary,
                                  r.ignored) for r in results)
            for node, results in host_checks.items()}


def nvswitch_nodes_of(hosts: Mapping[str, Any]) -> tuple[str, ...]:
    """The probed hosts that have NVSwitches (what the nvswitch rule needs beside the logs)."""
    return tuple(n for n, h in hosts.items() if not isinstance(h, ProbeFailure) and h.nvswitches)


async def read_state(k: kube.Kube, cluster: ClusterFacts, namespaces: tuple[str, ...],
                     host_checks: Mapping[str, Sequence[CheckResult]] | None = None,
                     nvswitch_nodes: tuple[str, ...] = (), listing: Listing | None = None
                     ) -> State:
    """`listing`: the namespaces' pods and events when the caller has just listed them."""
    pods, events, policy, unread = await asyncio.to_thread(_read, k, namespaces, listing)
    checks = check_views(host_checks or {})
    return State(nodes=cluster.nodes, runtime_classes=cluster.runtime_classes,
                 cluster_policy=policy, releases=cluster.releases,
                 nfd_workers=cluster.nfd_workers, pods=pods, events=events,
                 host_checks=checks, nvswitch_nodes=nvswitch_nodes,
                 operator_namespace=namespaces[-1], kata_namespace=namespaces[0],
                 unread=tuple(dict.fromkeys((*cluster.unread, *unread))))  # each once
