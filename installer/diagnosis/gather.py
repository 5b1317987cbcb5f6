"""What a support bundle reads beyond the rules' state, must-gather style: every event of the
relevant namespaces and of the nodes, each container's current and previous log, the GPU
nodes described, and the versions of everything that runs.

Why separate from installer.diagnosis.clusterstate: the rules read little (Warning events,
the tails of failing pods' logs) and run on every refresh of the troubleshoot screen; a
bundle is made once and is read by someone who cannot ask the cluster again, so it reads
everything, bounded, and says what it had to leave out or could not read (`Gathered.notes`).
Reads only. The layout is pure functions of the API's JSON so tests need no cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from installer.cluster import kube
from installer.cluster.facts import GPU_PRESENT_LABEL, NFD_GPU_LABEL, ReleaseFacts
from installer.cluster.podread import list_pods, object_events, read_object
from installer.diagnosis.describe import describe_node

# Bounds: a cluster of many GPU nodes runs an operand pod per node and component; a bundle
# must stay small enough to attach to a ticket, and says what these left out.
LOG_TAIL_LINES = 500
LOG_LIMIT_BYTES = 256 * 1024
MAX_LOG_PODS = 60
MAX_EVENTS = 5000
MAX_NODE_DESCRIBES = 50
KATA_VERSION_ANNOTATION = "katacontainers.io/kata-version"
# The labels NVIDIA's must-gather finds GPU nodes by: NFD's PCI vendor labels (10de: NVIDIA)
# and the operator's own.
GPU_NODE_LABELS = (NFD_GPU_LABEL, "feature.node.kubernetes.io/pci-0302_10de.present",
                   "feature.node.kubernetes.io/pci-0300_10de.present", GPU_PRESENT_LABEL)


@dataclass
class Gathered:
    """Bundle files (name -> text) and notes: what was cut, what could not be read."""

    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def why(exc: Exception) -> str:
    """An API refusal in one line: the status and the server's own words."""
    if isinstance(exc, kube.ApiError):
        said = exc.read.said.strip().splitlines()[0] if exc.read.said.strip() else ""
        return f"HTTP {exc.status} {exc.reason}" + (f": {said}" if said else "")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# -- events -------------------------------------------------------------------------------

def event_record(ev: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as the bundle lists it. Events made through events.k8s.io/v1 carry
    `eventTime` and `series` instead of first/last timestamps and `count`: both are read."""
    obj = ev.get("involvedObject") or {}
    series = ev.get("series") or {}
    first = ev.get("firstTimestamp") or ev.get("eventTime") or ""
    last = (ev.get("lastTimestamp") or series.get("lastObservedTime") or ev.get("eventTime")
            or first)
    source = ev.get("source") or {}
    return {"namespace": (ev.get("metadata") or {}).get("namespace", ""),
            "type": ev.get("type") or "", "reason": ev.get("reason") or "",
            "object": f"{obj.get('kind', '')}/{obj.get('name', '')}",
            "count": ev.get("count") or series.get("count") or 1,
            "firstSeen": str(first), "lastSeen": str(last),
            "source": source.get("component") or ev.get("reportingComponent") or "",
            "message": (ev.get("message") or "").strip()}


def events_text(records: Sequence[Mapping[str, Any]]) -> str:
    """One event a line, oldest last-seen first, as an operator scans `kubectl get events`."""
    header = "LAST SEEN\tFIRST SEEN\tCOUNT\tTYPE\tREASON\tNAMESPACE\tOBJECT\tMESSAGE"
    lines = [header] + [
        f"{r['lastSeen']}\t{r['firstSeen']}\t{r['count']}\t{r['type']}\t{r['reason']}\t"
        f"{r['namespace'] or '-'}\t{r['object']}\t{' '.join(str(r['message']).split())}"
        for r in records]
    return "\n".join(lines) + "\n"


def sorted_events(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each event once (a node's may be listed twice), by last seen, then first seen."""
    seen: dict[str, dict[str, Any]] = {}
    for ev in items:
        meta = ev.get("metadata") or {}
        seen[meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"] = event_record(ev)
    return sorted(seen.values(), key=lambda r: (r["lastSeen"], r["firstSeen"]))


def read_events(k: kube.Kube, namespaces: Sequence[str], out: Gathered) -> list[dict[str, Any]]:
    """Every event (Normal and Warning) of `namespaces` and every Node event, the newest
    MAX_EVENTS of them."""
    items: list[dict[str, Any]] = []
    for ns in namespaces:
        try:
            items += k.list_items(f"/api/v1/namespaces/{ns}/events")
        except kube.ApiError as exc:
            out.notes.append(f"events of namespace {ns}: could not be read ({why(exc)})")
    try:
        items += k.list_items("/api/v1/events", fieldSelector="involvedObject.kind=Node")
    except kube.ApiError as exc:
        out.notes.append(f"node events: could not be read ({why(exc)})")
    records = sorted_events(items)
    if len(records) > MAX_EVENTS:
        out.notes.append(f"events: the oldest {len(records) - MAX_EVENTS} of {len(records)} "
                         f"left out (the newest {MAX_EVENTS} kept)")
        records = records[-MAX_EVENTS:]
    return records


# -- pods and logs ---------------------------------------------------------------------------

def read_pods(k: kube.Kube, namespaces: Sequence[str], elsewhere: Iterable[tuple[str, str]],
              out: Gathered) -> list[dict[str, Any]]:
    """The pods of `namespaces` and the (namespace, name) pods `elsewhere` (Kata GPU pods in
    other namespaces), as plain JSON."""
    pods: list[dict[str, Any]] = []
    for ns in namespaces:
        try:
            pods += list_pods(k, ns)
        except kube.ApiError as exc:
            out.notes.append(f"pods of namespace {ns}: could not be read ({why(exc)})")
    for ns, name in elsewhere:
        if ns in namespaces:
            continue
        try:
            pods.append(read_object(k, "pod", name, ns))
        except kube.ApiError as exc:
            out.notes.append(f"pod {ns}/{name}: could not be read ({why(exc)})")
    return pods


def containers_of(pod: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(container, restart count) for each init container, then each container."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    restarts = {s.get("name"): s.get("restartCount") or 0
                for s in (*(status.get("initContainerStatuses") or []),
                          *(status.get("containerStatuses") or []))}
    return [(c.get("name", ""), restarts.get(c.get("name"), 0))
            for c in (*(spec.get("initContainers") or []), *(spec.get("containers") or []))]


def _pod_key(pod: Mapping[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _troubled(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    statuses = [*(status.get("initContainerStatuses") or []),
                *(status.get("containerStatuses") or [])]
    return status.get("phase") not in ("Running", "Succeeded") or any(
        (s.get("restartCount") or 0) > 0 or "waiting" in (s.get("state") or {})
        for s in statuses)


def log_pods(pods: Sequence[dict[str, Any]], out: Gathered) -> list[dict[str, Any]]:
    """The pods whose logs are read: the troubled ones first (not running, restarted or
    waiting), up to MAX_LOG_PODS; the rest are named in the notes."""
    ordered = sorted(pods, key=lambda p: (not _troubled(p), _pod_key(p)))
    if len(ordered) > MAX_LOG_PODS:
        left = ordered[MAX_LOG_PODS:]
        out.notes.append(
            f"logs: {len(left)} of {len(ordered)} pods left out (the first {MAX_LOG_PODS}, "
            f"troubled pods first, kept): " + ", ".join("/".join(_pod_key(p)) for p in left))
    return ordered[:MAX_LOG_PODS]


def read_logs(k: kube.Kube, pods: Sequence[dict[str, Any]], out: Gathered) -> None:
    """logs/<ns>/<pod>/<container>.log for each container, init containers included, and
    .previous.log where the container restarted: the crash before the current attempt is
    usually the one that explains it. Each log is its last LOG_TAIL_LINES lines, at most
    LOG_LIMIT_BYTES."""
    for pod in log_pods(pods, out):
        ns, name = _pod_key(pod)
        for container, restarts in containers_of(pod):
            for previous in ((False, True) if restarts > 0 else (False,)):
                where = f"logs/{ns}/{name}/{container}{'.previous' if previous else ''}.log"
                try:
                    text = k.get_text(f"/api/v1/namespaces/{ns}/pods/{name}/log",
                                      container=container, tailLines=str(LOG_TAIL_LINES),
                                      limitBytes=str(LOG_LIMIT_BYTES),
                                      previous=str(previous).lower())
                except (kube.ApiError, kube.ApiUnreachable) as exc:
                    out.notes.append(f"{where}: could not be read ({why(exc)})")
                    continue
                out.files[where] = text if text.endswith("\n") or not text else text + "\n"
                if text.count("\n") >= LOG_TAIL_LINES or len(text.encode()) >= LOG_LIMIT_BYTES:
                    out.notes.append(f"{where}: only the last {LOG_TAIL_LINES} lines "
                                     f"(at most {LOG_LIMIT_BYTES // 1024} KiB) kept")


# -- nodes ---------------------------------------------------------------------------------

def carries_gpu(node: Mapping[str, Any]) -> bool:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return any(labels.get(label) == "true" for label in GPU_NODE_LABELS)


def describe_gpu_nodes(k: kube.Kube, nodes: Sequence[dict[str, Any]], out: Gathered,
                       now: datetime) -> None:
    """describe-nodes/<node>.txt for each node that carries a GPU, with its events."""
    gpu = [n for n in nodes if carries_gpu(n)]
    if len(gpu) > MAX_NODE_DESCRIBES:
        out.notes.append(f"node describes: {len(gpu) - MAX_NODE_DESCRIBES} of {len(gpu)} GPU "
                         f"nodes left out (cluster/nodes.json still lists every node)")
    for node in gpu[:MAX_NODE_DESCRIBES]:
        name = (node.get("metadata") or {}).get("name", "")
        try:
            events = object_events(k, "node", name)
        except kube.ApiError as exc:
            out.notes.append(f"events of node {name}: could not be read ({why(exc)})")
            events = []
        out.files[f"describe-nodes/{name}.txt"] = describe_node(node, events, now)


# -- versions ------------------------------------------------------------------------------

def versions(*, installer: str, helm: str, server: Mapping[str, Any] | None,
             nodes: Sequence[Mapping[str, Any]], releases: Sequence[ReleaseFacts],
             pods: Sequence[Mapping[str, Any]],
             runtime_classes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """versions.json: this tool and helm, the API server (/version), each node's kubelet,
    container runtime, kernel and OS image, the charts' releases, the images the pods run
    and kata-deploy's kata version (its RuntimeClasses' annotation, from kata-deploy 3.32)."""
    images: dict[str, list[str]] = {}
    for pod in pods:
        ns, name = _pod_key(pod)
        spec = pod.get("spec") or {}
        for c in (*(spec.get("initContainers") or []), *(spec.get("containers") or [])):
            if c.get("image"):
                images.setdefault(c["image"], []).append(f"{ns}/{name}:{c.get('name', '')}")
    kata = {(rc.get("metadata") or {}).get("name", ""): v for rc in runtime_classes
            if (v := ((rc.get("metadata") or {}).get("annotations") or {})
                .get(KATA_VERSION_ANNOTATION))}
    return {
        "installer": installer, "helm": helm,
        "kubernetes": {k: v for k, v in (server or {}).items()
                       if k in ("gitVersion", "platform", "goVersion", "buildDate")},
        "nodes": {(n.get("metadata") or {}).get("name", ""): _node_versions(n) for n in nodes},
        "releases": [{"name": r.name, "namespace": r.namespace, "chart": r.chart,
                      "version": r.version, "appVersion": r.app_version, "status": r.status}
                     for r in releases],
        "images": {image: sorted(where) for image, where in sorted(images.items())},
        "kataVersion": kata,
    }


def _node_versions(node: Mapping[str, Any]) -> dict[str, str]:
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return {"kubelet": info.get("kubeletVersion", ""),
            "containerRuntime": info.get("containerRuntimeVersion", ""),
            "kernel": info.get("kernelVersion", ""), "osImage": info.get("osImage", ""),
            "architecture": info.get("architecture", "")}


def version_rows(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    """versions.json as a short table for the summaries: one row per component, the distinct
    values of the per-node ones joined (a mixed pool shows each version once)."""
    def distinct(key: str) -> str:
        found = sorted({n.get(key, "") for n in (v.get("nodes") or {}).values()} - {""})
        return ", ".join(found) or "unknown"

    rows = [("gpu-kata-installer", str(v.get("installer") or "unknown")),
            ("helm", str(v.get("helm") or "unknown")),
            ("Kubernetes API server",
             str((v.get("kubernetes") or {}).get("gitVersion") or "unknown")),
            ("kubelet", distinct("kubelet")), ("container runtime", distinct("containerRuntime")),
            ("kernel", distinct("kernel")), ("OS image", distinct("osImage"))]
    rows += [(f"release {r['namespace']}/{r['name']}",
              f"{r['chart']} {r['version']}" + (f" (app {r['appVersion']})"
                                                if r.get("appVersion") else ""))
             for r in v.get("releases") or []]
    kata = sorted(set((v.get("kataVersion") or {}).values()))
    if kata:
        rows.append(("Kata Containers (RuntimeClass annotation)", ", ".join(kata)))
    return rows
