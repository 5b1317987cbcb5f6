"""What was discovered about the cluster and its hosts.

Facts are never read from the answers file: the answers say what the operator wants,
facts say what is there, and the plan is the difference. Facts can also be loaded from a
recorded file (`--facts`), which makes dry-runs of a cluster you cannot reach, and tests,
use the same code path as a live discovery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from installer.errors import Problem, UserError
from installer.yamlsrc import load_yaml

WORKLOAD_LABEL = "nvidia.com/gpu.workload.config"
NFD_GPU_LABEL = "feature.node.kubernetes.io/pci-10de.present"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
KATA_RUNTIME_LABEL = "katacontainers.io/kata-runtime"
MANAGED_LABEL_PREFIXES = ("nvidia.com/", "katacontainers.io/")
STATE_CONFIGMAP = ("kube-system", "gpu-kata-installer-state")


def managed_labels(labels: dict[str, str]) -> dict[str, str]:
    """The labels the installer, kata-deploy and the operator may set or remove."""
    return {k: v for k, v in labels.items() if k.startswith(MANAGED_LABEL_PREFIXES)}


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
    # "namespace/name" of Running pods holding NVIDIA resources. None: not looked at yet -
    # live discovery reads nodes only, and the plan's `gpu-pods` gather step looks on just
    # the nodes it would relabel (listing every pod took seconds at 10,000 pods).
    gpu_pods: tuple[str, ...] | None = ()

    @property
    def gpu_present(self) -> bool:
        return (self.labels.get(NFD_GPU_LABEL) == "true"
                or self.labels.get(GPU_PRESENT_LABEL) == "true")

    @property
    def workload(self) -> str | None:
        return self.labels.get(WORKLOAD_LABEL)


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


def with_gpu_pods(facts: Facts, found: dict[str, tuple[str, ...]]) -> Facts:
    """These nodes' GPU pods recorded in the facts (the `gpu-pods` gather step's result)."""
    cluster = facts.cluster
    nodes = tuple(replace(n, gpu_pods=tuple(found[n.name])) if n.name in found else n
                  for n in cluster.nodes)
    return replace(facts, cluster=replace(cluster, nodes=nodes))


def _node(raw: dict[str, Any]) -> NodeFacts:
    return NodeFacts(
        name=str(raw["name"]),
        address=raw.get("address"),
        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
        roles=tuple(raw.get("roles") or ()),
        kubelet_version=raw.get("kubeletVersion"),
        container_runtime=raw.get("containerRuntime"),
        allocatable={str(k): str(v) for k, v in (raw.get("allocatable") or {}).items()},
        ready=raw.get("ready"),
        gpu_pods=tuple(raw.get("gpuPods") or ()),
    )


def load_recorded_facts(path: Path) -> Facts:
    """Load a recorded cluster (see installer/examples/facts.yaml for the shape)."""
    data, _ = load_yaml(path)
    try:
        cluster = ClusterFacts(
            context=data.get("context"),
            server_version=data.get("serverVersion"),
            nodes=tuple(_node(n) for n in data.get("nodes") or ()),
            releases=tuple(ReleaseFacts(**r) for r in data.get("releases") or ()),
            runtime_classes=tuple(data.get("runtimeClasses") or ()),
            cluster_policy_state=data.get("clusterPolicyState"),
            nfd_workers=tuple(data.get("nfdWorkers") or ()),
            recorded_labels=data.get("recordedLabels"),
        )
    except (AttributeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a recorded facts file", [Problem(
            str(path), f"unexpected shape ({exc})",
            "record facts with the same shape as installer/examples/facts.yaml")]) from None
    return Facts(cluster=cluster, hosts=_recorded_hosts(path, data.get("hosts") or {}, cluster),
                 source=f"recorded:{path}")


def _recorded_hosts(path: Path, hosts: dict[str, Any], cluster: ClusterFacts) -> dict[str, Any]:
    """Host trees captured from the nodes, probed locally; a recorded cluster is never SSHed to.

    A node without a recorded tree is reported as not probed, so the dry-run says so instead
    of reaching for an address it only knows from a recording.
    """
    from installer.hostplan import ProbeFailure
    from remote.probe import ProbeTimeout, probe_local

    out: dict[str, Any] = {}
    for node in cluster.nodes:
        tree = (hosts.get(node.name) or {}).get("tree")
        if tree:
            try:
                out[node.name] = probe_local(path.parent / tree)
            except ProbeTimeout as e:
                out[node.name] = ProbeFailure("timeout", str(e), "check the recorded tree "
                                              "and the mounts under it")
        else:
            out[node.name] = ProbeFailure("not-recorded", "no host tree was recorded for "
                                          "this node", "record one under hosts: in the facts file")
    return out
