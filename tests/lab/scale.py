"""Bulk objects for performance work: thousands of pods spread over the scale nodes.

Pods are bound directly (spec.nodeName) so creating 10,000 takes seconds of concurrent POSTs
rather than a scheduler queue; KWOK then makes them Running.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .kube import Kube


def pod_object(name: str, namespace: str, node: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "lab-scale"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def create_pods(kube: Kube, nodes: list[str], count: int, namespace: str, workers: int = 32) -> int:
    if not nodes or count <= 0:
        return 0
    kube.create(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        exist_ok=True,
    )

    def one(i: int) -> None:
        obj = pod_object(f"scale-pod-{i:05d}", namespace, nodes[i % len(nodes)])
        kube.create(f"/api/v1/namespaces/{namespace}/pods", obj, exist_ok=True)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(count)))
    return count
