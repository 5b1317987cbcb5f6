"""What each kind of plan step carries: one frozen dataclass per kind, read by its executor.

A step's params type names its executor (the engine's registry maps the type to it, see
installer.engine.steps.default_executors) and its `action`, the string the plan's JSON
shows. `params_json` is the one way params leave the process: `Plan.to_dict` (`--dry-run
--json`, the review, the bundle) and the journal's step fingerprint both go through it, with
stable keys (camelCase of the field name, unless a field says otherwise), so a run
journaled by an earlier installer with the same keys resumes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Literal

from installer.hosts.checks import CheckResult
from installer.hosts.hostplan import PlannedFix

# A param the JSON leaves out while it is None (set only where the plan knows it).
OMIT = {"omit": True}
# A resource param whose None (per-model resource names) the JSON shows as "per-model".
PER_MODEL = {"none": "per-model"}


class ParamsPart:
    """Marks the plan's own records: their fields leave as camelCase keys. Records from
    elsewhere (remote's HostChange, installer.hosts' PlannedFix) keep their field names, as
    they always did; a check's verdict leaves as CheckResult.to_dict writes it."""


@dataclass(frozen=True)
class StepParams(ParamsPart):
    """The params of one kind of step; ACTION is the plan JSON's `action` for it."""

    ACTION: ClassVar[str]


# --- parts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget(ParamsPart):
    """Where a host step connects: installer.hosts.access.target validates it. `pod` (the
    host-access pod, namespace/name) when the node is reached through the cluster
    (hostAccess: pod): the SSH fields are then unused."""

    node: str
    address: str | None
    user: str | None
    port: int | None
    pod: str | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class KubeletSide(ParamsPart):
    """What the node's kubelet is, as discovery recorded it."""

    distribution: str
    containerd_version: str | None
    kubelet_root: str


# --- gather --------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoverParams(StepParams):
    ACTION = "discover"
    kubeconfig: str | None
    context: str | None


@dataclass(frozen=True)
class GpuPodsParams(StepParams):
    ACTION = "gpu-pods"
    kubeconfig: str | None
    context: str | None
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class ProbeParams(StepParams):
    ACTION = "probe"
    targets: tuple[SshTarget, ...]


# --- check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterChecksParams(StepParams):
    ACTION = "cluster-checks"
    ignore: tuple[str, ...]
    nodes: tuple[str, ...]
    own_nfd: str  # the operator's own NFD worker DaemonSet, namespace/name


@dataclass(frozen=True)
class HostChecksParams(StepParams):
    """The host's verdicts, computed in the plan; all None until the host is probed."""

    ACTION = "host-checks"
    node: str
    kubernetes: KubeletSide | None = field(default=None, metadata=OMIT)
    checks: tuple[CheckResult, ...] | None = field(default=None, metadata=OMIT)
    # failing checks a planned fix makes pass
    covered: tuple[str, ...] | None = field(default=None, metadata=OMIT)
    # why the host could not be probed ("" if it was)
    unreachable: str | None = field(default=None, metadata=OMIT)
    # fixes that wait for something (a reboot), with the reason
    deferred: tuple[str, ...] | None = field(default=None, metadata=OMIT)


# --- change --------------------------------------------------------------------------


@dataclass(frozen=True)
class HostFixParams(StepParams):
    """`fix` is None for a fix planned only after a reboot (its step waits, never runs)."""

    ACTION = "host-fix"
    node: str
    target: SshTarget
    fix: PlannedFix | None = field(default=None, metadata={"omit": True, "json": "change"})


@dataclass(frozen=True)
class CordonParams(StepParams):
    """Cordon a node before its reboot (a node already cordoned before the run is left
    as it is, and stays cordoned after)."""

    ACTION = "cordon"
    node: str
    # what the cordon is for, as its mark on the node says (None: "reboot")
    why: str | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class DrainParams(StepParams):
    """Evict a cordoned node's pods before its reboot (installer.cluster.drain)."""

    ACTION = "drain"
    node: str
    timeout_seconds: int
    # "nvidia": only the pods holding NVIDIA devices (a change of role); None: every pod
    only: str | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class UncordonParams(StepParams):
    """Uncordon a node this run cordoned, once it is Ready after its reboot."""

    ACTION = "uncordon"
    node: str


@dataclass(frozen=True)
class RecordLabelsParams(StepParams):
    ACTION = "record-labels"
    labels: Mapping[str, Mapping[str, str]]  # node -> its managed labels


@dataclass(frozen=True)
class LabelParams(StepParams):
    ACTION = "label"
    node: str
    key: str
    value: str


@dataclass(frozen=True)
class RelabelParams(LabelParams):
    """A node's workload label changed inside its role-change chain (cordoned and drained
    first, verified and uncordoned after: installer.engine.rolechange)."""

    ACTION = "relabel"


@dataclass(frozen=True)
class VerifyRoleParams(StepParams):
    """Wait until a node serves its new role (traditional: no GPU on vfio-pci, nvidia.com/gpu
    advertised, no Kata resource; kata: the kata runtime label, its resource, the host
    verify) before its uncordon."""

    ACTION = "verify-role"
    node: str
    role: Literal["traditional", "kata"]
    resource: str | None  # the Kata resource; None: per-model resource names
    target: SshTarget
    timeout_seconds: int


@dataclass(frozen=True)
class HelmParams(StepParams):
    ACTION = "helm"
    release: str
    namespace: str
    chart: str  # the source, described
    version: str | None
    values: Mapping[str, Any]
    host_effects: tuple[str, ...]
    command: tuple[str, ...]  # helm and its arguments, values file as <values.yaml>
    # An interrupted helm left the release pending-*: undo that first.
    recover: Literal["uninstall", "rollback"] | None = field(default=None, metadata=OMIT)


# --- verify --------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyKataDeployParams(StepParams):
    ACTION = "verify-kata-deploy"
    nodes: tuple[str, ...]
    namespace: str
    timeout_seconds: int


@dataclass(frozen=True)
class VerifyGpuOperatorParams(StepParams):
    ACTION = "verify-gpu-operator"
    nodes: tuple[str, ...]
    namespace: str
    resource: str | None  # None: per-model resource names
    timeout_seconds: int


@dataclass(frozen=True)
class VerifyHostParams(StepParams):
    ACTION = "verify-host"
    node: str
    resource: str | None  # None: per-model resource names
    target: SshTarget


@dataclass(frozen=True)
class SampleParams(StepParams):
    ACTION = "sample"
    image: str
    memory: str
    timeout_seconds: int
    resource: str | None = field(metadata=PER_MODEL)  # None: per-model resource names
    namespace: str
    # the Kata nodes; None: every node
    nodes: tuple[str, ...] | None = field(default=None, metadata=OMIT)
    pull_secrets: tuple[str, ...] | None = field(default=None, metadata=OMIT)
    tolerations: tuple[Mapping[str, str], ...] | None = field(default=None, metadata=OMIT)
    # pinned to this node (spec.nodeName, past a cordon): an upgrade's per-node verification
    node: str | None = field(default=None, metadata=OMIT)
    # the answers' own verification pod (rollout.verifyCommand); it passes by exiting 0,
    # where the sample must also print "Test PASSED"
    command: tuple[str, ...] | None = field(default=None, metadata=OMIT)
    own: bool | None = field(default=None, metadata=OMIT)


# --- uninstall -----------------------------------------------------------------------


@dataclass(frozen=True)
class HelmUninstallParams(StepParams):
    ACTION = "helm-uninstall"
    release: str
    namespace: str
    command: tuple[str, ...]
    host_effects: tuple[str, ...]


@dataclass(frozen=True)
class DeleteSampleParams(StepParams):
    ACTION = "delete-sample"
    namespace: str


@dataclass(frozen=True)
class DeleteCrdsParams(StepParams):
    ACTION = "delete-crds"
    crds: tuple[str, ...]


@dataclass(frozen=True)
class PatchLabelsParams(StepParams):
    ACTION = "patch-labels"
    node: str
    labels: Mapping[str, str | None]  # None removes the label


@dataclass(frozen=True)
class DeleteStateParams(StepParams):
    ACTION = "delete-state"


@dataclass(frozen=True)
class RemoveHostAccessParams(StepParams):
    """The host-access namespace (hostAccess: pod): removed when the installer made it, and
    any host-access pod an interrupted run left in it."""

    ACTION = "remove-host-access"
    namespace: str


@dataclass(frozen=True)
class VerifyUninstalledParams(StepParams):
    ACTION = "verify-uninstalled"
    recorded: Mapping[str, Mapping[str, str]] | None  # None: no record was found
    timeout_seconds: int


# --- upgrade (installer.engine.upgrade) -----------------------------------------------


@dataclass(frozen=True)
class OperandImagesParams(StepParams):
    """Read, per node, the images kata-deploy's and the operator's DaemonSet pods run and the
    images their DaemonSets now ask for (read-only)."""

    ACTION = "operand-images"
    namespaces: tuple[str, ...]


@dataclass(frozen=True)
class ReleaseRevision(ParamsPart):
    """Where a rollback returns a release: `revision` 0 when the plan could not know it (a
    resumed upgrade, already past it): the newest revision not at `target` is taken."""

    release: str
    namespace: str
    revision: int
    version: str  # the chart version at that revision ("" when unknown)
    target: str | None  # the version the upgrade goes to


@dataclass(frozen=True)
class RollbackParams(StepParams):
    ACTION = "upgrade-rollback"
    releases: tuple[ReleaseRevision, ...]
    labels: Mapping[str, Mapping[str, str]]  # node -> its managed labels before the upgrade
    nodes: tuple[str, ...]  # the nodes the upgrade may cordon (not cordoned by others before)


@dataclass(frozen=True)
class UpgradeHelmParams(StepParams):
    """A chart's upgrade; on failure the upgrade rolls back (`rollback`)."""

    ACTION = "upgrade-helm"
    helm: HelmParams = field(metadata={"flatten": True})
    changed: tuple[str, ...] = ()  # the values that change, `key: old -> new`
    rollback: RollbackParams | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True)
class WaveParams(StepParams):
    """One wave of the rolling upgrade: its nodes cordoned, drained of Kata GPU pods, their
    kata-deploy and operand pods replaced, each verified with a pod pinned to it, uncordoned."""

    ACTION = "upgrade-wave"
    wave: int
    nodes: tuple[str, ...]
    kata_namespace: str
    operator_namespace: str
    kata_version: str | None
    operator_version: str | None
    drain_timeout_seconds: int
    roll_timeout_seconds: int
    verify: SampleParams | None  # None: answers turn the sample off
    rollback: RollbackParams
    # cordoned before the upgrade, by someone else: left cordoned
    keep_cordoned: tuple[str, ...] = ()


def _camel(name: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name)


def params_json(value: Any) -> Any:
    """Params as the plan's JSON has them: plain dicts and lists, today's keys."""
    if isinstance(value, CheckResult):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        camel = isinstance(value, ParamsPart)
        out: dict[str, Any] = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if item is None and f.metadata.get("omit"):
                continue
            if item is None and "none" in f.metadata:
                item = f.metadata["none"]
            if f.metadata.get("flatten"):
                out.update(params_json(item))
            else:
                out[f.metadata.get("json", _camel(f.name) if camel else f.name)] = \
                    params_json(item)
        return out
    if isinstance(value, Mapping):
        return {k: params_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [params_json(v) for v in value]
    return value
