"""Which pods a drain evicts, as kubectl drain --ignore-daemonsets picks them."""

from __future__ import annotations

from installer.cluster.drain import drain_plan, is_kata_gpu_pod


def pod(name: str, owner: str | None = "ReplicaSet", phase: str = "Running",
        runtime: str | None = None, gpu: bool = False, mirror: bool = False) -> dict:
    meta: dict = {"name": name, "namespace": "ns"}
    if owner:
        meta["ownerReferences"] = [{"kind": owner, "name": "o", "controller": True}]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "x"}
    limits = {"nvidia.com/pgpu": "1"} if gpu else {}
    spec: dict = {"containers": [{"name": "c", "resources": {"limits": limits}}]}
    if runtime:
        spec["runtimeClassName"] = runtime
    return {"metadata": meta, "spec": spec, "status": {"phase": phase}}


def test_daemonset_mirror_and_finished_pods_are_left_alone():
    plan = drain_plan([pod("ds", owner="DaemonSet"), pod("static", owner=None, mirror=True),
                       pod("done", phase="Succeeded"), pod("web")])
    assert plan.evict == ("ns/web",) and not plan.blocked


def test_a_pod_no_controller_would_recreate_blocks_the_drain():
    plan = drain_plan([pod("bare", owner=None), pod("web")])
    assert plan.unmanaged == ("ns/bare",) and plan.blocked


def test_only_kata_gpu_pods_when_asked():
    pods = [pod("vm", runtime="kata-qemu-nvidia-gpu", gpu=True), pod("vm-cpu", runtime="kata-qemu"),
            pod("runc-gpu", gpu=True)]
    assert drain_plan(pods, is_kata_gpu_pod).evict == ("ns/vm",)
