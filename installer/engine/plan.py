"""build_plan(answers, facts) -> Plan: the one value both front ends show and the engine runs.

Pure: the same answers and facts always give the same plan, so the TUI's review screen,
`--dry-run` and the tests compare one value. Order is always gather -> check -> change ->
verify (the k0sctl model). A gather step appears only while its facts are missing; the
engine gathers, then plans again with what it learned.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from installer.answers.model import Answers, ChartSource
from installer.charts.compat import findings, host_findings
from installer.charts.effects import (
    gpu_operator_effects,
    kata_deploy_effects,
    untolerated_taints,
)
from installer.charts.helm import seconds
from installer.charts.registry import mirror_of
from installer.charts.values import (
    WORKLOAD_FOR_CHOICE,
    WORKLOAD_LABEL,
    gpu_operator_values,
    gpu_resource_name,
    kata_nodes_of,
    planned_kata_deploy_values,
    tolerations_for,
    value_warnings,
)
from installer.cluster.facts import (
    STATE_CONFIGMAP,
    Facts,
    NodeFacts,
    ReleaseFacts,
    containerd_version_of,
    distribution_of,
    kubelet_root_of,
    managed_labels,
    require_record,
)
from installer.engine.hostroute import host_pod
from installer.engine.leftovers import left_cordoned
from installer.engine.params import (
    ClusterChecksParams,
    CordonParams,
    DiscoverParams,
    DrainParams,
    GpuPodsParams,
    HelmParams,
    HostChecksParams,
    HostFixParams,
    KubeletSide,
    LabelParams,
    ProbeParams,
    RecordLabelsParams,
    RelabelParams,
    SampleParams,
    SshTarget,
    StepParams,
    UncordonParams,
    VerifyGpuOperatorParams,
    VerifyHostParams,
    VerifyKataDeployParams,
    VerifyRoleParams,
    params_json,
)
from installer.engine.rolechange import ROLE_CHANGE, RoleChange, leaving_kata, role_changes
from installer.engine.waves import wave_notes
from installer.errors import Problem, UserError
from installer.hosts.hostplan import HostPlan, plan_host
from remote.fixes.vfio_bind import AFTER_REBOOT

Phase = Literal["gather", "check", "change", "verify"]
PHASES: tuple[Phase, ...] = ("gather", "check", "change", "verify")


@dataclass(frozen=True)
class Change:
    """One thing the run would change: shown by dry-run, applied only through the engine."""

    kind: Literal["helm", "label", "host", "cluster"]
    target: str
    description: str
    detail: dict[str, Any] = field(default_factory=dict)
    # A host fix's own consent on top of the plan's: its policy, and whether the run asks
    # before it (policy `ask`, or a change that always needs a yes: a reboot, a rebind).
    policy: str = ""
    ask_first: bool = False
    # Set when the change happens only if something is found later (a reboot's re-probe):
    # shown now, planned for real then, and consented to again before it is made.
    condition: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What the change is about, independent of its exact content: a plan made later
        in the run (after a reboot) is held to the plan consented to by these keys."""
        return (self.kind, self.target, str(self.detail.get("fix") or self.detail.get("key")
                                             or ""))


P = TypeVar("P", bound=StepParams, covariant=True)


@dataclass(frozen=True)
class Step(Generic[P]):
    """One step; the type of its params names its executor (installer.engine.params)."""

    id: str
    phase: Phase
    title: str
    params: P
    changes: tuple[Change, ...] = ()
    note: str = ""
    # Read-only per-host work that may run beside its neighbours of the same action (the
    # engine runs such a run of steps side by side, under the SSH concurrency limit).
    side_by_side: bool = False

    @property
    def action(self) -> str:
        """The kind of step, as the plan's JSON names it."""
        return self.params.ACTION

    @property
    def fingerprint(self) -> str:
        """Identifies this exact step, so a journal can tell a resumed step from a changed one.
        Computed from the params' JSON form (`params_json`), not from their Python type, so
        a journal an earlier installer wrote with the same JSON still matches and its run
        resumes."""
        blob = json.dumps([self.id, params_json(self.params), [asdict(c) for c in self.changes]],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step[Any], ...]
    warnings: tuple[str, ...] = ()
    facts_source: str = ""

    def __post_init__(self) -> None:
        # Every planner's steps show the host-access pods they would make: added here, once,
        # so no planner (install, uninstall's revert, upgrade) can leave them out.
        object.__setattr__(self, "steps", tuple(with_host_pods(s) for s in self.steps))

    def phase(self, phase: Phase) -> tuple[Step[Any], ...]:
        return tuple(s for s in self.steps if s.phase == phase)

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for s in self.steps for c in s.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "factsSource": self.facts_source,
            "warnings": list(self.warnings),
            "steps": [
                {"id": s.id, "phase": s.phase, "title": s.title, "action": s.action,
                 "params": params_json(s.params), "note": s.note,
                 "changes": [asdict(c) for c in s.changes]}
                for s in self.steps
            ],
        }


HOST_ACCESS_POD = "host-access-pod"


def pod_targets(params: StepParams) -> list[SshTarget]:
    """The hosts a step reaches through a host-access pod (hostAccess: pod)."""
    targets = getattr(params, "targets", None) or (getattr(params, "target", None),)
    return [t for t in targets if isinstance(t, SshTarget) and t.pod]


def reached_by(targets: tuple[SshTarget, ...]) -> str:
    ways = {"through host-access pods" if t.pod else "over SSH" for t in targets}
    return " and ".join(sorted(ways, key=lambda w: w != "over SSH"))


def with_host_pods(step: Step[Any]) -> Step[Any]:
    """`step` with a change for each host-access pod it makes: created on the node for this
    step and deleted after it (installer.hosts.podaccess), so a dry-run, the review and the
    JSON plan list every pod before one exists. Adding them twice changes nothing."""
    have = {c.key for c in step.changes}
    # a step that waits (after the reboot) makes its pod only when it runs
    waits = step.changes[0].condition if step.changes and all(
        c.condition for c in step.changes) else ""
    pods = tuple(Change("cluster", t.pod, f"create pod {t.pod} on {t.node} for this step "
                        "(privileged: hostPID, the host's root at /host), then delete it; its "
                        "namespace is created, labelled privileged, if missing",
                        {"node": t.node, "key": HOST_ACCESS_POD}, condition=waits)
                 for t in pod_targets(step.params) if t.pod)
    new = tuple(c for c in pods if c.key not in have)
    return replace(step, changes=step.changes + new) if new else step


def chart_ref(source: ChartSource) -> list[str]:
    """The chart argument(s) helm takes for this source."""
    if source.oci:
        return [source.oci]
    if source.repo:
        return [str(source.name), "--repo", source.repo]
    return [str(source.path)]


def helm_install_args(release: str, source: ChartSource, version: str | None, namespace: str,
                      timeout: str, values_file: str, *, wait: bool) -> list[str]:
    """`helm upgrade --install` arguments; upgrade makes a re-run converge instead of fail.

    The GPU Operator goes without --wait: helm 4 waits for its ClusterPolicy to be Ready,
    which needs every GPU node prepared, and helm 3 does not wait for it at all - the
    verify step is the real wait for both.
    """
    args = ["upgrade", "--install", *_release_args(release, source, version, namespace),
            "--create-namespace", "--values", values_file]
    return [*args, "--wait", "--timeout", timeout] if wait else [*args, "--timeout", timeout]


def helm_template_args(release: str, source: ChartSource, version: str | None, namespace: str,
                       values_file: str) -> list[str]:
    """`helm template` arguments that render the chart exactly as the install would (the same
    source, version, namespace and values; hooks included, as helm renders them by default)
    without a cluster: what `gpu-kata-installer images` reads the images from."""
    return ["template", *_release_args(release, source, version, namespace),
            "--values", values_file]


def _release_args(release: str, source: ChartSource, version: str | None,
                  namespace: str) -> list[str]:
    args = [release, *chart_ref(source)]
    if version and not source.is_local:
        args += ["--version", version]
    return [*args, "--namespace", namespace]


def _node_problems(answers: Answers, facts: Facts) -> list[Problem]:
    if not facts.cluster:
        return []
    known = {n.name for n in facts.cluster.nodes}
    return [
        Problem(f"nodes.items[{i}].name",
                f"'{item.name}' is not a node of this cluster",
                f"use one of: {', '.join(sorted(known)) or '(the cluster has no nodes)'}")
        for i, item in enumerate(answers.nodes.items) if item.name not in known
    ]


def ssh_target(answers: Answers, name: str, node: NodeFacts | None) -> SshTarget:
    item = next((n for n in answers.nodes.items if n.name == name), None)
    address = (item.address if item else None) or (node.address if node else None)
    return SshTarget(name, address, (item.user if item else None) or answers.ssh.user,
                     (item.port if item else None) or answers.ssh.port,
                     host_pod(answers, name))


def _gather_steps(answers: Answers, facts: Facts, kata: list[str],
                  relabelled: list[str], leaving: list[str] = ()) -> list[Step[Any]]:
    steps: list[Step[Any]] = []
    kubeconfig, context = answers.cluster.kubeconfig, answers.cluster.context
    if facts.cluster is None:
        steps.append(Step("discover/cluster", "gather", "Discover the cluster's nodes and releases",
                          DiscoverParams(kubeconfig, context)))
        return steps
    unscanned = [n for n in relabelled
                 if (node := facts.cluster.node(n)) is not None and node.gpu_pods is None]
    if unscanned:
        steps.append(Step("scan/gpu-pods", "gather",
                          f"Look for GPU pods on the {len(unscanned)} node(s) to relabel "
                          "(read-only): " + ", ".join(unscanned),
                          GpuPodsParams(kubeconfig, context, tuple(unscanned))))
    # a node leaving Kata too: its GPUs and the installer's files there decide its change
    unprobed = [name for name in [*kata, *leaving] if name not in facts.hosts]
    if unprobed:
        targets = tuple(ssh_target(answers, n, facts.cluster.node(n)) for n in unprobed)
        steps.append(Step("probe/hosts", "gather",
                          f"Probe {len(unprobed)} host(s) {reached_by(targets)} (read-only): "
                          + ", ".join(unprobed), ProbeParams(targets)))
    return steps


def _kubernetes(node: NodeFacts | None) -> KubeletSide | None:
    """What the node's kubelet is, as discovery recorded it: where its settings and root are
    differs by distribution, and the host checks and fixes go by it."""
    if node is None:
        return None
    return KubeletSide(distribution_of(node), containerd_version_of(node), kubelet_root_of(node))


def _check_steps(answers: Answers, facts: Facts, kata: list[str], hosts: dict[str, HostPlan]
                 ) -> list[Step[Any]]:
    op = answers.gpu_operator
    steps: list[Step[Any]] = [
        Step("check/cluster", "check", "Cluster prerequisites (runtime, versions, NFD)",
             ClusterChecksParams(tuple(sorted(answers.checks.ignore)), tuple(kata),
                                 f"{op.namespace}/{op.release}-node-feature-discovery-worker"))]
    for name in kata:
        params = HostChecksParams(name, _kubernetes(
            facts.cluster.node(name) if facts.cluster else None))
        if host := hosts.get(name):
            params = replace(params, checks=host.checks, covered=host.covered,
                             unreachable=host.unreachable, deferred=host.deferred)
        k = params.kubernetes
        # kubeadm's layout goes without saying; another one changes where checks and fixes look
        note = (f"{k.distribution}, kubelet root {k.kubelet_root}"
                if k and k.distribution != "k8s" else "")
        steps.append(Step(f"check/{name}", "check", f"Host prerequisites on {name}",
                          params, note=note))
    return steps


def _fix_steps(answers: Answers, facts: Facts, hosts: dict[str, HostPlan],
               roles: list[RoleChange] = (), relabels: list[Step[LabelParams]] = ()
               ) -> list[Step[Any]]:
    """The host chains, then the role-change chains: one block of chains, so both run in
    the same waves of at most rollout.maxUnavailable nodes out of service."""
    chains = _host_chains(answers, facts, hosts)
    moving = {r.node for r in roles}
    steps = [s for s in chains if s.params.node not in moving]
    for role in roles:
        own = [s for s in chains if s.params.node == role.node
               and isinstance(s.params, HostFixParams)]
        label = next(s for s in relabels if s.params.node == role.node)
        steps += _role_chain(answers, facts, role, own, label)
    notes = wave_notes(steps, answers.rollout.max_unavailable)
    return [replace(s, note="; ".join(x for x in (s.note, notes[s.id]) if x)) for s in steps]


def _drain_steps(answers: Answers, name: str) -> tuple[list[Step[Any]], Step[Any]]:
    """Cordon and drain before a host's reboot; uncordon once it is Ready again."""
    def change(key: str, description: str) -> tuple[Change, ...]:
        return (Change("cluster", name, description, {"node": name, "key": key}),)

    before: list[Step[Any]] = [
        Step(f"cordon/{name}", "change", f"Cordon {name} before its reboot",
             CordonParams(name), change("cordon", f"cordon {name}"),
             note="a node cordoned before the run stays cordoned"),
        Step(f"drain/{name}", "change", f"Drain {name} before its reboot",
             DrainParams(name, answers.rollout.drain_timeout_seconds),
             change("drain", f"drain {name} (evict its pods; PDBs honoured; DaemonSet pods "
                    "stay; a pod no controller owns stops the drain)"))]
    after = Step(f"uncordon/{name}", "change", f"Uncordon {name} after its reboot",
                 UncordonParams(name),
                 change("uncordon", f"uncordon {name} once Ready after the reboot"))
    return before, after


def _host_chains(answers: Answers, facts: Facts, hosts: dict[str, HostPlan]
                 ) -> list[Step[Any]]:
    steps: list[Step[Any]] = []
    for name, host in hosts.items():
        node = facts.cluster.node(name) if facts.cluster else None
        target = ssh_target(answers, name, node)
        reboots = facts.cluster is not None and any(f.change.name == "reboot" for f in host.fixes)
        before, uncordon = _drain_steps(answers, name)
        if reboots:
            steps += before
        for fix in host.fixes:
            c = fix.change
            change = Change("host", name, f"{name}: {c.description}",
                            {"fix": c.name, "policy": fix.policy, "preview": c.preview},
                            policy=fix.policy, ask_first=fix.policy == "ask" or c.needs_consent)
            steps.append(Step(f"fix/{name}/{c.name}", "change", f"Host fix {c.name} on {name}",
                              HostFixParams(name, target, fix), (change,)))
        for later in host.after_reboot:
            change = Change("host", name, f"{name}: {later.description}",
                            {"fix": later.name, "policy": later.policy,
                             "preview": later.preview}, policy=later.policy, ask_first=True,
                            condition=AFTER_REBOOT)
            steps.append(Step(f"fix/{name}/{later.name}", "change",
                              f"Host fix {later.name} on {name} ({AFTER_REBOOT})",
                              HostFixParams(name, target), (change,),
                              note="planned again, and asked for again, after the reboot"))
        if reboots:
            steps.append(uncordon)
    return steps


def _leftover_uncordons(facts: Facts, planned: list[Step[Any]]
                        ) -> tuple[list[Step[UncordonParams]], list[str]]:
    """installer.engine.leftovers: a node an interrupted run left cordoned is uncordoned."""
    chained = {s.params.node for s in planned
               if isinstance(s.params, CordonParams | UncordonParams)}
    left, warnings = left_cordoned(facts, chained)
    return [Step(f"uncordon/{name}", "change",
                 f"Uncordon {name}, left cordoned by an interrupted run", UncordonParams(name),
                 (Change("cluster", name, f"uncordon {name} (cordoned for {why} by an "
                         "interrupted run; nothing is left to do there)",
                         {"node": name, "key": "uncordon", "left": why}),))
            for name, why in left], warnings


def _role_chain(answers: Answers, facts: Facts, role: RoleChange, fixes: list[Step[Any]],
                label: Step[LabelParams]) -> list[Step[Any]]:
    """Cordon, drain the pods holding NVIDIA devices, (Kata: its host fixes), relabel,
    (leaving Kata: its GPUs off vfio-pci, the reboot), verify in the new role, uncordon."""
    name = role.node
    node = facts.cluster.node(name) if facts.cluster else None
    target = ssh_target(answers, name, node)
    pods = node.gpu_pods if node else None
    evicts = (f": {', '.join(pods)}" if pods else ": none seen now") if pods is not None else ""

    def change(key: str, description: str, **detail: Any) -> tuple[Change, ...]:
        return (Change("cluster", name, description, {"node": name, "key": key, **detail}),)

    why = f"{role.have} -> {role.want}"
    steps: list[Step[Any]] = [
        Step(f"cordon/{name}", "change", f"Cordon {name} before its change of role",
             CordonParams(name, ROLE_CHANGE), change("cordon", f"cordon {name} ({why})"),
             note="a node cordoned before the run stays cordoned"),
        Step(f"drain/{name}", "change", f"Drain {name}'s GPU pods before its relabel",
             DrainParams(name, answers.rollout.drain_timeout_seconds, "nvidia"),
             change("drain", f"evict the pods holding NVIDIA devices on {name}{evicts} "
                    "(Eviction API, PDBs honoured, never forced; a pod no controller owns "
                    "stops the change, named)")),
        *fixes,
        replace(label, params=RelabelParams(name, label.params.key, label.params.value)),
    ]
    if role.role == "traditional":
        host = leaving_kata(answers, facts, name)
        for step_id, title, fix in ((f"release/{name}", f"GPUs of {name} off vfio-pci",
                                     host.release),
                                    (f"release/{name}/reboot", f"Reboot {name}", host.reboot)):
            if fix is None:
                continue
            c = fix.change
            steps.append(Step(step_id, "change", title, HostFixParams(name, target, fix),
                              (Change("host", name, f"{name}: {c.description}",
                                      {"fix": c.name, "policy": fix.policy,
                                       "preview": c.preview, "files": list(c.files)},
                                      policy=fix.policy,
                                      ask_first=fix.policy == "ask" or c.needs_consent),)))
        checks = ("no GPU on vfio-pci, nvidia.com/gpu advertised, no Kata GPU resource")
    else:
        checks = "the kata runtime label, its GPU resource, GPUs on vfio-pci and the CDI spec"
    op = answers.gpu_operator
    steps += [
        Step(f"verify-role/{name}", "change", f"Verify {name} as {role.role}",
             VerifyRoleParams(name, role.role, gpu_resource_name(answers), target,
                              seconds(op.timeout)),
             change("verify-role", f"wait until {name} serves as {role.role} ({checks}); "
                    "it stays cordoned until then", role=role.role)),
        Step(f"uncordon/{name}", "change", f"Uncordon {name} in its new role",
             UncordonParams(name), change("uncordon", f"uncordon {name} once verified")),
    ]
    return steps


def _record_step(facts: Facts) -> list[Step[RecordLabelsParams]]:
    """Before the first change, remember the nodes' labels so uninstall can restore them."""
    if facts.cluster is None or facts.cluster.recorded_labels is not None:
        return []
    labels = {n.name: managed_labels(n.labels) for n in facts.cluster.nodes}
    ns, name = STATE_CONFIGMAP
    change = Change("cluster", f"{ns}/{name}",
                    f"record the nodes' current nvidia.com/ and katacontainers.io/ labels in "
                    f"ConfigMap {ns}/{name} (uninstall restores them)", {"labels": labels})
    return [Step("record/labels", "change", "Record the nodes' labels before changing them",
                 RecordLabelsParams(labels), (change,))]


def _label_steps(answers: Answers, facts: Facts, kata: list[str]
                 ) -> list[Step[LabelParams]]:
    """Every node chosen for Kata or traditional gets its workload label - the cluster
    default's Kata nodes too, since kata-deploy selects its nodes by that label."""
    chosen = [(item.name, item.choice) for item in answers.nodes.items if item.choice != "leave"]
    listed = {name for name, _ in chosen}
    chosen += [(name, "kata") for name in kata if name not in listed]
    steps = []
    for name, choice in chosen:
        want = WORKLOAD_FOR_CHOICE[choice]
        node = facts.cluster.node(name) if facts.cluster else None
        have = node.workload if node else None
        known = facts.cluster is not None
        changes: tuple[Change, ...] = ()
        note = f"already {WORKLOAD_LABEL}={want}" if known and have == want else ""
        if not note:
            changes = (Change("label", name,
                              f"label node {name} {WORKLOAD_LABEL}={want}"
                              + (f" (was {have})" if have else ""),
                              {"node": name, "key": WORKLOAD_LABEL, "from": have, "to": want}),)
        steps.append(Step(f"label/{name}", "change", f"Label {name} for {choice}",
                          LabelParams(name, WORKLOAD_LABEL, want), changes, note))
    return steps


def _labels_after(facts: Facts, label_steps: list[Step[LabelParams]]
                  ) -> dict[str, dict[str, str]]:
    """Each node's labels once the plan's label steps are done: what the charts' selectors
    will see."""
    labels = {n.name: dict(n.labels) for n in facts.cluster.nodes} if facts.cluster else {}
    for step in label_steps:
        for c in step.changes:
            labels.setdefault(c.target, {})[c.detail["key"]] = c.detail["to"]
    return labels


def release_deployed(current: ReleaseFacts, version: str | None, source: ChartSource,
                     values: dict[str, Any]) -> bool:
    """The release is deployed at this chart version (any, for a local chart) with exactly
    these values: nothing for helm to do."""
    return (current.status == "deployed" and (source.is_local or current.version == version)
            and current.values == values)


def _helm_step(step_id: str, title: str, release: str, source: ChartSource, version: str | None,
               namespace: str, timeout: str, values: dict[str, Any], facts: Facts,
               host_effects: list[str], *, wait: bool) -> Step[HelmParams]:
    current = facts.cluster.release(release, namespace) if facts.cluster else None
    up_to_date = current is not None and release_deployed(current, version, source, values)
    params = HelmParams(release, namespace, source.describe(), version, values,
                        tuple(host_effects),
                        ("helm", *helm_install_args(release, source, version, namespace,
                                                    timeout, "<values.yaml>", wait=wait)))
    if up_to_date:
        return Step(step_id, "change", title, params,
                    note=f"release {namespace}/{release} already deployed with these values")
    verb = "upgrade" if current else "install"
    if current and current.status.startswith("pending-"):
        # An interrupted helm leaves the release locked; undo its half-finished operation.
        params = replace(params, recover="uninstall" if current.status == "pending-install"
                         else "rollback")
    recover = params.recover
    change = Change("helm", f"{namespace}/{release}",
                    (f"helm {recover} the release left {current.status} by an interrupted run, "
                     "then " if recover and current else "")
                    + f"helm {verb} {release} ({source.describe()} {version or ''}) "
                    f"in namespace {namespace}".replace("  ", " "), params_json(params))
    return Step(step_id, "change", title, params, (change,))


def _verify_steps(answers: Answers, facts: Facts, kata: list[str],
                  kata_nodes: list[NodeFacts]) -> list[Step[Any]]:
    resource = gpu_resource_name(answers)
    kd, op = answers.kata_deploy, answers.gpu_operator
    nodes = tuple(kata)
    steps: list[Step[Any]] = [
        Step("verify/kata-deploy", "verify", "kata-deploy installed on every Kata node",
             VerifyKataDeployParams(nodes, kd.namespace, seconds(kd.timeout))),
        Step("verify/gpu-operator", "verify",
             "GPU Operator ready: ClusterPolicy, operands, GPU resources",
             VerifyGpuOperatorParams(nodes, op.namespace, resource, seconds(op.timeout))),
    ]
    steps += [Step(f"verify/host/{name}", "verify", f"GPUs on vfio-pci and CDI spec on {name}",
                   VerifyHostParams(name, resource, ssh_target(
                       answers, name, facts.cluster.node(name) if facts.cluster else None)),
                   side_by_side=True)
              for name in kata]
    if answers.sample.run:
        s = answers.sample
        # The sample must tolerate what keeps pods off the Kata nodes (a GPU pool tainted
        # nvidia.com/gpu=present:NoSchedule), or it waits Pending for a node it cannot use.
        tolerations = tolerations_for(t for n in kata_nodes for t in n.taints)
        params = SampleParams(sample_image(answers), s.memory, s.timeout_seconds,
                              resource, "default", nodes,
                              tuple(answers.images.pull_secrets) or None,
                              tuple(tolerations) or None)
        steps.append(Step("sample/cuda-vectoradd", "verify",
                          "Run the CUDA vector-add sample in a Kata VM", params))
    return steps


def sample_image(answers: Answers) -> str:
    """The sample's image, from the private registry when the answers name one."""
    registry = answers.images.registry
    return mirror_of(answers.sample.image, registry) if registry else answers.sample.image


def build_plan(answers: Answers, facts: Facts) -> Plan:
    """Plan the run. Raises UserError when the answers name nodes the cluster lacks, or the
    record of the nodes' labels cannot be read."""
    require_record(facts)
    problems = _node_problems(answers, facts)
    if problems:
        raise UserError("the answers do not match the cluster", problems)
    kata = answers.nodes.kata_nodes(facts.cluster)
    hosts = {n: plan_host(answers, facts, n) for n in kata if n in facts.hosts}
    kd, op = answers.kata_deploy, answers.gpu_operator
    labels = _label_steps(answers, facts, kata)
    relabelled = [c.target for s in labels for c in s.changes]
    roles = role_changes(answers, facts)
    moving = {r.node for r in roles}
    leaving = [r.node for r in roles if r.role == "traditional"]
    nodes = facts.cluster.nodes if facts.cluster else ()
    kata_nodes = kata_nodes_of(answers, facts.cluster)
    table = findings(kd.version, op.version, kata_nodes)
    table += host_findings(op.version, {n: facts.hosts.get(n) for n in kata})
    refused = [Problem(f.path, f.text, f.fix) for f in table if f.level == "refuse"]
    if refused:
        raise UserError("these chart versions cannot run on the Kata nodes", refused)
    kd_values = planned_kata_deploy_values(kd, kata_nodes, answers.images)
    op_values = gpu_operator_values(answers)
    after = _labels_after(facts, labels)
    chains = _fix_steps(answers, facts, hosts, roles, labels)
    leftovers, left_warnings = _leftover_uncordons(facts, chains)
    steps = [
        *_gather_steps(answers, facts, kata, relabelled, leaving),
        *_check_steps(answers, facts, kata, hosts),
        *_record_step(facts),
        *chains,
        *leftovers,
        *[s for s in labels if s.params.node not in moving],
        _helm_step("install/kata-deploy", "Install kata-deploy", kd.release, kd.chart, kd.version,
                   kd.namespace, kd.timeout, kd_values, facts,
                   kata_deploy_effects(kd_values, after, nodes) if facts.cluster else [],
                   wait=True),
        _helm_step("install/gpu-operator", "Install the NVIDIA GPU Operator", op.release,
                   op.chart, op.version, op.namespace, op.timeout, op_values, facts,
                   gpu_operator_effects(op_values, nodes, after), wait=False),
        *_verify_steps(answers, facts, kata, kata_nodes),
    ]
    warnings = list(value_warnings(answers)) + left_warnings
    warnings += [str(f) for f in table if f.level == "warn"]
    warnings += untolerated_taints(op_values, kata_nodes)
    for step in steps:
        for change in step.changes:
            node = facts.cluster.node(change.target) if facts.cluster else None
            if change.kind == "label" and node and node.gpu_pods and node.name not in moving:
                warnings.append(f"{node.name} runs GPU pods ({', '.join(node.gpu_pods[:3])}"
                                f"{', ...' if len(node.gpu_pods) > 3 else ''}); relabelling it "
                                "moves its GPUs away from them - drain it first")
    warnings += [w for r in roles if r.role == "traditional"
                 for w in leaving_kata(answers, facts, r.node).warnings]
    if not kata:
        warnings.append("no node is chosen for Kata: nothing will run GPU workloads in VMs")
    return Plan(tuple(steps), tuple(warnings), facts.source)
