"""One reading of a pod (plain JSON, as the API serves it), shared by the pod watch, the
wizard's pod tables, verification and the diagnosis rules, so all of them say the same
thing about the same pod.

Why the reason is picked this way: a container's waiting reason (CrashLoopBackOff,
ImagePullBackOff) is what an operator acts on; a terminated reason other than Completed
comes next; then the pod's own reason (Evicted); then why it is not scheduled. A pod whose
init containers have not all finished is read as kubectl reads it (`Init:CrashLoopBackOff`,
`Init:1/4`), naming the init container it is held in: the GPU Operator's operands fail there
first (vfio-pci-validation, k8s-driver-manager), where containerStatuses say nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from installer.cluster.capacity import format_quantity, pod_requests


@dataclass(frozen=True)
class PodReading:
    """A pod as every reader sees it: the tables' columns first (namespace to reason), then
    what verification and the rules judge by; `log_tail` is filled only where a log is quoted
    (installer.diagnosis.clusterstate.pod_info)."""

    namespace: str
    name: str
    phase: str
    node: str | None = None
    ready: str = ""  # "1/2": ready containers / containers
    restarts: int = 0
    reason: str = ""  # the likeliest reason, as the tables show it
    waiting_reason: str = ""
    unschedulable: str = ""  # the PodScheduled condition's message while it is not True
    unschedulable_reason: str = ""  # ... and its reason (Unschedulable, SchedulingGated)
    labels: dict[str, str] = field(default_factory=dict)
    runtime_class: str | None = None
    containers: tuple[str, ...] = ()
    init_container: str = ""  # the init container the pod is held in ("" once all finished)
    # What the scheduler counts: the containers' requests and the RuntimeClass's overhead
    # (spec.overhead, set at admission), as the API server has them.
    requests: dict[str, str] = field(default_factory=dict)
    overhead: dict[str, str] = field(default_factory=dict)
    log_tail: tuple[str, ...] = ()  # the log's last lines (of init_container when held)
    init_containers: tuple[str, ...] = ()  # the init containers' names, in order
    created: str = ""  # metadata.creationTimestamp (the tables' AGE)


def _state_reason(statuses: list[dict[str, Any]], state: str) -> str:
    return next((r for s in statuses
                 if (r := ((s.get("state") or {}).get(state) or {}).get("reason"))
                 and not (state == "terminated" and r == "Completed")), "")


def _init_hold(spec: dict[str, Any], status: dict[str, Any]) -> tuple[str, str, str]:
    """(kubectl's Init: status, the waiting reason, the init container) for the first init
    container that has not finished well, as kubectl's printer walks them; empty when none."""
    inits = spec.get("initContainers") or []
    for i, s in enumerate(status.get("initContainerStatuses") or []):
        state = s.get("state") or {}
        done = state.get("terminated") or {}
        if done and done.get("exitCode") == 0:
            continue
        waiting = (state.get("waiting") or {}).get("reason") or ""
        if done:
            shown = f"Init:{done.get('reason') or 'Error'}"
        elif waiting and waiting != "PodInitializing":
            shown = f"Init:{waiting}"
        else:
            shown = f"Init:{i}/{len(inits)}"
        return shown, waiting, s.get("name", "")
    return "", "", ""


def read_pod(pod: dict[str, Any]) -> PodReading:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    held, init_waiting, init_container = _init_hold(spec, status)
    waiting = init_waiting or _state_reason(statuses, "waiting")
    scheduled = next((c for c in status.get("conditions") or []
                      if c.get("type") == "PodScheduled" and c.get("status") != "True"), None)
    reason = (held or waiting or _state_reason(statuses, "terminated") or status.get("reason")
              or (scheduled or {}).get("reason") or "")
    containers = tuple(c.get("name", "") for c in spec.get("containers") or [])
    return PodReading(
        namespace=meta.get("namespace", ""), name=meta["name"],
        phase=status.get("phase") or "Unknown", node=spec.get("nodeName"),
        ready=f"{sum(1 for s in statuses if s.get('ready'))}/{len(containers)}",
        restarts=sum(s.get("restartCount") or 0
                     for s in (*statuses, *(status.get("initContainerStatuses") or []))),
        reason=reason,
        waiting_reason=waiting, unschedulable=(scheduled or {}).get("message") or "",
        unschedulable_reason=(scheduled or {}).get("reason") or "",
        labels=dict(meta.get("labels") or {}), runtime_class=spec.get("runtimeClassName"),
        containers=containers, init_container=init_container,
        requests=_requests(spec), overhead=dict(spec.get("overhead") or {}),
        init_containers=tuple(c.get("name", "") for c in spec.get("initContainers") or []),
        created=meta.get("creationTimestamp") or "")


def _requests(spec: dict[str, Any]) -> dict[str, str]:
    """The pod's own requests as the scheduler sums them (overhead apart), for messages."""
    try:
        return {r: format_quantity(r, v) for r, v in pod_requests(spec, overhead={}).items()}
    except ValueError:  # the API server validates quantities; a hand-made pod may not
        return {}


def list_pods(kube: Any, namespace: str | None = None, **query: str
              ) -> Iterator[dict[str, Any]]:
    """The pods of a namespace (or of the cluster), page by page, as plain JSON."""
    path = f"/api/v1/namespaces/{namespace}/pods" if namespace else "/api/v1/pods"
    return kube.list_items(path, **query)


OBJECT_PATHS = {"pod": "/api/v1/namespaces/{namespace}/pods/{name}",
                "node": "/api/v1/nodes/{name}"}


def read_object(kube: Any, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    """One pod or node as plain JSON (what `d` describes and `y` shows), raising ApiError."""
    return kube.get_json(OBJECT_PATHS[kind].format(namespace=namespace, name=name))


def object_events(kube: Any, kind: str, name: str, namespace: str = "") -> list[dict[str, Any]]:
    """The events about one object, as `kubectl describe` lists them: by the involved
    object's kind and name (a node's events live in the `default` namespace, so a node's are
    read cluster-wide)."""
    where = f"/api/v1/namespaces/{namespace}/events" if namespace else "/api/v1/events"
    selector = f"involvedObject.kind={kind.capitalize()},involvedObject.name={name}"
    return list(kube.list_items(where, fieldSelector=selector))
