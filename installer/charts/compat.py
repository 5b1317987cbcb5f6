"""Which chart versions run where: the compatibility table and the guarded upstream defects.

The same answers are right on one cluster and wrong on the next: kata-deploy writes
containerd's configuration in the dialect of the containerd it finds, in the paths of the
distribution it is told, and each GPU Operator release has its own defects. This module
turns (chart versions, what discovery saw on the Kata nodes) into refusals - a combination
that cannot work, which the plan will not run - and warnings with the cause and the fix.
The table is published in the README; each row names where the fact comes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installer.answers.versions import (
    DEFAULT_GPU_OPERATOR,
    DEFAULT_KATA_DEPLOY,
    GPU_OPERATOR_VERSIONS,
    KATA_DEPLOY_VERSIONS,
    defect_in,
    fixed_in,
    parse,
    release_of,
)
from installer.cluster.facts import (
    NodeFacts,
    containerd_version_of,
    distribution_of,
    kubelet_root_of,
)
from remote.hostfacts import NVGRACE, HostFacts
from remote.kubelet import DEFAULT_ROOT

if TYPE_CHECKING:
    from semver import Version


def containerd_version(node: NodeFacts) -> Version | None:
    """containerd's release (`containerd://2.3.0` -> 2.3.0, `1.7.27-0ubuntu1` -> 1.7.27: a
    package revision, not a pre-release); None for another runtime or when the node does not
    say (then no containerd row applies to it)."""
    return release_of(containerd_version_of(node))


@dataclass(frozen=True)
class Finding:
    """One row of the table that applies: `refuse` stops the plan, `warn` is said in it."""

    level: str  # refuse | warn
    path: str  # the answers setting that decides it
    text: str
    fix: str

    def __str__(self) -> str:
        return f"{self.text}; {self.fix}"


def _names(nodes: Iterable[NodeFacts]) -> str:
    return ", ".join(n.name for n in nodes)


def kata_distribution(nodes: list[NodeFacts]) -> str | None:
    """The one distribution the Kata nodes run (kata-deploy's `k8sDistribution`); None when
    there are no Kata nodes or they disagree (see `findings`)."""
    found = {distribution_of(n) for n in nodes}
    return found.pop() if len(found) == 1 else None


def findings(kata_deploy: str | None, gpu_operator: str | None,
             kata_nodes: list[NodeFacts]) -> list[Finding]:
    """The table's rows that apply to these chart versions on these Kata nodes. A version
    that is not known (a local chart given without one) cannot be looked up: that is said,
    as a warning, instead of the rows (installer/answers/versions.py: the rules at pre-releases)."""
    out: list[Finding] = []
    kd, op = parse(kata_deploy), parse(gpu_operator)
    for name, path, found in (("kata-deploy", "kataDeploy", kd), ("GPU Operator", "gpuOperator",
                                                                  op)):
        if found is None:
            out.append(Finding(
                "warn", f"{path}.version",
                f"the {name} chart's version is not known (a local chart given without "
                f"{path}.version), so the compatibility table could not be checked for it",
                f"set {path}.version to the chart's version (its Chart.yaml `version`)"))
    if kd is not None and kata_deploy not in KATA_DEPLOY_VERSIONS:
        out.append(Finding(
            "warn", "kataDeploy.version",
            f"kata-deploy {kata_deploy} is not a version this installer was verified with "
            f"({', '.join(KATA_DEPLOY_VERSIONS)})",
            f"prefer kataDeploy.version {DEFAULT_KATA_DEPLOY}"))
    if op is not None and gpu_operator not in GPU_OPERATOR_VERSIONS:
        out.append(Finding(
            "warn", "gpuOperator.version",
            f"GPU Operator {gpu_operator} is not a version this installer was verified with "
            f"({', '.join(GPU_OPERATOR_VERSIONS)})",
            f"prefer gpuOperator.version {DEFAULT_GPU_OPERATOR}"))
    if kd is not None:
        out += _kata_deploy_rows(kd, kata_nodes)
    if op is not None and op <= LAST_KNOWN_OPERATOR:
        out += _kubelet_root_rows(gpu_operator, kata_nodes)
    if op is not None and defect_in(op, "26.3.0", "26.3.3"):
        # assets/state-vfio-manager/0500_daemonset.yaml, v26.3.0 - v26.3.3: the preStop hook
        # is one string without a shell, so it never runs.
        out.append(Finding(
            "warn", "gpuOperator.version",
            f"GPU Operator {gpu_operator}: the vfio-manager's preStop hook cannot run, so GPUs "
            "stay on vfio-pci when its pod goes away (uninstall, a node moved to containers)",
            "use gpuOperator.version v26.7.0, or unbind those GPUs (or reboot) after moving a "
            "node off Kata"))
    return out


# The newest GPU Operator whose sources the rows below were read from.
LAST_KNOWN_OPERATOR = "26.7.0"
# assets/state-kata-device-plugin/0500_daemonset.yaml, v26.3.0 - v26.7.0: a fixed hostPath.
PLUGIN_DIR = "/var/lib/kubelet/device-plugins"


def _kubelet_root_rows(gpu_operator: str | None, nodes: list[NodeFacts]) -> list[Finding]:
    moved = [n for n in nodes if kubelet_root_of(n) != DEFAULT_ROOT]
    if not moved:
        return []
    roots = ", ".join(sorted({f"{kubelet_root_of(n)} ({distribution_of(n)})" for n in moved}))
    return [Finding(
        "warn", "nodes",
        f"the kubelet on {_names(moved)} keeps its root at {roots}, but GPU Operator "
        f"{gpu_operator}'s kata sandbox device plugin registers under {PLUGIN_DIR} (a fixed "
        "hostPath; hostPaths.kubeletRootDir moves only dcgm-exporter's): those nodes will "
        "advertise no GPUs",
        f"make {PLUGIN_DIR} the kubelet's <root>/device-plugins on those nodes (a bind mount) "
        "before installing, or choose Kata nodes with the default kubelet root")]


def host_findings(gpu_operator: str | None, kata_hosts: dict[str, Any]) -> list[Finding]:
    """Rows that depend on what the Kata hosts hold (their probed HostFacts; a host that
    could not be probed is skipped): Grace GPUs on nvgrace_gpu_vfio_pci, which the GPU
    Operator's vfio-manager chooses and its validator accepts, but its kata sandbox device
    plugin does not advertise (pkg/device_plugin/device_plugin.go createIommuDeviceMap
    skips any driver but vfio-pci, sandbox-device-plugin v0.0.2 - v0.0.5 = GPU Operator
    v26.3.0 - v26.7.0)."""
    op = parse(gpu_operator)
    if op is None or op > LAST_KNOWN_OPERATOR:
        return []
    grace = sorted(name for name, h in kata_hosts.items()
                   if isinstance(h, HostFacts) and h.nvgrace_available and h.grace_gpus)
    if not grace:
        return []
    return [Finding(
        "warn", "nodes",
        f"{', '.join(grace)}: Grace GPUs go to {NVGRACE} (the GPU Operator's vfio-manager "
        f"picks it, its validator accepts it), but GPU Operator {gpu_operator}'s kata sandbox "
        "device plugin advertises only GPUs on vfio-pci: those GPUs get no nvidia.com/pgpu",
        "expect no Kata GPU capacity on those nodes with this GPU Operator; check a newer "
        "sandbox device plugin release for nvgrace_gpu_vfio_pci support")]


def _kata_deploy_rows(kd: Version, nodes: list[NodeFacts]) -> list[Finding]:
    out: list[Finding] = []
    # containerd 2.3 reads config version 4, which kata-deploy writes from 3.30.0 (so not
    # 3.30.0-rc.1: refused, as which candidate got it is not known).
    runtimes = {n.name: containerd_version(n) for n in nodes}
    new = [n for n in nodes if (v := runtimes[n.name]) is not None and v >= "2.3.0"]
    if new and not fixed_in(kd, "3.30.0"):
        out.append(Finding(
            "refuse", "kataDeploy.version",
            f"kata-deploy {kd} cannot configure containerd 2.3 or newer (config "
            f"version 4) on {_names(new)}", "set kataDeploy.version to 3.30.0 or newer"))
    old = [n for n in nodes if (v := runtimes[n.name]) is not None and v < "1.7.0"]
    if old:
        out.append(Finding(
            "warn", "nodes",
            f"containerd older than 1.7 on {_names(old)}: kata-deploy and the Kata shims are "
            "verified with containerd 1.7 - 2.3", "upgrade containerd on those nodes"))
    dists = {distribution_of(n) for n in nodes}
    if len(dists) > 1:
        out.append(Finding(
            "refuse", "nodes",
            f"the Kata nodes run different Kubernetes distributions ({', '.join(sorted(dists))})"
            "; kata-deploy takes one k8sDistribution", "choose Kata nodes of one distribution"))
    rancher = [n for n in nodes if distribution_of(n) in ("k3s", "rke2")]
    if rancher and not fixed_in(kd, "3.32.0"):
        # Fixed in 3.32.0: uninstall left containerd's config importing a removed drop-in,
        # and a k3s/rke2 restart dropped the node label.
        out.append(Finding(
            "warn", "kataDeploy.version",
            f"kata-deploy {kd} on k3s/rke2 ({_names(rancher)}) can leave containerd "
            "importing a removed drop-in after uninstall and lose the kata-runtime label when "
            "the service restarts", "use kataDeploy.version 3.32.0 or newer"))
    return out
