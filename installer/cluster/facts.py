"""What was discovered about the cluster and its hosts.

Facts are never read from the answers file: the answers say what the operator wants,
facts say what is there, and the plan is the difference. Facts can also be loaded from a
recorded file (`--facts`), which makes dry-runs of a cluster you cannot reach, and tests,
use the same code path as a live discovery.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from installer.answers.model import HostAddress, K8sName, LocalPath, NodeName
from installer.answers.record import Invalid, Record
from installer.answers.yamlsrc import Location, dotted, line_for, load_yaml
from installer.cluster.apierrors import ReadError
from installer.errors import EXIT_STEP_FAILED, Problem, UserError
from remote.kubelet import KUBELET_ROOTS

WORKLOAD_LABEL = "nvidia.com/gpu.workload.config"
NFD_GPU_LABEL = "feature.node.kubernetes.io/pci-10de.present"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
KATA_RUNTIME_LABEL = "katacontainers.io/kata-runtime"
MANAGED_LABEL_PREFIXES = ("nvidia.com/", "katacontainers.io/")
STATE_CONFIGMAP = ("kube-system", "gpu-kata-installer-state")


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


# A label's key (an optional DNS-subdomain prefix and a name) and value, as Kubernetes
# validates them (ASCII; the whole string).
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        rf"{_LABEL_NAME}", re.ASCII)
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?", re.ASCII)
FACTS_SHAPE = "installer/examples/facts.yaml shows every key"


def _label_key(v: str) -> None:
    prefix, _, name = v.rpartition("/")
    if not _LABEL_KEY.fullmatch(v) or len(prefix) > 253 or len(name) > 63:
        raise ValueError(f"{v!r} is not a Kubernetes label key")


def _label_value(v: str) -> None:
    if len(v) > 63 or not _LABEL_VALUE.fullmatch(v):
        raise ValueError(f"{v!r} is not a Kubernetes label value")


Labels = dict[Annotated[str, _label_key], Annotated[str, _label_value]]


class RecordedTaint(Record):
    key: str
    value: str = ""
    effect: TaintEffect


def _absolute(v: str) -> None:
    if not v.startswith("/") or "\n" in v:
        raise ValueError(f"{v!r} is not an absolute path")


class RecordedNode(Record):
    """A node as discovery saw it (the Node object's fields the plan reads). `distribution`,
    `containerdVersion` and `kubeletRoot`, when left out, are derived from the kubelet
    version, labels and runtime as discovery derives them."""

    name: NodeName
    address: HostAddress | None = None
    labels: Labels = {}
    roles: list[str] = []
    kubelet_version: str | None = None
    container_runtime: str | None = None
    allocatable: dict[str, str] = {}
    ready: bool | None = None
    taints: list[RecordedTaint] = []
    gpu_pods: list[str] = []
    distribution: Distribution | None = None
    containerd_version: str | None = None
    kubelet_root: Annotated[str, _absolute] | None = None


class RecordedRelease(Record):
    name: K8sName
    namespace: K8sName
    chart: str
    version: str
    status: str
    values: dict[str, Any] = {}


class RecordedHost(Record):
    """A node's host tree, captured from it: a directory relative to the facts file."""

    tree: LocalPath


class RecordedFacts(Record):
    """The file `--facts` reads: a recorded cluster and its nodes' host trees."""

    context: str | None = None
    server_version: str | None = None
    nodes: list[RecordedNode] = []
    releases: list[RecordedRelease] = []
    runtime_classes: list[str] = []
    cluster_policy_state: str | None = None
    nfd_workers: list[str] = []
    recorded_labels: dict[NodeName, Labels] | None = None
    hosts: dict[str, RecordedHost] = {}

    def invariant(self) -> None:
        names = [n.name for n in self.nodes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"nodes: {', '.join(twice)} listed twice; keep one entry each")


def load_recorded_facts(path: Path) -> Facts:
    """Load a recorded cluster (see installer/examples/facts.yaml for the shape), refusing -
    with the file, the dotted path and the fix - anything that is not that shape: an unknown
    key would be a fact silently left out, and a host tree that is not there would be probed
    as an empty host, whose checks then describe a machine that does not exist."""
    data, lines = load_yaml(path, "facts file")
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a recorded facts file", [Problem(
            "(document)", "the document must be a mapping of keys to values", FACTS_SHAPE,
            line=1)])
    try:
        recorded = RecordedFacts.from_data(data)
    except Invalid as exc:
        raise UserError(f"{path}: not a recorded facts file", [
            Problem(dotted(e.loc), e.message, _FIXES.get(e.kind, FACTS_SHAPE),
                    line=line_for(e.loc, lines)) for e in exc.errors]) from None
    known = {n.name for n in recorded.nodes}
    problems = [Problem(f"hosts.{name}", f"no node '{name}' is listed under nodes",
                        "name a node from nodes, or remove the entry",
                        line=line_for(("hosts", name), lines))
                for name in recorded.hosts if name not in known]
    problems += [p for name, host in recorded.hosts.items()
                 if name in known and (p := _tree_problem(path, name, host.tree, lines))]
    if problems:
        raise UserError(f"{path}: not a recorded facts file", problems)
    cluster = ClusterFacts(
        context=recorded.context,
        server_version=recorded.server_version,
        nodes=tuple(_node(n) for n in recorded.nodes),
        releases=tuple(ReleaseFacts(r.name, r.namespace, r.chart, r.version, r.status,
                                    r.values) for r in recorded.releases),
        runtime_classes=tuple(recorded.runtime_classes),
        cluster_policy_state=recorded.cluster_policy_state,
        nfd_workers=tuple(recorded.nfd_workers),
        recorded_labels=recorded.recorded_labels,
    )
    return Facts(cluster=cluster, hosts=_recorded_hosts(path, recorded.hosts, cluster),
                 source=f"recorded:{path}")


_FIXES = {
    "unknown": f"remove it or check its spelling ({FACTS_SHAPE})",
    "missing": f"add it ({FACTS_SHAPE})",
    "type": f"check the value's type ({FACTS_SHAPE})",
    "value": "write it as the cluster reported it",
}


def _node(n: RecordedNode) -> NodeFacts:
    return NodeFacts(name=n.name, address=n.address, labels=n.labels, roles=tuple(n.roles),
                     kubelet_version=n.kubelet_version, container_runtime=n.container_runtime,
                     allocatable=n.allocatable, ready=n.ready, gpu_pods=tuple(n.gpu_pods),
                     taints=tuple(Taint(t.key, t.effect, t.value) for t in n.taints),
                     distribution=n.distribution, containerd_version=n.containerd_version,
                     kubelet_root=n.kubelet_root)


def _tree_problem(path: Path, name: str, tree: str, lines: dict[Location, int]
                  ) -> Problem | None:
    where, root = f"hosts.{name}.tree", path.parent / tree
    line = line_for(("hosts", name, "tree"), lines)
    if not root.is_dir():
        return Problem(where, f"{root} is not a directory" if root.exists() else
                       f"no directory at {root}",
                       "point it at the node's captured host tree (relative to the facts "
                       "file), or remove the entry to plan the node as not probed", line=line)
    if not (root / "proc" / "cpuinfo").is_file():
        return Problem(where, f"{root} is not a captured host tree: it has no proc/cpuinfo",
                       "capture the node's host files into it (tests/fixtures/hosts shows "
                       "the layout)", line=line)
    return None


def _recorded_hosts(path: Path, hosts: dict[str, RecordedHost], cluster: ClusterFacts
                    ) -> dict[str, Any]:
    """Host trees captured from the nodes, probed locally; a recorded cluster is never SSHed to.

    A node without a recorded tree is reported as not probed, so the dry-run says so instead
    of reaching for an address it only knows from a recording.
    """
    from remote.probe import ProbeTimeout, probe_local

    out: dict[str, Any] = {}
    for node in cluster.nodes:
        if node.name in hosts:
            try:
                out[node.name] = probe_local(path.parent / hosts[node.name].tree)
            except ProbeTimeout as e:
                out[node.name] = ProbeFailure("timeout", str(e), "check the recorded tree "
                                              "and the mounts under it")
        else:
            out[node.name] = ProbeFailure("not-recorded", "no host tree was recorded for "
                                          "this node", "record one under hosts: in the facts file")
    return out
