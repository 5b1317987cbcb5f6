"""Troubleshooting rules: cluster state and host facts in, findings ordered by likelihood out.

Each rule knows one failure operators actually hit (domain.md section 6, plus the guide's
own checks) and says what it saw (evidence: objects, log lines, host facts, verbatim), why
that points at the cause, and the fix - a command or the wizard action that applies it.
The headless `troubleshoot`, the support bundle and the wizard's troubleshooting screen
all read these same findings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer.answers.model import KATA_NAMESPACE, OPERATOR_NAMESPACE
from installer.charts.devplugin import PGPU, gpu_resources
from installer.charts.values import VALID_WORKLOADS
from installer.charts.verify import CC_READY_LABEL, DRIVER_LABEL, GPU_RUNTIME_CLASS
from installer.cluster.apierrors import ReadError
from installer.cluster.facts import WORKLOAD_LABEL, NodeFacts, ReleaseFacts
from installer.cluster.podread import PodReading


@dataclass(frozen=True)
class CheckView:
    """A host check's result as the rules read it (installer.hosts.checks.CheckResult fits)."""

    name: str
    status: str
    evidence: tuple[str, ...] = ()
    remedy: str = ""
    summary: str = ""
    ignored: bool = False  # the answers' checks.ignore: the rules still read it, no verdict


@dataclass(frozen=True)
class EventInfo:
    namespace: str
    object: str  # "Pod/name", "Node/name"
    reason: str
    message: str
    type: str = "Warning"


@dataclass(frozen=True)
class State:
    nodes: tuple[NodeFacts, ...] = ()
    runtime_classes: tuple[str, ...] = ()
    cluster_policy: dict[str, Any] | None = None
    releases: tuple[ReleaseFacts, ...] = ()
    nfd_workers: tuple[str, ...] = ()
    pods: tuple[PodReading, ...] = ()
    events: tuple[EventInfo, ...] = ()
    host_checks: dict[str, tuple[CheckView, ...]] = field(default_factory=dict)
    nvswitch_nodes: tuple[str, ...] = ()  # nodes whose host has NVSwitches
    operator_namespace: str = OPERATOR_NAMESPACE
    kata_namespace: str = KATA_NAMESPACE
    unread: tuple[ReadError, ...] = ()  # what the API server refused: the rules saw less


@dataclass(frozen=True)
class Finding:
    rule: str
    symptom: str
    cause: str
    evidence: tuple[str, ...]
    fix: str
    score: int
    # How the troubleshoot screen marks and places it (the rule when `where` is empty); not
    # in the JSON, whose shape scripts rely on.
    severity: str = "error"
    where: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "symptom": self.symptom, "cause": self.cause,
                "evidence": list(self.evidence), "fix": self.fix, "score": self.score}


def _sandbox(state: State) -> dict[str, Any]:
    return ((state.cluster_policy or {}).get("spec") or {}).get("sandboxWorkloads") or {}


def _kata_nodes(state: State) -> list[NodeFacts]:
    default = _sandbox(state).get("defaultWorkload")
    return [n for n in state.nodes if n.workload == "vm-passthrough"
            or (n.workload is None and n.gpu_present and default == "vm-passthrough")]


def _events(state: State, pattern: str) -> list[EventInfo]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [e for e in state.events if rx.search(e.message) or rx.search(e.reason)]


def _log_lines(state: State, pattern: str, pods: list[PodReading] | None = None) -> list[str]:
    rx = re.compile(pattern, re.IGNORECASE)
    return [f"{p.namespace}/{p.name}: {line}" for p in (pods if pods is not None else state.pods)
            for line in p.log_tail if rx.search(line)]


def _check(state: State, name: str, statuses: tuple[str, ...] = ("fail",)
           ) -> list[tuple[str, CheckView]]:
    return [(node, c) for node, checks in state.host_checks.items() for c in checks
            if c.name == name and c.status in statuses]


def _ev(events: list[EventInfo]) -> list[str]:
    return [f"event {e.object} {e.reason}: {e.message}" for e in events[:5]]


def _check_ev(hits: list[tuple[str, CheckView]], lines: int = 3) -> list[str]:
    """A check quoted as evidence; its "host NODE check NAME" prefix is how
    troubleshoot_findings knows the check is explained and does not list it again."""
    return [f"host {node} check {c.name}: {line}" for node, c in hits
            for line in c.evidence[:lines]]


def _gpu_pods_blocked(state: State) -> list[PodReading]:
    return [p for p in state.pods if p.runtime_class == GPU_RUNTIME_CLASS
            and p.phase == "Pending"]


Rule = Callable[[State], list[Finding]]


def rule_invalid_workload_label(state: State) -> list[Finding]:
    bad = [n for n in state.nodes if n.workload is not None and n.workload not in VALID_WORKLOADS]
    if not bad:
        return []
    logs = _log_lines(state, r"invalid GPU workload config")
    return [Finding(
        "workload-label-invalid",
        "the operator logs 'invalid GPU workload config' and gives the node the ClusterPolicy's "
        "default workload (container unless sandboxWorkloads.defaultWorkload says otherwise)",
        f"node {n.name} is labelled {WORKLOAD_LABEL}={n.workload}; valid values are "
        f"{', '.join(VALID_WORKLOADS)}",
        (f"node {n.name} label {WORKLOAD_LABEL}={n.workload}", *logs[:3]),
        f"kubectl label node {n.name} {WORKLOAD_LABEL}=vm-passthrough --overwrite "
        "(or choose kata for the node in the wizard)", 100) for n in bad]


def rule_sandbox_mode(state: State) -> list[Finding]:
    if state.cluster_policy is None:
        return []
    sandbox = _sandbox(state)
    spec = f"ClusterPolicy spec.sandboxWorkloads = {sandbox}"
    cdi = _events(state, r"unresolvable CDI devices|nvidia.com/pgpu")
    if sandbox.get("enabled") is not True:
        return [Finding("sandbox-disabled", "vm-passthrough nodes get container operands or none",
                        "sandboxWorkloads.enabled is not true: the operator ignores the "
                        f"{WORKLOAD_LABEL} label", (spec, *_ev(cdi)),
                        "set gpuOperator values sandboxWorkloads.enabled=true and run the "
                        "installer again", 97)]
    if sandbox.get("mode") != "kata":
        return [Finding("sandbox-mode-not-kata",
                        "GPU pods Pending or failing with 'unresolvable CDI devices'",
                        f"sandboxWorkloads.mode is {sandbox.get('mode')!r}: the KubeVirt device "
                        "plugin is deployed, no CDI spec is written",
                        (spec, *_ev(cdi)),
                        "set sandboxWorkloads.mode=kata (remove the override from "
                        "gpuOperator.values) and run the installer again", 96)]
    return []


def rule_runtime_class_missing(state: State) -> list[Finding]:
    if GPU_RUNTIME_CLASS in state.runtime_classes:
        return []
    events = _events(state, rf'RuntimeClass "?{GPU_RUNTIME_CLASS}"? not found')
    kd = next((r for r in state.releases if r.chart == "kata-deploy"), None)
    if kd is None:
        cause = "kata-deploy is not installed"
    elif kd.status != "deployed":
        cause = f"the kata-deploy release is {kd.status}"
    else:
        cause = "kata-deploy is installed without the qemu-nvidia-gpu shim"
    evidence = [f"RuntimeClasses present: {', '.join(state.runtime_classes) or 'none'}",
                *(f"release {kd.namespace}/{kd.name} {kd.chart}-{kd.version} {kd.status}"
                  for kd in [kd] if kd), *_ev(events)]
    return [Finding("runtime-class-missing",
                    f'pods fail with RuntimeClass "{GPU_RUNTIME_CLASS}" not found',
                    cause, tuple(evidence),
                    "run the installer (it installs kata-deploy with the GPU shim first); do not "
                    "use the deprecated kataManager", 90 if events or _gpu_pods_blocked(state)
                    else 75)]


def rule_host_driver(state: State) -> list[Finding]:
    out = []
    # Only where Kata is meant to run: a traditional node's containers need that driver.
    kata = {n.name for n in _kata_nodes(state)}
    labelled = {n.name for n in state.nodes
                if n.labels.get(DRIVER_LABEL) == "pre-installed" and n.name in kata}
    checks = dict(_check(state, "host-nvidia-driver"))
    validator = [p for p in state.pods if p.labels.get("app") == "nvidia-sandbox-validator"]
    for node in sorted(labelled | set(checks)):
        logs = _log_lines(state, r"not bound to 'vfio-pci'|driver: 'nvidia'",
                          [p for p in validator if p.node == node])
        evidence = []
        if node in labelled:
            evidence.append(f"node {node} label {DRIVER_LABEL}=pre-installed")
        evidence += logs[:2] + _check_ev([(node, checks[node])] if node in checks else [])
        out.append(Finding("host-driver-loaded",
                           "the sandbox validator crash-loops: device not bound to 'vfio-pci'",
                           f"the NVIDIA driver is loaded on host {node}, so its GPUs cannot move "
                           "to vfio-pci", tuple(evidence),
                           "wizard: Host fixes -> bind GPUs to vfio-pci on "
                           f"{node} (unloads the driver, blacklists it); then reboot if asked",
                           92 if logs or node in labelled else 70))
    return out


def rule_podresources_gate(state: State) -> list[Finding]:
    events = _events(state, r"PodResources API Get method disabled")
    hits = _check(state, "kubelet-podresources-gate")
    if not events and not hits:
        return []
    nodes = sorted({n for n, _ in hits})
    # The host check's remedy says where this node's kubelet keeps the gate (and whether
    # the fix can set it there: not on k0s, k3s or RKE2).
    by_hand = [c.remedy for _, c in hits if "The kubelet-gate fix does not" in c.remedy]
    return [Finding("kubelet-podresources-gate",
                    "GPU pod stuck in ContainerCreating: 'PodResources API Get method disabled'",
                    "the kubelet is older than 1.34 and its KubeletPodResourcesGet feature gate "
                    f"is off{' on ' + ', '.join(nodes) if nodes else ''}",
                    tuple(_ev(events) + _check_ev(hits)),
                    by_hand[0] if by_hand else
                    "wizard: Host fixes -> kubelet feature gate (sets KubeletPodResourcesGet: "
                    "true where the node's kubelet reads it and restarts the kubelet)",
                    88 if events else 60)]


def rule_cc_blocks_scheduling(state: State) -> list[Finding]:
    out = []
    for n in _kata_nodes(state):
        cc = n.labels.get(CC_READY_LABEL)
        if cc == "false":
            continue
        # The scheduler reports each node's first failing filter, NodeAffinity before
        # NodeResourcesFit: a pod with an "Insufficient ..." node matched the selector
        # somewhere, so its other mismatches are its own pin, not the cc.ready.state label.
        blocked = [p for p in _gpu_pods_blocked(state) if re.search(
            r"node selector|node affinity", p.unschedulable, re.IGNORECASE)
            and "Insufficient" not in p.unschedulable]
        crash = [p for p in state.pods if p.labels.get("name") == "nvidia-cc-manager"
                 and p.node == n.name and p.waiting_reason]
        not_capable = _log_lines(state, r"not cc-capable", crash)
        if not_capable:
            out.append(Finding("cc-gpus-not-capable",
                               "nvidia-cc-manager in CrashLoopBackOff",
                               f"confidential computing is on for {n.name} but its GPUs are not "
                               "CC-capable", tuple(not_capable[:3]),
                               "set gpuOperator.ccMode: off (ccManager.defaultMode=off) or label "
                               f"the node: kubectl label node {n.name} nvidia.com/cc.mode=off",
                               91))
            continue
        evidence = [f"node {n.name} label {CC_READY_LABEL}={cc if cc is not None else '(absent)'}"]
        evidence += [f"pod {p.namespace}/{p.name} Pending: {p.unschedulable}" for p in blocked]
        evidence += [f"pod {p.namespace}/{p.name} {p.waiting_reason}" for p in crash]
        out.append(Finding("cc-ready-state-blocks-scheduling",
                           "GPU pods Pending: didn't match node selector, although GPUs are free",
                           f"the {GPU_RUNTIME_CLASS} RuntimeClass schedules only on nodes with "
                           f"{CC_READY_LABEL}=false; {n.name} has "
                           f"{cc if cc is not None else 'no such label'} - the cc-manager is "
                           "missing or crashing, or the GPUs are in CC mode",
                           tuple(evidence),
                           "check the nvidia-cc-manager pod; with CC-capable GPUs you do not "
                           "want in CC mode, set gpuOperator.ccMode: off",
                           86 if blocked else 55))
    return out


def _gpus(n: NodeFacts) -> dict[str, int]:
    """A node's GPU resources: nvidia.com/pgpu, or the per-model names
    (installer.charts.devplugin)."""
    return {**gpu_resources(n.allocatable, PGPU), **gpu_resources(n.allocatable, None)}


def rule_insufficient_gpus(state: State) -> list[Finding]:
    events = _events(state, r"Insufficient nvidia\.com/")
    if not events:
        return []
    kata = _kata_nodes(state)
    if not kata:
        cause = f"no node is labelled {WORKLOAD_LABEL}=vm-passthrough"
        fix = "choose kata for your GPU nodes in the wizard (or label them) and run again"
    elif not any(_gpus(n) for n in kata):
        cause = ("the Kata nodes advertise no nvidia.com/pgpu (nor a per-model GPU resource): "
                 "operands not running or GPUs not bound to vfio-pci")
        fix = "see the operand pods below and the host checks; the wizard's host fixes bind GPUs"
    else:
        cause = "every passthrough GPU is already in use"
        fix = "wait for GPU pods to finish, or add GPU nodes"
    evidence = _ev(events) + [f"node {n.name} allocatable " + (", ".join(
        f"{r}={c}" for r, c in _gpus(n).items()) or f"{PGPU}=0") for n in kata]
    return [Finding("insufficient-pgpu", "pods Pending: Insufficient nvidia.com/pgpu", cause,
                    tuple(evidence), fix, 84)]


def rule_kata_overhead(state: State) -> list[Finding]:
    """Kata GPU pods Pending for memory or CPU: the scheduler adds the RuntimeClass's overhead
    (kata-deploy's chart: 10240Mi and one CPU per pod, for the VM) to the pod's own requests,
    so "Insufficient memory" on a node with more free memory than the pod asks for is the
    overhead's doing - a cause the message itself never names."""
    rx = re.compile(r"Insufficient (memory|cpu)\b", re.IGNORECASE)
    hits = []
    for p in _gpu_pods_blocked(state):
        events = [e for e in state.events if e.object == f"Pod/{p.name}"
                  and e.namespace == p.namespace and rx.search(e.message)]
        lacking = {m.lower() for m in rx.findall(p.unschedulable)}
        lacking |= {m.lower() for e in events for m in rx.findall(e.message)}
        if lacking:
            hits.append((p, sorted(lacking), events))
    if not hits:
        return []
    lacking = sorted({r for _, rs, _ in hits for r in rs})
    overhead = next((p.overhead for p, _, _ in hits if p.overhead), {})
    added = ", ".join(f"{r} {v}" for r, v in sorted(overhead.items()))
    evidence: list[str] = []
    for p, _, events in hits[:3]:
        own = ", ".join(f"{r} {v}" for r, v in sorted(p.requests.items())) or "none"
        evidence += [f"pod {p.namespace}/{p.name} Pending: {p.unschedulable}" if
                     p.unschedulable else f"pod {p.namespace}/{p.name} Pending",
                     *_ev(events[:1]),
                     f"pod {p.namespace}/{p.name} requests {own}; overhead "
                     f"{', '.join(f'{r} {v}' for r, v in sorted(p.overhead.items())) or 'none'}"]
    evidence += [f"node {n.name} allocatable " + ", ".join(
        f"{r} {n.allocatable.get(r, '?')}" for r in lacking) for n in _kata_nodes(state)[:5]]
    cause = (f"no Kata node has room for the pod's requests plus the {GPU_RUNTIME_CLASS} "
             f"RuntimeClass overhead ({added}), which the scheduler adds to every pod of that "
             "class for its VM" if overhead else
             f"no Kata node has the {' and '.join(lacking)} the pod requests")
    return [Finding("kata-overhead-no-room",
                    f"Kata GPU pod Pending: Insufficient {' and '.join(lacking)}", cause,
                    tuple(evidence),
                    "free " + " and ".join(lacking) + " on a Kata node (other pods' requests), "
                    "lower the pod's own requests by what the overhead takes, or add Kata "
                    "nodes with more room", 83)]


def rule_iommu(state: State) -> list[Finding]:
    out = []
    for node, c in _check(state, "iommu-enabled"):
        out.append(Finding("iommu-off", "vfio binding fails; /sys/kernel/iommu_groups is empty",
                           f"the IOMMU is off on host {node} (firmware or kernel command line)",
                           tuple(_check_ev([(node, c)])),
                           f"wizard: Host fixes -> IOMMU on {node} (kernel command line, then a "
                           "reboot); enable VT-d/AMD-Vi and ACS in firmware if it stays off",
                           82))
    for node, c in _check(state, "iommu-group-isolation"):
        out.append(Finding("iommu-group-shared", "vfio reports 'group is not viable'",
                           f"a GPU on {node} shares its IOMMU group with unrelated devices",
                           tuple(_check_ev([(node, c)])),
                           "enable ACS in firmware or move the card to another slot", 78))
    return out


def rule_nvswitch(state: State) -> list[Finding]:
    logs = _log_lines(state, r"error 802|cudaErrorSystemNotReady")
    if not state.nvswitch_nodes or not logs:
        return []
    return [Finding("nvswitch-not-passed", "multi-GPU pods fail with CUDA error 802",
                    "the host has NVSwitches that were not passed through with the GPUs",
                    (f"NVSwitches on {', '.join(state.nvswitch_nodes)}", *logs[:3]),
                    "request all GPUs and NVSwitches in one pod (nvidia.com/nvswitch) and let "
                    "the vfio manager bind NVSwitches (BIND_NVSWITCHES=true)", 80)]


def rule_host_fabric_manager(state: State) -> list[Finding]:
    """The host's own Fabric Manager (the nvswitch check's evidence): with Kata it belongs in
    the guest; on the host it holds the NVSwitches through the host driver."""
    out = []
    logs = _log_lines(state, r"error 802|cudaErrorSystemNotReady")
    for node, c in _check(state, "nvswitch", ("warn", "fail")):
        fm = [e for e in c.evidence if "(running)" in e or "enabled at boot" in e]
        if not fm:
            continue
        running = any("(running)" in e for e in fm)
        out.append(Finding(
            "host-fabric-manager", "multi-GPU Kata pods fail with CUDA error 802, or the "
            "NVSwitches never reach vfio-pci",
            f"nvidia-fabricmanager {'runs' if running else 'is enabled'} on host {node}: "
            "it holds the NVSwitches through the host driver, while Kata runs Fabric Manager "
            "inside the guest",
            tuple(f"host {node} check {c.name}: {e}" for e in fm) + tuple(logs[:2]),
            "on the host: systemctl disable --now nvidia-fabricmanager (or mask it), keep the "
            "host NVIDIA driver off, then let the vfio manager bind the NVSwitches "
            "(BIND_NVSWITCHES=true)", 83 if running or logs else 58))
    return out


def rule_runtime_timeout(state: State) -> list[Finding]:
    events = _events(state, r"create container timeout|context deadline exceeded")
    hits = _check(state, "kubelet-runtime-timeout", ("fail", "warn"))
    if not events:
        return []
    # The host check's remedy names this node's own kubelet settings (k0s, MicroK8s, ...).
    return [Finding("kubelet-runtime-timeout", "'create container timeout' after ~20 minutes",
                    "the kubelet's runtimeRequestTimeout is too short for a Kata VM pulling a "
                    "large image", tuple(_ev(events) + _check_ev(hits)),
                    hits[0][1].remedy if hits and hits[0][1].remedy else
                    "set runtimeRequestTimeout: 20m in /var/lib/kubelet/config.yaml (where "
                    "kubeadm keeps it; k0s, MicroK8s, k3s and RKE2 keep it elsewhere) and "
                    "restart the kubelet", 72 if hits else 58)]


def rule_stale_runtime(state: State) -> list[Finding]:
    events = _events(state, r"no runtime for|RuntimeHandler .* not|failed to get sandbox runtime")
    not_ready = [n for n in state.nodes if n.ready is False]
    if not events and not not_ready:
        return []
    evidence = _ev(events) + [f"node {n.name} NotReady" for n in not_ready]
    return [Finding("containerd-reconfigured",
                    "pods hang on a stale runtime handler, or a node went NotReady",
                    "kata-deploy reconfigured and restarted containerd (upgrade or uninstall)",
                    tuple(evidence), "retry the pods; check containerd on the node "
                    "(systemctl status containerd) and the kata-deploy pod's log",
                    70 if events else 50)]


def rule_two_nfd(state: State) -> list[Finding]:
    if len(state.nfd_workers) < 2:
        return []
    return [Finding("nfd-twice", "node labels flap; two NFD instances fight",
                    "more than one node-feature-discovery worker runs",
                    tuple(f"DaemonSet {w}" for w in state.nfd_workers),
                    "keep one: set kata-deploy's node-feature-discovery.enabled=false, or the "
                    "operator's nfd.enabled=false when a cluster NFD already exists", 80)]


def rule_consumer_gpu(state: State) -> list[Finding]:
    return [Finding("consumer-gpu", "passthrough of a GeForce GPU does not work",
                    f"host {node} has a consumer GPU, unsupported by these components",
                    tuple(_check_ev([(node, c)], 2)),
                    "use data-center GPUs for Kata passthrough", 40)
            for node, c in _check(state, "consumer-gpu", ("fail", "warn"))]


def rule_nothing_labelled(state: State) -> list[Finding]:
    gpu_nodes = [n for n in state.nodes if n.gpu_present]
    if not gpu_nodes or _kata_nodes(state):
        return []
    return [Finding("no-kata-nodes", "no node runs Kata GPU workloads",
                    f"no GPU node is labelled {WORKLOAD_LABEL}=vm-passthrough and the default "
                    "workload is not vm-passthrough",
                    tuple(f"node {n.name} {WORKLOAD_LABEL}={n.workload or '(unset)'}"
                          for n in gpu_nodes[:5]),
                    "choose kata for GPU nodes in the wizard, or set nodes.default: kata", 62)]


def rule_operator_missing(state: State) -> list[Finding]:
    if state.cluster_policy is not None:
        return []
    op = next((r for r in state.releases if r.chart == "gpu-operator"), None)
    evidence = (f"release {op.namespace}/{op.name} {op.status}" if op else
                "no gpu-operator release", "ClusterPolicy cluster-policy not found")
    return [Finding("operator-missing", "no GPU resources on any node",
                    "the GPU Operator is not installed" if op is None else
                    "the GPU Operator has not created its ClusterPolicy",
                    evidence, "run the installer; check the gpu-operator pod's log", 65)]


def rule_crashing_operands(state: State) -> list[Finding]:
    crash = [p for p in state.pods if p.namespace in (state.operator_namespace,
                                                      state.kata_namespace)
             and p.waiting_reason in ("CrashLoopBackOff", "Error", "ImagePullBackOff",
                                      "ErrImagePull")]
    return [Finding("pod-failing", f"{p.namespace}/{p.name} is {p.waiting_reason}",
                    f"{p.name} on {p.node or '(unscheduled)'} keeps failing",
                    tuple([f"restarts {p.restarts}", *p.log_tail[-3:]]),
                    f"read its log: kubectl logs -n {p.namespace} {p.name} --previous", 45)
            for p in crash]


RULES: tuple[Rule, ...] = (
    rule_invalid_workload_label, rule_sandbox_mode, rule_runtime_class_missing, rule_host_driver,
    rule_podresources_gate, rule_cc_blocks_scheduling, rule_insufficient_gpus,
    rule_kata_overhead, rule_iommu, rule_nvswitch, rule_host_fabric_manager,
    rule_runtime_timeout, rule_stale_runtime, rule_two_nfd, rule_consumer_gpu,
    rule_nothing_labelled, rule_operator_missing, rule_crashing_operands,
)


def unread_findings(state: State) -> list[Finding]:
    """What the API server refused to let troubleshooting read (discovery's reads, the
    namespaces' pods and events, the ClusterPolicy), as findings to put before the rules'
    own. `cluster-unread` for a cluster-scoped resource, `namespace-unread` for the rest.

    Why not a rule: the troubleshoot screen already lists read errors beside its findings;
    the command line and the bundle have nothing else that would say their view is partial,
    and a clean diagnosis of half the cluster must not read as "no problem found"."""
    return [Finding("cluster-unread" if e.where == "the cluster" else "namespace-unread",
                    str(e), f"{e.refused}; every finding here comes from a view without it",
                    (f"HTTP {e.status} {e.reason}", *((e.said,) if e.said else ())),
                    e.fix, 100)
            for e in state.unread]


def diagnose(state: State) -> list[Finding]:
    """Every finding, most likely first (stable for equal scores: rule order)."""
    findings = [f for rule in RULES for f in rule(state)]
    return sorted(findings, key=lambda f: -f.score)


def check_findings(state: State, cited: frozenset[str] = frozenset()) -> list[Finding]:
    """The host checks' own verdicts (fail, then warn; ignored ones left out), after the
    rules: a check that fails or warns is worth saying even when no rule turns it into a
    cause (a short kubelet runtimeRequestTimeout before any pod timed out, say). A check a
    rule's finding already cites (`cited`: "host NODE check NAME") is not said twice."""
    return [Finding("host-check", f"check {c.name} {'fails' if c.status == 'fail' else 'warns'}"
                    f" on host {node}", c.summary or f"{c.name}: {c.status}",
                    tuple(f"host {node}: {e}" for e in c.evidence[:3]),
                    c.remedy, 30 if c.status == "fail" else 20,
                    "error" if c.status == "fail" else "warning", f"{node} {c.name}")
            for status in ("fail", "warn")
            for node, checks in sorted(state.host_checks.items())
            for c in checks if c.status == status and not c.ignored
            and f"host {node} check {c.name}" not in cited]


def troubleshoot_findings(state: State,
                          failed_steps: tuple[tuple[str, str, str], ...] = ()) -> list[Finding]:
    """Everything troubleshooting reports, in order, for the command line, the bundle and the
    screen alike, so one cluster reads the same in each: what could not be read (every other
    finding is drawn from the rest), the wizard run's failed steps (path, message, detail;
    the command line has no run), the rules' findings most likely first, then the host
    checks' verdicts."""
    steps = [Finding("step-failed", f"step {path} failed", message, (), detail, 100,
                     where=path) for path, message, detail in failed_steps]
    found = diagnose(state)
    cited = frozenset(e.split(":", 1)[0] for f in found for e in f.evidence
                      if e.startswith("host "))
    return unread_findings(state) + steps + found + check_findings(state, cited)
