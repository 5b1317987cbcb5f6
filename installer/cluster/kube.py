"""The cluster service: a client from the operator's kubeconfig, read-only discovery, and the
few mutations the installer makes (each demanding the engine's Permit).

Requests are plain JSON over urllib3 (installer.cluster.kubeauth says how the context is reached:
the kubernetes client's loader, and the impersonation and token file re-reading it lacks). They are
synchronous; calls run in worker threads so the TUI never blocks. Kubeconfig problems become
UserErrors that name the file, the context and the fix; a refused request an ApiError naming the
verb and the resource, and a server that does not answer ApiUnreachable
(installer.cluster.apierrors) - both UserErrors, raised in one place (Kube._request) for every
caller.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import urllib3

from installer.cluster.apierrors import ApiError, ApiUnreachable, ReadError
from installer.cluster.facts import (
    CORDONED_FOR,
    STATE_CONFIGMAP,
    ClusterFacts,
    NodeFacts,
    Taint,
    checked_record,
    with_kubelet_facts,
)
from installer.cluster.kubeauth import Endpoint, endpoint
from installer.cluster.kubeconfig import VALID_KUBECONFIG, WHERE, context_names, load_kubeconfig
from installer.errors import Problem, UserError
from installer.permit import Permit, require_permit

# Connecting (a TLS handshake too) gives up after _CONNECT_SECONDS, not after the system's
# minutes, so an unreachable API server is said while the operator still waits. A request's
# read timeout bounds the wait between bytes of the answer; a followed log or a watch passes
# its own (none, or the watch's).
# The ClusterPolicy the GPU Operator chart creates: (group, version, plural, name).
KATA_VERSION_ANNOTATION = "katacontainers.io/kata-version"  # kata-deploy 3.32+ runtimeclasses.yaml
CLUSTER_POLICY_REF = ("nvidia.com", "v1", "clusterpolicies", "cluster-policy")
_CONNECT_SECONDS = 15
_DEFAULT_TIMEOUT = urllib3.Timeout(connect=_CONNECT_SECONDS, read=60)
_STREAM_TIMEOUT = urllib3.Timeout(connect=_CONNECT_SECONDS, read=None)
# "HTTPSConnection(host='10.0.0.1', port=6443): " - urllib3's prefix; the URL is said anyway.
_POOL_PREFIX = re.compile(r"^\w+\(host='[^']*', port=\d+\): ")


def _unreachable(server: str, exc: Exception) -> ApiUnreachable:
    """What urllib3 said when the request got no answer, as the operator needs it."""
    reason = getattr(exc, "reason", None) or exc
    said = _POOL_PREFIX.sub("", str(reason).splitlines()[0] if str(reason) else "")
    said = said or type(reason).__name__
    return ApiUnreachable(server, said, bad_certificate="CERTIFICATE_VERIFY_FAILED" in said)


@dataclass
class Kube:
    """A context's API server plus where it came from (for messages)."""

    endpoint: Endpoint
    kubeconfig: str  # the file, or KUBECONFIG's files (os.pathsep between them)
    context: str | None
    files: tuple[str, ...] = ()  # the kubeconfig files read, in order
    _maskers: list[Callable[[str], None]] = field(default_factory=list, repr=False)
    _bearer: str = field(default="", repr=False)

    def mask_tokens(self, add: Callable[[str], None]) -> None:
        """Have `add` (a Redactor's) learn the bearer token now and every one that replaces
        it: an exec plugin renews its token while a run lasts (EKS every 15 minutes), and
        the renewed one is as secret as the first."""
        self._credentials()  # the current token, before any request was made
        self._maskers.append(add)
        if self._bearer:
            add(self._bearer)

    def _credentials(self) -> Mapping[str, str]:
        headers = self.endpoint.auth()
        bearer = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else ""
        if token != self._bearer:
            self._bearer = token
            for add in self._maskers:
                add(token)
        return headers

    def auth_headers(self) -> Mapping[str, str]:
        """The credential and impersonation headers a request sends now (a renewed token
        included): for a connection made outside the pool, as pods/exec's WebSocket is."""
        return self._credentials()

    @property
    def server(self) -> str:
        return self.endpoint.server

    def _get(self, path: str, query: dict[str, str], timeout: urllib3.Timeout | None = None
             ) -> urllib3.BaseHTTPResponse:
        return self._request("GET", path, query, None, "", timeout)

    def _request(self, method: str, path: str, query: dict[str, str], body: Any,
                 content_type: str, timeout: urllib3.Timeout | None = None
                 ) -> urllib3.BaseHTTPResponse:
        """The open response (its body not read yet). Every failure is said here, once for
        every caller: ApiError names the refused request (verb, resource, namespace),
        ApiUnreachable the server and why no answer came."""
        headers = urllib3.HTTPHeaderDict({"Accept": "application/json"})
        headers.extend(self._credentials())  # Impersonate-Group may repeat
        if content_type:
            headers["Content-Type"] = content_type
        url = self.endpoint.server + path + (f"?{urlencode(query)}" if query else "")
        try:
            response = self.endpoint.pool.request(
                method, url, headers=headers, preload_content=False,
                body=None if body is None else json.dumps(body).encode(),
                timeout=_DEFAULT_TIMEOUT if timeout is None else timeout)
            if 200 <= response.status <= 299:
                return response
            if response.status == 401:
                self.endpoint.refused()
            data = self._read(response)
        except urllib3.exceptions.HTTPError as exc:
            raise _unreachable(self.server, exc) from None
        raise ApiError(response.status, response.reason or "", data.decode("utf-8", "replace"),
                       method, path, watch=query.get("watch") == "true", context=self.context,
                       server=self.server)

    def _read(self, response: urllib3.BaseHTTPResponse) -> bytes:
        try:
            return response.read()
        except urllib3.exceptions.HTTPError as exc:  # the answer broke off
            raise _unreachable(self.server, exc) from None
        finally:
            response.release_conn()

    def _json(self, response: urllib3.BaseHTTPResponse, path: str) -> Any:
        data = self._read(response)
        try:
            return json.loads(data)
        except ValueError:
            raise ApiUnreachable(self.server, f"the answer to {path} is not JSON "
                                 f"({data[:80]!r}): is this a Kubernetes API server?") from None

    def get_json(self, path: str, **query: str) -> dict[str, Any]:
        """GET an API path as plain JSON, raising ApiError.

        Why: the typed client builds a pydantic model per object and imports hundreds of
        model classes on first use, the slowest part of a read of 1,000 nodes or 10,000
        pods (BENCHMARKS.md section 4).
        Discovery and the pod watch read a few fields of each, so they read dicts."""
        return self._json(self._get(path, query), path)

    def get_text(self, path: str, **query: str) -> str:
        """GET a path that answers in text (a pod's log), raising ApiError like get_json."""
        return self._read(self._get(path, query)).decode("utf-8", "replace")

    def open_stream(self, path: str, **query: str) -> Any:
        """GET a path that streams (a followed log): the open HTTP response, read with
        `.stream(n)` and ended with `.shutdown()`/`.close()`."""
        return self._get(path, query, _STREAM_TIMEOUT)

    def delete(self, path: str) -> None:
        """DELETE an object with its own grace period (never forced), raising ApiError."""
        self._read(self._request("DELETE", path, {}, None, ""))

    def list_pages(self, path: str, limit: int = 500, **query: str
                   ) -> Iterator[dict[str, Any]]:
        """A list path page by page (plain JSON, `limit` items each, one consistent
        snapshot): 10,000 pods never sit in memory as dicts all at once."""
        token = ""
        while True:
            page = self.get_json(path, limit=str(limit), **query,
                                 **({"continue": token} if token else {}))
            yield page
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return

    def list_items(self, path: str, **query: str) -> Iterator[dict[str, Any]]:
        """The items of a list path, read page by page (see list_pages)."""
        for page in self.list_pages(path, **query):
            yield from page.get("items") or []

    def send_json(self, method: str, path: str, body: dict[str, Any],
                  content_type: str = "application/json") -> dict[str, Any]:
        """POST, PUT or PATCH plain JSON (see get_json for why not the typed calls)."""
        return self._json(self._request(method, path, {}, body, content_type), path)

    def watch_json(self, path: str, timeout: float, **query: str) -> Iterator[dict[str, Any]]:
        """Watch events ({"type", "object"}, plain JSON) of a list path as they arrive,
        until the server ends the watch (set timeoutSeconds) or `timeout` s pass silently."""
        raw = self._get(path, {**query, "watch": "true"},
                        urllib3.Timeout(connect=_CONNECT_SECONDS, read=timeout))
        rest = b""
        try:
            for chunk in raw.stream(65536):
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        except urllib3.exceptions.HTTPError as exc:
            raise _unreachable(self.server, exc) from None
        finally:
            raw.release_conn()


def connect(kubeconfig: str | None, context: str | None) -> Kube:
    """Build a client, or raise UserError saying exactly what is wrong with the kubeconfig.
    `kubeconfig` None: the files KUBECONFIG lists, merged as kubectl merges them."""
    config = load_kubeconfig(kubeconfig)
    source = config.source
    names, current = context_names(config.data)
    chosen = context or current
    if not chosen:
        raise UserError(f"kubeconfig {source} has no current context", [Problem(
            WHERE, "no current-context is set in it and no context was chosen",
            f"set cluster.context (or --context) to one of: {', '.join(names) or '(none)'}, "
            "or `kubectl config use-context NAME`" if names else VALID_KUBECONFIG)])
    if chosen not in names:
        raise UserError(f"context '{chosen}' is not in {source}", [Problem(
            "cluster.context", f"unknown context '{chosen}'",
            f"use one of: {', '.join(names) or '(none)'}")])
    return Kube(endpoint(config, chosen), source, chosen, config.files)


def _node_facts(node: dict[str, Any]) -> NodeFacts:
    """A Node as the API serves it (JSON) -> the facts the installer uses. Its GPU pods are
    left unknown (None): the plan looks for them only on the nodes it relabels."""
    status, meta = node.get("status") or {}, node["metadata"]
    address = next((a.get("address") for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP"), None)
    labels = dict(meta.get("labels") or {})
    roles = tuple(sorted(k.split("/", 1)[1] for k in labels
                         if k.startswith("node-role.kubernetes.io/")))
    ready = next((c.get("status") == "True" for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), None)
    info = status.get("nodeInfo") or {}
    taints = tuple(Taint(t.get("key", ""), t.get("effect", ""), t.get("value") or "")
                   for t in (node.get("spec") or {}).get("taints") or [])
    return with_kubelet_facts(NodeFacts(
        name=meta["name"], address=address, labels=labels, roles=roles,
        kubelet_version=info.get("kubeletVersion"),
        container_runtime=info.get("containerRuntimeVersion"),
        allocatable=dict(status.get("allocatable") or {}), ready=ready, taints=taints,
        gpu_pods=None, created=meta.get("creationTimestamp"),
        cordoned_for=(meta.get("annotations") or {}).get(CORDONED_FOR)
        if (node.get("spec") or {}).get("unschedulable") else None))


def read_cluster_policy(kube: Kube) -> dict[str, Any] | None:
    """ClusterPolicy `cluster-policy`, or None when it (or its CRD) does not exist."""
    group, version, plural, name = CLUSTER_POLICY_REF
    try:
        return kube.get_json(f"/apis/{group}/{version}/{plural}/{name}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None


NodesSeen = Callable[[tuple[NodeFacts, ...]], None]


def _discover_sync(kube: Kube, on_nodes: NodesSeen | None = None) -> ClusterFacts:
    """What the plan and the diagnosis start from. Past the first contact (the version and
    the nodes: without them there is nothing to say), a read the API server refuses is kept
    in `unread`, not raised: troubleshooting reports it as a finding, an install refuses to
    plan without it (installer.engine.steps.discover) - both then know every refused read at once.

    Plain JSON, page by page (Kube.list_pages): the typed models make 1,000 nodes slow to
    read and heavy in memory (BENCHMARKS.md section 4). No pods: a cluster's whole pod list
    is the slowest read there is (see gpu_pods_on).

    `on_nodes` is told the nodes read so far after each page (in this thread), so a screen
    can show the first of 5,000 nodes while the rest are read; the facts are only what
    this returns, whole."""
    info = kube.get_json("/version")
    version = info.get("gitVersion") if isinstance(info, dict) else None
    read_so_far: list[NodeFacts] = []
    for page in kube.list_pages("/api/v1/nodes"):
        read_so_far += [_node_facts(n) for n in page.get("items") or []]
        if on_nodes is not None and (page.get("metadata") or {}).get("continue"):
            on_nodes(tuple(read_so_far))
    nodes = tuple(read_so_far)
    unread: list[ReadError] = []

    def read(fn: Callable[[], Any], default: Any = None) -> Any:
        try:
            return fn()
        except ApiError as exc:
            unread.append(exc.read)
            return default

    classes = read(lambda: kube.get_json("/apis/node.k8s.io/v1/runtimeclasses")["items"], [])
    runtime_classes = tuple(rc["metadata"]["name"] for rc in classes)
    kata_version = next((v for rc in classes if (v := (rc["metadata"].get("annotations") or {})
                         .get(KATA_VERSION_ANNOTATION))), None)
    cp = read(lambda: read_cluster_policy(kube))
    cp_state = None if cp is None else (cp.get("status") or {}).get("state") or "unknown"
    workers = read(lambda: tuple(
        f"{ds['metadata']['namespace']}/{ds['metadata']['name']}"
        for ds in kube.get_json("/apis/apps/v1/daemonsets")["items"]
        if ds["metadata"]["name"].endswith("node-feature-discovery-worker")), ())
    recorded, problem = read(lambda: _read_record(kube), (None, ""))
    return ClusterFacts(context=kube.context, server_version=version, recorded_labels=recorded,
                        record_problem=problem, nodes=nodes,
                        runtime_classes=runtime_classes, cluster_policy_state=cp_state,
                        nfd_workers=workers, unread=tuple(unread), kata_version=kata_version)


def _read_record(kube: Kube) -> tuple[dict[str, dict[str, str]] | None, str]:
    """The recorded labels (None: nothing recorded yet), or why they cannot be read: said by
    the plans that use them, so a read-only troubleshoot of the cluster still works."""
    try:
        cm = kube.get_json(f"/api/v1/namespaces/{STATE_CONFIGMAP[0]}/configmaps/"
                           f"{STATE_CONFIGMAP[1]}")
    except ApiError as exc:
        if exc.status != 404:
            raise
        return None, ""
    text = (cm.get("data") or {}).get("labels.json")
    if text is None:
        return None, "the ConfigMap has no labels.json"
    try:
        return checked_record(json.loads(text)), ""
    except json.JSONDecodeError as exc:
        return None, f"labels.json is not JSON ({exc})"
    except ValueError as exc:
        return None, f"labels.json is {exc}"


async def discover(kube: Kube, on_nodes: NodesSeen | None = None) -> ClusterFacts:
    return await asyncio.to_thread(_discover_sync, kube, on_nodes)


def _patch_labels_sync(kube: Kube, node: str, labels: dict[str, str | None]) -> None:
    kube.send_json("PATCH", f"/api/v1/nodes/{node}", {"metadata": {"labels": labels}},
                   "application/strategic-merge-patch+json")


async def patch_node_labels(kube: Kube, permit: Permit, node: str,
                            labels: dict[str, str | None]) -> None:
    """Set (or, with None, remove) labels on a node: a strategic merge touches nothing else."""
    require_permit(permit)
    await asyncio.to_thread(_patch_labels_sync, kube, node, labels)


def holds_nvidia(pod: dict[str, Any]) -> bool:
    """A pod whose containers hold NVIDIA devices (any runtime): what relabelling, draining
    or changing its node's role takes the devices away from."""
    return any(k.startswith("nvidia.com/")
               for c in (pod.get("spec") or {}).get("containers") or []
               for k in ((c.get("resources") or {}).get("limits") or {}))


def gpu_pods_on(kube: Kube, node: str) -> tuple[str, ...]:
    """Running pods on one node that hold NVIDIA resources: relabelling it disrupts them.

    Why per node, with the API server filtering: the plan needs this only for the nodes it
    relabels, and the whole cluster's pods are 35 MB of JSON at 10,000 pods."""
    out = []
    for pod in kube.list_items("/api/v1/pods",
                               fieldSelector=f"spec.nodeName={node},status.phase=Running"):
        if holds_nvidia(pod):
            out.append(f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
    return tuple(out)


async def find_gpu_pods(kube: Kube, nodes: list[str], limit: int = 8
                        ) -> dict[str, tuple[str, ...]]:
    """gpu_pods_on for each node, `limit` requests at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(node: str) -> tuple[str, ...]:
        async with gate:
            return await asyncio.to_thread(gpu_pods_on, kube, node)

    found = await asyncio.gather(*(one(n) for n in nodes))
    return dict(zip(nodes, found, strict=True))


def log_tail(kube: Kube, namespace: str, pod: str, lines: int = 3,
             container: str = "") -> list[str]:
    """The last lines of a pod's log (the previous container's if it crashed); `container`
    names one, e.g. the init container the pod is held in (the first container otherwise)."""
    which = {"container": container} if container else {}
    for previous in (True, False):
        try:
            text = kube.get_text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                                 tailLines=str(lines), previous=str(previous).lower(), **which)
        except ApiError:
            continue
        if text and text.strip():
            return text.strip().splitlines()[-lines:]
    return []


async def create_pod(kube: Kube, permit: Permit, namespace: str, body: dict[str, Any]) -> None:
    require_permit(permit)
    await asyncio.to_thread(kube.send_json, "POST", f"/api/v1/namespaces/{namespace}/pods", body)


async def _delete_if_there(kube: Kube, permit: Permit, path: str) -> None:
    """A delete whose goal is "not there": one already gone is done too."""
    require_permit(permit)
    try:
        await asyncio.to_thread(kube.delete, path)
    except ApiError as exc:
        if exc.status != 404:
            raise


async def delete_pod(kube: Kube, permit: Permit, namespace: str, name: str) -> None:
    """Delete with the pod's own grace period - never forced (a wedged VFIO needs a reboot)."""
    await _delete_if_there(kube, permit, f"/api/v1/namespaces/{namespace}/pods/{name}")


async def create_namespace(kube: Kube, permit: Permit, body: dict[str, Any]) -> None:
    require_permit(permit)
    await asyncio.to_thread(kube.send_json, "POST", "/api/v1/namespaces", body)


async def label_namespace(kube: Kube, permit: Permit, name: str, labels: dict[str, str]
                          ) -> None:
    require_permit(permit)
    await asyncio.to_thread(kube.send_json, "PATCH", f"/api/v1/namespaces/{name}",
                            {"metadata": {"labels": labels}},
                            "application/merge-patch+json")


async def delete_namespace(kube: Kube, permit: Permit, name: str) -> None:
    await _delete_if_there(kube, permit, f"/api/v1/namespaces/{name}")


def _save_labels_sync(kube: Kube, labels: dict[str, dict[str, str]]) -> None:
    namespace, name = STATE_CONFIGMAP
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by":
                                                  "gpu-kata-installer"}},
            "data": {"labels.json": json.dumps(labels, sort_keys=True)}}
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    try:
        kube.send_json("POST", path, body)
    except ApiError as exc:
        if exc.status != 409:
            raise
        kube.send_json("PUT", f"{path}/{name}", body)


async def save_recorded_labels(kube: Kube, permit: Permit,
                               labels: dict[str, dict[str, str]]) -> None:
    require_permit(permit)
    await asyncio.to_thread(_save_labels_sync, kube, labels)


async def delete_state(kube: Kube, permit: Permit) -> None:
    await _delete_if_there(kube, permit, f"/api/v1/namespaces/{STATE_CONFIGMAP[0]}/"
                           f"configmaps/{STATE_CONFIGMAP[1]}")


async def delete_crd(kube: Kube, permit: Permit, name: str) -> None:
    await _delete_if_there(kube, permit,
                           f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
