"""What the two charts' pods will do on the hosts they land on, for the plan to show.

Helm's command and values say what changes in the cluster; the charts' pods then change
the hosts themselves - containerd's config and its restart, a host driver unloaded, GPUs
moved to vfio-pci, confidential-computing modes. The installer runs none of that, so these
lines are where an operator sees it before consenting. Where the pods land follows their
selectors against the nodes' labels as the plan leaves them (pure: labels in, lines out).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from installer.charts.values import tolerated
from installer.cluster.facts import KATA_RUNTIME_LABEL, WORKLOAD_LABEL, NodeFacts, Taint

# deployments/gpu-operator/values.yaml `daemonsets.tolerations` (v26.3.0 - v26.7.0): the
# operands tolerate this alone unless the values say otherwise.
OPERAND_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def untolerated_taints(values: Mapping[str, Any], kata: list[NodeFacts]) -> list[str]:
    """Kata nodes whose taints keep the GPU Operator's operands (vfio-manager, the sandbox
    device plugin, the validator) off them: the node would never get its GPUs ready."""
    daemonsets = values.get("daemonsets") or {}
    tolerations = daemonsets.get("tolerations", OPERAND_TOLERATIONS) or []
    return [f"{n.name} carries {', '.join(map(str, kept))}, which the GPU Operator's operands "
            "do not tolerate: they will not run there; add a toleration under "
            "gpuOperator.values.daemonsets.tolerations (keep the chart's nvidia.com/gpu one)"
            for n in kata if (kept := _kept_off(n, tolerations))]


def _names(nodes: list[str]) -> str:
    return ", ".join(nodes) if len(nodes) <= 8 else f"{', '.join(nodes[:8])} and " \
        f"{len(nodes) - 8} more"


def _selected(labels: Mapping[str, Mapping[str, str]], selector: Mapping[str, Any]) -> list[str]:
    return [n for n, have in labels.items()
            if all(have.get(k) == str(v) for k, v in selector.items())]


def _shims(values: Mapping[str, Any]) -> str:
    shims = values.get("shims") or {}
    if not shims.get("disableAll"):
        return "every shim the chart enables by default"
    on = [k for k, v in shims.items() if isinstance(v, dict) and v.get("enabled") is True]
    return ", ".join(f"kata-{s}" for s in on) or "no shim"


def _kept_off(node: NodeFacts, tolerations: list[Mapping[str, Any]]) -> list[Taint]:
    return [t for t in node.taints if t.repels and not tolerated(t, tolerations)]


def kata_deploy_effects(values: Mapping[str, Any], labels: Mapping[str, Mapping[str, str]],
                        nodes_known: tuple[NodeFacts, ...] = ()) -> list[str]:
    """kata-deploy's DaemonSet (templates/kata-deploy.yaml, 3.29.0 - 4.1.0) on the nodes
    its nodeSelector matches and whose taints it tolerates; `binary/src/main.rs install` on
    each."""
    selector = values.get("nodeSelector") or {}
    tolerations = list(values.get("tolerations") or [])
    repelled = {n.name: kept for n in nodes_known if (kept := _kept_off(n, tolerations))}
    matched = _selected(labels, selector)
    nodes = [n for n in matched if n not in repelled]
    shown = ", ".join(f"{k}={v}" for k, v in selector.items())
    if not selector:
        where = f"every node it tolerates (nodeSelector is empty): {_names(nodes)}"
    elif nodes:
        where = f"{_names(nodes)} (nodeSelector {shown})"
    else:
        where = f"no node: none matches nodeSelector {shown}"
    out = [f"kata-deploy runs on {where}"]
    out += [f"kata-deploy does not run on {n}: it does not tolerate "
            f"{', '.join(map(str, repelled[n]))}" for n in matched if n in repelled]
    if nodes:
        out.append("on each: copies the Kata artifacts to /opt/kata, adds "
                   f"{_shims(values)} to containerd's config, restarts containerd, labels "
                   f"the node {KATA_RUNTIME_LABEL}=true")
        setup = [s for s in (values.get("snapshotter") or {}).get("setup") or [] if s]
        if setup:
            out.append(f"on each: sets up the {', '.join(setup)} snapshotter (a systemd "
                       "service on the host, and containerd pointed at it), as "
                       "snapshotter.setup asks")
    return out


def _workload(labels: Mapping[str, str], values: Mapping[str, Any]) -> str:
    sandbox = values.get("sandboxWorkloads") or {}
    default = (sandbox.get("defaultWorkload") if sandbox.get("enabled") else None)
    return labels.get(WORKLOAD_LABEL) or default or "container"


def _on(values: Mapping[str, Any], key: str, default: bool = True) -> bool:
    return bool((values.get(key) or {}).get("enabled", default))


def gpu_operator_effects(values: Mapping[str, Any], nodes: tuple[NodeFacts, ...],
                         labels: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The operands the GPU Operator's controllers deploy per GPU node's workload
    (controllers/state_manager.go, v26.3.0 - v26.7.0), and what each does on its host."""
    by_kind: dict[str, list[str]] = {}
    for node in nodes:
        if node.gpu_present:
            by_kind.setdefault(_workload(labels.get(node.name, node.labels), values),
                               []).append(node.name)
    out = []
    if vm := by_kind.get("vm-passthrough"):
        does = []
        if _on(values, "vfioManager"):
            does.append("k8s-driver-manager unloads a host NVIDIA driver and vfio-manager "
                        "binds every NVIDIA GPU to vfio-pci")
        if _on(values, "kataSandboxDevicePlugin"):
            does.append("the sandbox device plugin writes the GPUs' CDI spec under "
                        "/var/run/cdi")
        if _on(values, "ccManager"):
            mode = (values.get("ccManager") or {}).get("defaultMode", "on")
            does.append(f"cc-manager sets confidential-computing mode '{mode}' on GPUs that "
                        "support it (ccManager.defaultMode)")
        out.append(f"GPU Operator on {_names(vm)} (vm-passthrough): " + "; ".join(
            does or ["no host operand is enabled"]))
    if ct := by_kind.get("container"):
        does = []
        if _on(values, "driver"):
            does.append("the driver container builds and loads the NVIDIA driver")
        if _on(values, "toolkit"):
            does.append("the container toolkit edits containerd's config and restarts it")
        does.append("the device plugin, GPU feature discovery and DCGM exporter run there")
        out.append(f"GPU Operator on {_names(ct)} (container): " + "; ".join(does))
    if vg := by_kind.get("vm-vgpu"):
        out.append(f"GPU Operator on {_names(vg)} (vm-vgpu): the vGPU manager and device "
                   "manager operands")
    return out


# assets/state-vfio-manager/0500_daemonset.yaml: the preStop hook is the one string
# "vfio-manage unbind --all" (no shell, so it cannot run) from v26.3.0 to v26.3.3; v26.7.0
# runs it through /bin/sh -c.
PRESTOP_CANNOT_UNBIND = ("v26.3.0", "v26.3.1", "v26.3.2", "v26.3.3")


def gpu_operator_removal_effects(version: str | None, nodes: tuple[NodeFacts, ...]) -> list[str]:
    """What removing the operator leaves on its vm-passthrough hosts."""
    vm = [n.name for n in nodes if n.workload == "vm-passthrough"]
    if not vm:
        return []
    if version in PRESTOP_CANNOT_UNBIND:
        return [f"on {_names(vm)}: the GPUs stay on vfio-pci until the next reboot - "
                f"vfio-manager's preStop unbind cannot run in {version} (v26.3.0 - v26.3.3)"]
    return [f"on {_names(vm)}: vfio-manager's preStop returns the GPUs from vfio-pci"]


def kata_deploy_removal_effects(nodes: tuple[NodeFacts, ...]) -> list[str]:
    """kata-deploy's cleanup on each node it installed
    (tools/packaging/kata-deploy/binary/src/main.rs `cleanup`, 3.29.0 - 4.1.0)."""
    installed = [n.name for n in nodes if n.labels.get(KATA_RUNTIME_LABEL) == "true"]
    if not installed:
        return []
    return [f"on {_names(installed)}: kata-deploy's cleanup removes /opt/kata, takes the Kata "
            "runtimes out of containerd's config and restarts containerd"]
