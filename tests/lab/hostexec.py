"""Pod exec mapped to the simulated hosts: what makes `kubectl exec POD -- chroot /host CMD`
run CMD inside the simulated host of the pod's node, never on the machine running the lab.

KWOK (v0.8.0) runs an exec locally on the machine running the KWOK controller, configured by
an `Exec` object named like the pod (or a `ClusterExec` selecting pods by name/namespace
only): working dir, envs, user. Nothing selects by node, and nothing wraps the command, so:

- the lab simulator creates one `Exec` per pod that mounts the host root (a hostPath volume
  of `/`) on a node with a simulated host; its envs name that host (node, sshd pid file),
  and it is owned by the pod, so the garbage collector removes it with the pod;
- the KWOK controller's PATH holds only `tests/lab/hostexec/bin/`, whose `chroot` enters the
  named host (nsenter into its sshd's namespaces, chroot to its root) and refuses anything
  but `chroot /host ...`; other command names are not found;
- a bare pod of that kind (hostPID, host root mounted, not a DaemonSet's) is held Pending by
  the lab's stages until the simulator has created its Exec and set `HOLD_ANNOTATION`, so a
  client that waits for Running and then execs never sees a pod without its mapping.

Pure functions here; `simulator/runner.py` applies them.
"""

from __future__ import annotations

from pathlib import Path

BIN_DIR = Path(__file__).resolve().parent / "hostexec" / "bin"  # the KWOK controller's PATH
# Set by the simulator once the pod's Exec exists (value: the host's node, or why none).
HOLD_ANNOTATION = "lab.gpu-kata-installer/host-exec"
EXEC_API = "/apis/kwok.x-k8s.io/v1alpha1"

# The KWOK stage selector (jq) that holds such a bare pod until the annotation is set.
HOLD_QUERY = (
    'if (.spec.hostPID == true) and any(.spec.volumes[]?; .hostPath.path == "/")'
    ' and all(.metadata.ownerReferences[]?; .kind != "DaemonSet")'
    f' and ((.metadata.annotations["{HOLD_ANNOTATION}"] // "") == "")'
    ' then "hold" else "go" end'
)


def mounts_host_root(pod: dict) -> bool:
    """Does the pod mount the host's `/` (what `chroot /host` needs)?"""
    vols = (pod.get("spec") or {}).get("volumes") or []
    return any((v.get("hostPath") or {}).get("path") == "/" for v in vols)


def held(pod: dict) -> bool:
    """The Python twin of `HOLD_QUERY`: is this pod waiting for the simulator?"""
    meta = pod.get("metadata") or {}
    owned_by_ds = any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or [])
    return (
        (pod.get("spec") or {}).get("hostPID") is True
        and mounts_host_root(pod)
        and not owned_by_ds
        and not (meta.get("annotations") or {}).get(HOLD_ANNOTATION)
    )


def exec_object(pod: dict, node: str, state_dir: Path) -> dict:
    """The KWOK `Exec` that maps the pod's execs to `node`'s simulated host."""
    meta = pod["metadata"]
    envs = {
        "LAB_HOST_NODE": node,
        "LAB_HOST_PIDFILE": str(Path(state_dir) / "run" / f"sshd-{node}.pid"),
    }
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Exec",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": {"lab.gpu-kata-installer/host": node},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "spec": {
            "execs": [
                {"local": {"workDir": "/", "envs": [{"name": k, "value": v}
                                                   for k, v in envs.items()]}}
            ]
        },
    }


def plan(pods: list[dict], host_nodes: set[str], done: set[str]) -> list[tuple[dict, str]]:
    """(pod, node) for each pod that needs an Exec now: it mounts the host root, is bound to a
    node, is not being deleted, and has no Exec yet (`done`: pod uids already served).
    `node` is "" when the node has no simulated host (the pod is only released)."""
    out = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or meta.get("deletionTimestamp") or not mounts_host_root(pod):
            continue
        if meta.get("uid") in done and not held(pod):
            continue
        out.append((pod, node if node in host_nodes else ""))
    return out
