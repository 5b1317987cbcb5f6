"""Live pod status as engine events.

The pod watch resumes from the last resourceVersion after a dropped connection and relists
after "410 Gone"; a per-pod record of the last resourceVersion seen means a resumed or
relisted stream neither loses a change nor reports one twice. The `kubernetes` client's
watch is blocking, so it runs in a thread and hands events to the loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer.events import PodStatus
from installer.kube import Kube

RETRY_SECONDS = (0.5, 1, 2, 5)


def pod_status(pod: Any, path: str) -> PodStatus:
    statuses = pod.status.container_statuses or []
    ready = sum(1 for s in statuses if s.ready)
    waiting = next((s.state.waiting.reason for s in statuses
                    if s.state and s.state.waiting and s.state.waiting.reason), "")
    terminated = next((s.state.terminated.reason for s in statuses
                       if s.state and s.state.terminated and s.state.terminated.reason), "")
    return PodStatus(path=path, namespace=pod.metadata.namespace, pod=pod.metadata.name,
                     phase=pod.status.phase or "Unknown", node=pod.spec.node_name,
                     ready=f"{ready}/{len(pod.spec.containers or [])}",
                     restarts=sum(s.restart_count or 0 for s in statuses),
                     reason=waiting or terminated or (pod.status.reason or ""),
                     version=pod.metadata.resource_version or "")


@dataclass
class PodWatch:
    """Emits a PodStatus for every change of every pod in `namespaces`, exactly once each."""

    kube: Kube
    namespaces: list[str]
    emit: Callable[[Any], None]
    path: str = "watch/pods"
    watch_seconds: int = 30  # the server ends each watch after this; it resumes from the rv
    # pod uid -> (last resourceVersion, namespace, name)
    seen: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _gone(self, loop: asyncio.AbstractEventLoop, uid: str) -> None:
        with self._lock:
            entry = self.seen.pop(uid, None)
        if entry is not None:
            loop.call_soon_threadsafe(self.emit, PodStatus(
                path=self.path, namespace=entry[1], pod=entry[2], phase="Deleted"))

    def _deliver(self, loop: asyncio.AbstractEventLoop, kind: str, pod: Any) -> None:
        uid, rv = pod.metadata.uid, pod.metadata.resource_version
        if kind == "DELETED":
            self._gone(loop, uid)
            return
        with self._lock:
            if self.seen.get(uid, ("",))[0] == rv:
                return
            self.seen[uid] = (rv, pod.metadata.namespace, pod.metadata.name)
        loop.call_soon_threadsafe(self.emit, pod_status(pod, self.path))

    def _relist(self, loop: asyncio.AbstractEventLoop, namespace: str) -> str:
        """List from scratch: report what changed while we were away, and what vanished."""
        listing = self.kube.core().list_namespaced_pod(namespace)
        present = {pod.metadata.uid for pod in listing.items}
        for pod in listing.items:
            self._deliver(loop, "MODIFIED", pod)
        with self._lock:
            vanished = [u for u, (_, ns, _) in self.seen.items()
                        if ns == namespace and u not in present]
        for uid in vanished:
            self._gone(loop, uid)
        return listing.metadata.resource_version

    def _run(self, loop: asyncio.AbstractEventLoop, namespace: str) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        rv = None
        failures = 0
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._relist(loop, namespace)
                w = watch.Watch()
                for item in w.stream(self.kube.core().list_namespaced_pod, namespace,
                                     resource_version=rv, timeout_seconds=self.watch_seconds,
                                     allow_watch_bookmarks=True):
                    if self._stop.is_set():
                        w.stop()
                        break
                    obj = item["object"]
                    if item["type"] == "BOOKMARK":
                        rv = obj["metadata"]["resourceVersion"] if isinstance(obj, dict) \
                            else obj.metadata.resource_version
                        continue
                    if item["type"] == "ERROR":
                        rv = None  # 410 Gone arrives as an ERROR object: relist
                        break
                    self._deliver(loop, item["type"], obj)
                    rv = obj.metadata.resource_version
                    failures = 0
            except ApiException as exc:
                if exc.status == 410:
                    rv = None
                    continue
                failures += 1
            except Exception:  # connection dropped or refused: retry from the last rv
                failures += 1
            if failures:
                time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1])

    async def run(self) -> None:
        """Watch until cancelled."""
        loop = asyncio.get_running_loop()
        threads = [threading.Thread(target=self._run, args=(loop, ns), daemon=True,
                                    name=f"pod-watch-{ns}") for ns in self.namespaces]
        for t in threads:
            t.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._stop.set()
