"""What "done" means for each chart (domain.md section 3), as pure verdicts over a snapshot.

helm's --wait alone is not done: kata-deploy 3.29/3.30 has no readiness probe, and the GPU
Operator's pods can be Running while no GPU is usable. The executors poll a snapshot of the
cluster and ask these functions what is still missing and why; a definitive cause (the
operator in kubevirt mode, a host driver blocking vfio) fails at once instead of waiting
out the timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from installer.charts.devplugin import gpu_resources
from installer.charts.values import GPU_SHIM, VALID_WORKLOADS
from installer.cluster.facts import KATA_RUNTIME_LABEL, WORKLOAD_LABEL
from installer.cluster.podread import PodReading

GPU_RUNTIME_CLASS = f"kata-{GPU_SHIM}"  # kata-deploy names each shim's RuntimeClass kata-<shim>
OPERAND_DAEMONSETS = {
    "nvidia-vfio-manager": "name=nvidia-vfio-manager",
    "nvidia-cc-manager": "name=nvidia-cc-manager",
    "nvidia-kata-sandbox-device-plugin-daemonset":
        "app=nvidia-kata-sandbox-device-plugin-daemonset",
    "nvidia-sandbox-validator": "app=nvidia-sandbox-validator",
}
DRIVER_LABEL = "nvidia.com/gpu.deploy.driver"
CC_READY_LABEL = "nvidia.com/cc.ready.state"


@dataclass(frozen=True)
class Snapshot:
    """The slice of cluster state verification reads; built by installer.engine.steps.verify."""

    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    node_allocatable: dict[str, dict[str, str]] = field(default_factory=dict)
    runtime_classes: tuple[str, ...] = ()
    # RuntimeClass name -> its scheduling.nodeSelector (kata-deploy 4.1 adds its own marker)
    runtime_class_selectors: dict[str, dict[str, str]] = field(default_factory=dict)
    cluster_policy: dict[str, Any] | None = None
    daemonsets: dict[str, dict[str, int]] = field(default_factory=dict)
    pods: tuple[PodReading, ...] = ()


@dataclass(frozen=True)
class Verdict:
    done: bool
    missing: tuple[str, ...] = ()
    cause: str = ""
    fix: str = ""
    definitive: bool = False  # waiting longer cannot help


def _pods_on(snapshot: Snapshot, node: str, selector: str) -> list[PodReading]:
    key, _, value = selector.partition("=")
    return [p for p in snapshot.pods if p.node == node and p.labels.get(key) == value]


def crashing(pod: Any) -> bool:
    """A pod (PodReading) that is failing, not merely starting."""
    return pod.waiting_reason in ("CrashLoopBackOff", "Error") or pod.phase == "Failed"


def _crash(pods: list[PodReading]) -> PodReading | None:
    return next((p for p in pods if crashing(p)), None)


def _describe(pod: PodReading) -> str:
    state = pod.waiting_reason or pod.phase
    if pod.init_container:
        state = (f"{state} in init container {pod.init_container}" if crashing(pod)
                 else f"held in init container {pod.init_container}")
    tail = " | ".join(pod.log_tail[-3:])
    return f"{pod.name} on {pod.node} is {state}" + (f": {tail}" if tail else "")


KATA_DEPLOY_LABEL_PREFIXES = ("katacontainers.io/", "kata-deploy.katacontainers.io/")


def kata_deploy_labels(snapshot: Snapshot) -> dict[str, str]:
    """The node labels kata-deploy must have set for the GPU RuntimeClass to select a node:
    katacontainers.io/kata-runtime=true, and from 4.1.0 the install's own marker
    (kata-deploy.katacontainers.io/default=true), read from the RuntimeClass itself so every
    version is judged by what it really selects. The operator's labels (cc.ready.state) are
    the operator verdict's."""
    selector = snapshot.runtime_class_selectors.get(GPU_RUNTIME_CLASS) or {}
    wanted = {KATA_RUNTIME_LABEL: "true"}
    wanted.update({k: v for k, v in selector.items() if k.startswith(KATA_DEPLOY_LABEL_PREFIXES)})
    return wanted


def _kata_ready(snapshot: Snapshot, node: str, wanted: dict[str, str]) -> bool:
    labels = snapshot.node_labels.get(node, {})
    return all(labels.get(k) == v for k, v in wanted.items())


def kata_deploy_verdict(snapshot: Snapshot, nodes: list[str]) -> Verdict:
    wanted = kata_deploy_labels(snapshot)
    labels_text = ", ".join(f"{k}={v}" for k, v in wanted.items())
    missing = [f"node {n}: label{'s' if len(wanted) > 1 else ''} {labels_text}"
               for n in nodes if not _kata_ready(snapshot, n, wanted)]
    if GPU_RUNTIME_CLASS not in snapshot.runtime_classes:
        missing.append(f"RuntimeClass {GPU_RUNTIME_CLASS}")
    if not missing:
        return Verdict(True)
    for n in nodes:
        pods = _pods_on(snapshot, n, "name=kata-deploy")
        crash = _crash(pods)
        if crash:
            return Verdict(False, tuple(missing), f"kata-deploy pod {_describe(crash)}",
                           "read its log; containerd must be the node's runtime")
        if not pods and not _kata_ready(snapshot, n, wanted):
            return Verdict(False, tuple(missing),
                           f"no kata-deploy pod runs on {n}",
                           "check the DaemonSet's nodeSelector and the node's taints")
    if snapshot.node_labels and all(_kata_ready(snapshot, n, wanted) for n in nodes):
        return Verdict(False, tuple(missing),
                       f"kata-deploy ran but created no {GPU_RUNTIME_CLASS} RuntimeClass",
                       "enable shims.qemu-nvidia-gpu in kataDeploy.values", definitive=True)
    return Verdict(False, tuple(missing), "kata-deploy is still installing on the nodes")


def _policy_cause(policy: dict[str, Any] | None) -> Verdict | None:
    if policy is None:
        return Verdict(False, ("ClusterPolicy cluster-policy",),
                       "the GPU Operator has not created ClusterPolicy cluster-policy",
                       "check the gpu-operator Deployment's pod (label app=gpu-operator)")
    sandbox = (policy.get("spec") or {}).get("sandboxWorkloads") or {}
    if sandbox.get("enabled") is not True:
        return Verdict(False, ("sandboxWorkloads.enabled=true",),
                       "ClusterPolicy has sandboxWorkloads.enabled=false: the operator ignores "
                       "the vm-passthrough label", "set sandboxWorkloads.enabled=true "
                       "(remove the override from gpuOperator.values)", definitive=True)
    if sandbox.get("mode") != "kata":
        return Verdict(False, ("sandboxWorkloads.mode=kata",),
                       f"ClusterPolicy has sandboxWorkloads.mode={sandbox.get('mode')!r}: "
                       "the Kata device plugin is not deployed, no CDI spec is written and GPU "
                       "pods fail", "set sandboxWorkloads.mode=kata (remove the override from "
                       "gpuOperator.values) and run again", definitive=True)
    return None


def _node_cause(snapshot: Snapshot, node: str) -> Verdict | None:
    labels = snapshot.node_labels.get(node, {})
    workload = labels.get(WORKLOAD_LABEL)
    if workload is not None and workload not in VALID_WORKLOADS:
        return Verdict(False, (f"node {node}: valid {WORKLOAD_LABEL}",),
                       f"node {node} is labelled {WORKLOAD_LABEL}={workload}, which the operator "
                       "rejects (invalid GPU workload config)",
                       f"kubectl label node {node} {WORKLOAD_LABEL}=vm-passthrough --overwrite",
                       definitive=True)
    if labels.get(DRIVER_LABEL) == "pre-installed":
        return Verdict(False, (f"node {node}: GPUs on vfio-pci",),
                       f"node {node} has a host NVIDIA driver ({DRIVER_LABEL}=pre-installed): "
                       "GPUs cannot be bound to vfio-pci",
                       "unload the driver and bind the GPUs to vfio-pci (host fixes), "
                       "then run again", definitive=True)
    return None


def gpu_operator_verdict(snapshot: Snapshot, nodes: list[str], resource: str | None) -> Verdict:
    policy_problem = _policy_cause(snapshot.cluster_policy)
    if policy_problem and policy_problem.definitive:
        return policy_problem
    for node in nodes:
        node_problem = _node_cause(snapshot, node)
        if node_problem:
            return node_problem
    missing: list[str] = list(policy_problem.missing) if policy_problem else []
    state = ((snapshot.cluster_policy or {}).get("status") or {}).get("state")
    if snapshot.cluster_policy is not None and state != "ready":
        missing.append(f"ClusterPolicy state ready (now {state or 'unset'})")
    # (rank, cause, fix): a crash is named before a pod that waits for it (the device plugin
    # waits in vfio-pci-validation for the validator that crash-loops), before the rest.
    causes: list[tuple[int, str, str]] = []
    for node in nodes:
        for ds, selector in OPERAND_DAEMONSETS.items():
            pods = _pods_on(snapshot, node, selector)
            running = [p for p in pods if p.phase == "Running" and not p.waiting_reason]
            if not running:
                missing.append(f"node {node}: {ds} pod running")
                # A crash first; else a pod held in an init container (the operands wait
                # there: vfio-pci-validation for vfio-pci-ready) names what it waits for.
                crash = _crash(pods)
                held = crash or next((p for p in pods if p.init_container), None)
                if held:
                    causes.append((0 if crash else 1, _describe(held),
                                   "read the pod's log (troubleshoot shows it)"))
        cc_ready = snapshot.node_labels.get(node, {}).get(CC_READY_LABEL)
        if cc_ready != "false":
            missing.append(f"node {node}: {CC_READY_LABEL}=false")
            causes.append((2, f"node {node} has {CC_READY_LABEL}={cc_ready}: the "
                           f"{GPU_RUNTIME_CLASS} RuntimeClass schedules only on false - the "
                           "cc-manager is missing, or the GPUs are in confidential-computing mode",
                           "set gpuOperator.ccMode: off, or check the nvidia-cc-manager pod"))
        # Per-model naming: a GPU model's name, not an alias (nvidia.com/pgpu left from an
        # earlier install, nvidia.com/nvswitch) nor another plugin's resource.
        if not gpu_resources(snapshot.node_allocatable.get(node, {}), resource):
            what = resource or "per-model GPU resource (nvidia.com/<MODEL>)"
            missing.append(f"node {node}: allocatable {what} > 0")
            causes.append((2, f"node {node} advertises no {what}: its GPUs are not bound to "
                           "vfio-pci or the device plugin is not running",
                           "check the host (vfio-pci binding, IOMMU) and the operand pods"))
    if not missing:
        return Verdict(True)
    if causes:
        _, cause, fix = min(causes, key=lambda c: c[0])
    elif policy_problem:
        cause, fix = policy_problem.cause, policy_problem.fix
    else:
        cause, fix = "the GPU Operator is still rolling out", ""
    return Verdict(False, tuple(missing), cause, fix)


@dataclass(frozen=True)
class NodeProgress:
    """What a wait shows for one node: whether its part is done, and what was seen there."""

    done: bool
    seen: str


def _pod_state(pod: PodReading) -> str:
    """A pod as `kubectl get pods` would show it, with the init container it is held in."""
    state = pod.reason or pod.waiting_reason or pod.phase
    return f"{state} {pod.init_container}" if pod.init_container else state


def kata_deploy_progress(snapshot: Snapshot, nodes: list[str]) -> dict[str, NodeProgress]:
    """Per node: kata-deploy's labels there, else its pod's state (or that none runs yet)."""
    wanted = kata_deploy_labels(snapshot)
    out = {}
    for n in nodes:
        if _kata_ready(snapshot, n, wanted):
            out[n] = NodeProgress(True, "kata-deploy labels set")
            continue
        pods = _pods_on(snapshot, n, "name=kata-deploy")
        out[n] = NodeProgress(False, f"kata-deploy pod {pods[0].name}: {_pod_state(pods[0])}"
                              if pods else "no kata-deploy pod yet")
    return out


def _running(pod: PodReading) -> bool:
    return pod.phase == "Running" and not pod.waiting_reason


def operator_progress(snapshot: Snapshot, nodes: list[str], resource: str | None
                      ) -> dict[str, NodeProgress]:
    """Per node, as gpu_operator_verdict judges it: how many operand pods run, the first one
    that does not (and where it is held), then the cc label and the GPU resource."""
    out = {}
    total = len(OPERAND_DAEMONSETS)
    for n in nodes:
        waiting = []
        for ds, selector in OPERAND_DAEMONSETS.items():
            pods = _pods_on(snapshot, n, selector)
            if not any(_running(p) for p in pods):
                waiting.append(f"{ds}: {_pod_state(pods[0])}" if pods else f"{ds}: no pod yet")
        seen = f"{total - len(waiting)} of {total} operand pods running on {n}"
        if waiting:
            out[n] = NodeProgress(False, f"{seen}; waiting for {waiting[0]}")
            continue
        cc_ready = snapshot.node_labels.get(n, {}).get(CC_READY_LABEL)
        if cc_ready != "false":
            out[n] = NodeProgress(False, f"{seen}; waiting for {CC_READY_LABEL}=false "
                                  f"(now {cc_ready or 'unset'})")
        elif not gpu_resources(snapshot.node_allocatable.get(n, {}), resource):
            out[n] = NodeProgress(False, f"{seen}; waiting for allocatable "
                                  f"{resource or 'nvidia.com/<MODEL>'}")
        else:
            out[n] = NodeProgress(True, seen)
    return out
