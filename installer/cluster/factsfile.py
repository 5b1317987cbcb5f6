"""The recorded facts file (`--facts`): a cluster and its nodes' host trees as discovery saw
them, read into the same Facts a live discovery gives.

Apart from installer.cluster.facts so that what only reads facts (helm, the planner's types,
`--version`) does not import pydantic, which the file's models are written in.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import model_validator

from installer.answers.model import HostAddress, K8sName, LocalPath, NodeName, rule
from installer.answers.strictmodel import Invalid, StrictModel
from installer.answers.yamlsrc import Location, dotted, line_for, load_yaml
from installer.cluster.facts import (
    ClusterFacts,
    Distribution,
    Facts,
    NodeFacts,
    ProbeFailure,
    ReleaseFacts,
    Taint,
    TaintEffect,
)
from installer.errors import Problem, UserError

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


Labels = dict[Annotated[str, rule(_label_key)], Annotated[str, rule(_label_value)]]


class RecordedTaint(StrictModel):
    key: str
    value: str = ""
    effect: TaintEffect


def _absolute(v: str) -> None:
    if not v.startswith("/") or "\n" in v:
        raise ValueError(f"{v!r} is not an absolute path")


class RecordedNode(StrictModel):
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
    kubelet_root: Annotated[str, rule(_absolute)] | None = None
    created: str | None = None  # metadata.creationTimestamp, as the API wrote it


class RecordedRelease(StrictModel):
    name: K8sName
    namespace: K8sName
    chart: str
    version: str
    status: str
    values: dict[str, Any] = {}


class RecordedHost(StrictModel):
    """A node's host tree, captured from it: a directory relative to the facts file."""

    tree: LocalPath


class RecordedFacts(StrictModel):
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

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        names = [n.name for n in self.nodes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"nodes: {', '.join(twice)} listed twice; keep one entry each")
        return self


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
        operand_images={}, operand_templates={},  # a recording holds no pods: none to read
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
                     kubelet_root=n.kubelet_root, created=n.created)


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
