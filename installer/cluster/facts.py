"""What was discovered about the cluster and its hosts.

Facts are never read from the answers file: the answers say what the operator wants,
facts say what is there, and the plan is the difference. Facts can also be loaded from a
recorded file (`--facts`, installer/cluster/factsfile.py), which makes dry-runs of a cluster you
cannot reach, and tests, use the same code path as a live discovery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from installer.cluster.apierrors import ReadError
from installer.errors import EXIT_STEP_FAILED, Problem, UserError
from remote.kubelet import KUBELET_ROOTS

WORKLOAD_LABEL = "nvidia.com/gpu.workload.config"
NFD_GPU_LABEL = "feature.node.kubernetes.io/pci-10de.present"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
KATA_RUNTIME_LABEL = "katacontainers.io/kata-runtime"
MANAGED_LABEL_PREFIXES = ("nvidia.com/", "katacontainers.io/")
STATE_CONFIGMAP = ("kube-system", "gpu-kata-installer-state")
# Set on a node with the installer's own cordon, saying what for ("reboot", "upgrade",
# "role-change"), removed with its uncordon (installer.cluster.drain).
CORDONED_FOR = "gpu-kata-installer.io/cordoned-for"


def managed_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels the installer, kata-deploy and the operator may set or remove."""
    return {k: v for k, v in labels.items() if k.startswith(MANAGED_LABEL_PREFIXES)}


TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
Distribution = Literal["k8s", "k3s", "rke2", "k0s", "microk8s"]


@dataclass(frozen=True)
class Taint:
    """A node taint as the Node API has it (`spec.taints[]`); value "" when it has none."""

    key: str
    effect: str
    value: str = ""

    @property
    def repels(self) -> bool:
        """Keeps pods that do not tolerate it off the node (PreferNoSchedule only prefers)."""
        return self.effect in ("NoSchedule", "NoExecute")

    def __str__(self) -> str:
        return f"{self.key}{'=' + self.value if self.value else ''}:{self.effect}"


@dataclass(frozen=True)
class ProbeFailure:
    """A host that could not be probed; its checks report this instead of verdicts."""

    kind: str
    message: str
    remedy: str = ""


@dataclass(frozen=True)
class NodeFacts:
    name: str
    address: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    roles: tuple[str, ...] = ()
    kubelet_version: str | None = None
    container_runtime: str | None = None
    allocatable: dict[str, str] = field(default_factory=dict)
    ready: bool | None = None
    taints: tuple[Taint, ...] = ()
    # "namespace/name" of Running pods holding NVIDIA resources. None: not looked at yet -
    # live discovery reads nodes only, and the plan's `gpu-pods` gather step looks on just
    # the nodes it would relabel (listing every pod took seconds at 10,000 pods).
    gpu_pods: tuple[str, ...] | None = ()
    # As discovery recorded them (a recorded facts file may state them); None: derived from
    # the fields above when asked (distribution_of, containerd_version_of, kubelet_root_of).
    distribution: str | None = None  # k8s | k3s | rke2 | k0s | microk8s
    containerd_version: str | None = None  # "2.0.5", from containerRuntimeVersion
    kubelet_root: str | None = None  # the kubelet's --root-dir
    created: str | None = None  # metadata.creationTimestamp (the Nodes table's AGE)
    # What the installer cordoned the node for (its mark, CORDONED_FOR), while it is
    # cordoned; None for a schedulable node or one cordoned by someone else.
    cordoned_for: str | None = None

    @property
    def gpu_present(self) -> bool:
        return (self.labels.get(NFD_GPU_LABEL) == "true"
                or self.labels.get(GPU_PRESENT_LABEL) == "true")

    @property
    def workload(self) -> str | None:
        return self.labels.get(WORKLOAD_LABEL)


def derived_distribution(kubelet_version: str | None, labels: dict[str, str]) -> str:
    """The Kubernetes distribution a node runs, from what its Node object says: k3s, rke2 and
    k0s stamp their kubelet's version (`v1.33.4+k3s1`, `+rke2r1`, `+k0s`); MicroK8s labels
    its nodes `microk8s.io/cluster`; anything else is kubeadm-like (`k8s`)."""
    kubelet = kubelet_version or ""
    for name in ("k3s", "rke2", "k0s"):
        if f"+{name}" in kubelet:
            return name
    if "microk8s.io/cluster" in labels:
        return "microk8s"
    return "k8s"


def distribution_of(node: NodeFacts) -> str:
    return node.distribution or derived_distribution(node.kubelet_version, node.labels)


def containerd_version_of(node: NodeFacts) -> str | None:
    """containerd's version as the node reports it (`containerd://2.0.5` -> `2.0.5`); None
    for another runtime or when the node does not say."""
    if node.containerd_version:
        return node.containerd_version
    rt = node.container_runtime or ""
    if not rt.startswith("containerd://"):
        return None
    return rt.removeprefix("containerd://") or None


def kubelet_root_of(node: NodeFacts) -> str:
    """The kubelet's root directory: as recorded, else its distribution's default
    (remote/kubelet.py says where each one keeps it and why)."""
    return node.kubelet_root or KUBELET_ROOTS[distribution_of(node)]


def with_kubelet_facts(node: NodeFacts) -> NodeFacts:
    """The node with its distribution, containerd version and kubelet root filled in, as
    discovery records them (and the plan and facts files show them)."""
    return replace(node, distribution=distribution_of(node),
                   containerd_version=containerd_version_of(node),
                   kubelet_root=kubelet_root_of(node))


@dataclass(frozen=True)
class ReleaseFacts:
    name: str
    namespace: str
    chart: str
    version: str
    status: str
    values: dict[str, Any] = field(default_factory=dict)
    app_version: str = ""  # helm list's app_version: the release's software, for a bug report
    revision: int = 0  # helm list's revision: what an upgrade's rollback returns to (0: unknown)


@dataclass(frozen=True)
class ClusterFacts:
    context: str | None = None
    server_version: str | None = None
    nodes: tuple[NodeFacts, ...] = ()
    releases: tuple[ReleaseFacts, ...] = ()
    runtime_classes: tuple[str, ...] = ()
    cluster_policy_state: str | None = None
    nfd_workers: tuple[str, ...] = ()  # "namespace/name" of NFD worker DaemonSets
    # Labels under the installer's and operator's prefixes, recorded before the first change
    # (node -> labels); None until recorded. Uninstall returns nodes to exactly these.
    recorded_labels: dict[str, dict[str, str]] | None = None
    # What the API server refused to let discovery read (troubleshooting reports it).
    unread: tuple[ReadError, ...] = ()
    # Why the recorded labels could not be read ("" when they could, or none are recorded):
    # install and uninstall refuse to plan on a record they cannot read (require_record).
    record_problem: str = ""
    # The kata-deploy release's own version as its RuntimeClass annotates it
    # (`katacontainers.io/kata-version`, from kata-deploy 3.32); None when no class says.
    kata_version: str | None = None
    # node -> {DaemonSet: its pod's images on that node} for kata-deploy and the GPU
    # Operator's operands; None: not read yet (only an upgrade reads them, a gather step).
    # ("namespace/name" of the DaemonSet); their DaemonSets' templates' images alongside.
    operand_images: dict[str, dict[str, tuple[str, ...]]] | None = None
    operand_templates: dict[str, tuple[str, ...]] | None = None
    # Nodes cordoned (spec.unschedulable) when the upgrade's gather step read them, and those
    # of them an upgrade cordoned (its annotation): only those does an upgrade uncordon.
    cordoned: tuple[str, ...] = ()
    cordoned_by_upgrade: tuple[str, ...] = ()

    def node(self, name: str) -> NodeFacts | None:
        return next((n for n in self.nodes if n.name == name), None)

    def release(self, name: str, namespace: str) -> ReleaseFacts | None:
        return next((r for r in self.releases if r.name == name and r.namespace == namespace),
                    None)


@dataclass(frozen=True)
class Facts:
    """Cluster facts plus per-node host facts (the probe's typed output, keyed by node)."""

    cluster: ClusterFacts
    hosts: dict[str, Any] = field(default_factory=dict)
    source: str = "discovered"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "cluster": asdict(self.cluster),
                "hosts": {k: asdict(v) for k, v in self.hosts.items()}}


def checked_record(value: Any) -> dict[str, dict[str, str]]:
    """The record's shape checked (node -> {label: value}, all strings), or ValueError."""
    if not isinstance(value, dict) or not all(
            isinstance(node, str) and isinstance(labels, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
            for node, labels in value.items()):
        raise ValueError("not a mapping of node name -> {label: value}")
    return value


def require_record(facts: Facts) -> None:
    """Refuse to plan on an unreadable record: installing would overwrite it with labels that
    may already be the installer's own, uninstalling would guess instead of restoring."""
    if facts.cluster is None or not facts.cluster.record_problem:
        return
    ns, name = STATE_CONFIGMAP
    raise UserError(f"the installer's record of the nodes' labels, ConfigMap {ns}/{name}, "
                    "cannot be read", [Problem(
                        f"{ns}/{name} data.labels.json", facts.cluster.record_problem,
                        f"look at it (kubectl -n {ns} get configmap {name} -o yaml) and repair "
                        "labels.json (a JSON object: node name -> {label: value}), or delete "
                        f"it (kubectl -n {ns} delete configmap {name}): the install then "
                        "records the nodes' current labels, and uninstall removes the "
                        "operator's labels instead of restoring recorded ones")],
                    exit_code=EXIT_STEP_FAILED)


def with_gpu_pods(facts: Facts, found: dict[str, tuple[str, ...]]) -> Facts:
    """These nodes' GPU pods recorded in the facts (the `gpu-pods` gather step's result)."""
    cluster = facts.cluster
    nodes = tuple(replace(n, gpu_pods=tuple(found[n.name])) if n.name in found else n
                  for n in cluster.nodes)
    return replace(facts, cluster=replace(cluster, nodes=nodes))
