"""Small fakes for the screens tier, in the style of tests/unit/test_engine.py.

The executors emit the same events the real ones will (steps, changes through ctx.change,
helm output, pod statuses, pod logs, check results), so the screens are driven through the
real engine and the real bridge. The end-to-end tier swaps in the lab.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from installer.answers.model import SAMPLE_POD, Answers, Cluster, load_answers
from installer.cluster.facts import (
    ClusterFacts,
    Facts,
    NodeFacts,
    with_gpu_pods,
)
from installer.cluster.factsfile import load_recorded_facts
from installer.cluster.podread import PodReading
from installer.diagnosis.clusterinfo import ClusterView, EventRow
from installer.diagnosis.clusterstate import check_views
from installer.diagnosis.rules import State
from installer.engine import params as p
from installer.engine.events import Output, PodLog, PodStatus
from installer.engine.runner import Done
from installer.engine.steps import checks as real_checks
from installer.errors import StepFailed
from installer.hosts.sshtest import ConnectionReport
from installer.permit import Permit, require_permit
from remote.hostfacts import HostFacts
from remote.probe import probe_local
from screens.services import Services, run_checks
from screens.state import WizardState

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"
FACTS_SOURCE = "recorded:installer/examples/facts.yaml"
READY_HOST = probe_local(ROOT / "tests" / "fixtures" / "hosts" / "gpu-vfio-ready")


def example_answers() -> Answers:
    return load_answers(EXAMPLES / "answers.yaml")


def example_facts() -> Facts:
    """The recorded cluster with its host trees: gpu-node-2 still has the host driver, so
    the plan holds real host fixes. A stable source: snapshots must not depend on where the
    checkout lives."""
    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    assert facts.cluster is not None
    nodes = tuple(replace(n, created=CREATED.get(n.name)) for n in facts.cluster.nodes)
    return replace(facts, cluster=replace(facts.cluster, nodes=nodes), source=FACTS_SOURCE)


# When the example cluster's nodes joined, against the frozen clock (FROZEN: 2027-01-15
# 08:00 UTC), so the Age column reads the same in every run.
CREATED = {"control-1": "2025-11-02T09:14:00Z", "gpu-node-1": "2025-11-02T09:20:00Z",
           "gpu-node-2": "2026-03-18T16:05:00Z", "gpu-node-3": "2027-01-14T22:30:00Z"}


def ready_facts() -> Facts:
    """The same cluster with every GPU host already prepared: no host fixes."""
    facts = example_facts()
    return replace(facts, hosts={name: READY_HOST for name in facts.hosts})


def many_nodes_facts(n: int = 200) -> Facts:
    nodes = [NodeFacts(name="control-1", address="10.0.0.1", roles=("control-plane",),
                       kubelet_version="v1.33.2", container_runtime="containerd://2.0.5",
                       ready=True)]
    for i in range(1, n + 1):
        labels = {"feature.node.kubernetes.io/pci-10de.present": "true",
                  "nvidia.com/gpu.count": str(8 if i % 4 else 4)}
        if i % 10 == 0:
            labels["nvidia.com/gpu.workload.config"] = "container"
        nodes.append(NodeFacts(name=f"gpu-{i:03d}", address=f"10.0.{i // 250}.{i % 250 + 2}",
                               labels=labels, kubelet_version="v1.33.2",
                               container_runtime="containerd://2.0.5", ready=i % 37 != 0))
    return Facts(ClusterFacts(context="big", server_version="v1.33.2", nodes=tuple(nodes)),
                 source="recorded:many-nodes")


def discovered_facts() -> Facts:
    """The example cluster as live discovery leaves it: no node's GPU pods looked at yet."""
    facts = example_facts()
    nodes = tuple(replace(n, gpu_pods=None) for n in facts.cluster.nodes)
    return replace(facts, cluster=replace(facts.cluster, nodes=nodes))


def empty_facts() -> Facts:
    return Facts(ClusterFacts(context="empty", server_version="v1.33.2"),
                 source="recorded:empty-cluster")


@dataclass
class World:
    """What the fake executors did, and knobs to make them fail, block or ask."""

    facts: Facts = field(default_factory=ready_facts)
    fail: str | None = None
    block: str | None = None
    ask: str | None = None  # a step id whose executor asks the decider first
    sync_block: str | None = None  # a step id whose executor blocks its thread (time.sleep)
    sample_passes: bool = True
    log_lines: int = 20
    gpu_pods: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node -> its GPU pods
    waits: dict[str, list[Any]] = field(default_factory=dict)  # step id -> Waiting it emits
    # What probing a host finds, one map per probe in turn (the last one stays); without any,
    # the hosts of `facts`, and a prepared host for a node they lack.
    probes: list[dict[str, HostFacts]] = field(default_factory=list)
    probed: list[tuple[str, ...]] = field(default_factory=list)  # each probe's nodes
    ran: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    answers_seen: list[bool] = field(default_factory=list)
    released: asyncio.Event | None = None

    def executors(self) -> dict[type, Callable]:
        world = self

        async def discover(ctx, step, facts):
            world.ran.append(step.id)
            return world.facts

        async def probe(ctx, step, facts):
            world.ran.append(step.id)
            nodes = tuple(t.node for t in step.params.targets)
            found = world.probes[min(len(world.probed), len(world.probes) - 1)] \
                if world.probes else world.facts.hosts
            world.probed.append(nodes)
            hosts = {n: found.get(n, READY_HOST) for n in nodes}
            return replace(facts, hosts={**facts.hosts, **hosts})

        async def gpu_pods(ctx, step, facts):
            world.ran.append(step.id)
            return with_gpu_pods(facts, {n: world.gpu_pods.get(n, ()) for n in
                                         step.params.nodes})

        def real(executor):
            async def run(ctx, step, facts):
                world.ran.append(step.id)
                return await executor(ctx, step, facts)
            return run

        async def mutate(ctx, step, facts):
            world.ran.append(step.id)
            if step.id == world.ask:
                world.answers_seen.append(await ctx.decider.confirm(
                    f"Apply {step.title}?", f"{step.id} changes the cluster", "ask"))
            if step.id == world.block:
                await asyncio.sleep(3600)
            if step.id == world.sync_block:
                time.sleep(8)  # a synchronous call, as a careless executor might make
            if step.id == world.fail:
                ctx.emit(Output(path=step.id, message="Error: INSTALLATION FAILED: context "
                                "deadline exceeded", stream="stderr"))
                raise StepFailed(f"{step.id}: helm failed: context deadline exceeded",
                                 cause="pods did not become ready in 10m",
                                 fix="look at the pods of the namespace (Troubleshoot)")
            if isinstance(step.params, p.HelmParams):
                ns = step.params.namespace
                for line in (f"Release \"{step.params.release}\" does not exist. "
                             "Installing it now.", f"NAME: {step.params.release}",
                             f"NAMESPACE: {ns}", "STATUS: deployed", "REVISION: 1"):
                    ctx.emit(Output(path=step.id, message=line))
                # Pods the inspector (FakeInspector) also reads carry the same values, so
                # whichever report lands last, the table shows the same thing.
                pods = ([("kata-deploy-x7k2p", "gpu-node-1"), ("kata-deploy-m9q4d", "gpu-node-2")]
                        if ns == "kata-system" else
                        [("gpu-operator-7d9c6b8f4-abcde", "control-1"),
                         ("nvidia-vfio-manager-4kq8s", "gpu-node-1"),
                         ("nvidia-sandbox-validator-9tq7c", "gpu-node-1"),
                         ("nvidia-kata-sandbox-device-plugin-daemonset-8vfzn", "gpu-node-1")])
                for pod, node in pods:
                    ctx.emit(PodStatus(path=step.id, namespace=ns, pod=pod, phase="Pending",
                                       node=node, ready="0/1"))
                    ctx.emit(PodStatus(path=step.id, namespace=ns, pod=pod, phase="Running",
                                       node=node, ready="1/1"))
                    for n in range(world.log_lines):
                        ctx.emit(PodLog(path=step.id, namespace=ns, pod=pod, container="main",
                                        line=f"{pod} line {n}"))
            for change in step.changes:
                async def act(permit: Permit, c=change) -> None:
                    require_permit(permit)
                    world.changed.append(c.target)
                await ctx.change(step.id, change.target, change.description, act)
            return Done({p.HelmParams: "installed", p.LabelParams: "labelled",
                         p.HostFixParams: "applied"}.get(type(step.params), "recorded"))

        async def verify(ctx, step, facts):
            world.ran.append(step.id)
            for event in world.waits.get(step.id, []):
                ctx.emit(event)
            if step.id == world.block:
                await asyncio.sleep(3600)
            return Done("ready")

        async def sample(ctx, step, facts):
            world.ran.append(step.id)
            for phase in ("Pending", "Running", "Succeeded" if world.sample_passes else "Failed"):
                ctx.emit(PodStatus(path=step.id, namespace="default", pod=SAMPLE_POD,
                                   phase=phase, node="gpu-node-1", ready="0/1"))
            lines = ["[Vector addition of 50000 elements]", "Copy input data from the host "
                     "memory to the CUDA device", "CUDA kernel launch with 196 blocks of 256 "
                     "threads", "Copy output data from the CUDA device to the host memory"]
            lines.append("Test PASSED" if world.sample_passes else
                         "Failed to allocate device vector A (error code no CUDA-capable "
                         "device is detected)!")
            lines.append("Done")
            for line in lines:
                ctx.emit(PodLog(path=step.id, namespace="default", pod=SAMPLE_POD,
                                container="cuda-vectoradd", line=line))
            if not world.sample_passes:
                raise StepFailed("sample/cuda-vectoradd: the pod failed",
                                 cause="no CUDA-capable device in the VM",
                                 fix="check the GPUs are bound to vfio-pci (Troubleshoot)")
            return Done("Test PASSED")

        return {p.DiscoverParams: discover, p.ProbeParams: probe, p.GpuPodsParams: gpu_pods,
                p.ClusterChecksParams: real(real_checks.cluster_checks),
                p.HostChecksParams: real(real_checks.host_checks), p.RecordLabelsParams: mutate,
                p.HostFixParams: mutate, p.LabelParams: mutate, p.HelmParams: mutate,
                p.CordonParams: mutate, p.DrainParams: mutate, p.UncordonParams: mutate,
                p.VerifyKataDeployParams: verify, p.VerifyGpuOperatorParams: verify,
                p.VerifyHostParams: verify, p.SampleParams: sample}


class FakeHostAccess:
    """One node offers an unknown key until it is trusted."""

    def __init__(self) -> None:
        self.trusted: set[str] = set()
        self.tested: list[str] = []

    async def test(self, answers, node, address):
        self.tested.append(node)
        fp = "SHA256:Qm9vdHN0cmFwcGluZyBpcyBoYXJkIHdvcms0MjQyNDI"
        if node not in self.trusted:
            return ConnectionReport(node, False, f"unknown host key at {address}", fp, True)
        return ConnectionReport(node, True, f"connected as {answers.ssh.user}@{address}, "
                                "sudo without a password", fp)

    async def trust(self, answers, node, address, fingerprint):
        self.trusted.add(node)


PODS = (
    PodReading("kata-system", "kata-deploy-x7k2p", "Running", "gpu-node-1", "1/1", 0, "",
               containers=("kube-kata",)),
    PodReading("gpu-operator", "gpu-operator-7d9c6b8f4-abcde", "Running", "control-1", "1/1", 0,
               "", containers=("gpu-operator",)),
    PodReading("gpu-operator", "nvidia-sandbox-validator-2jx9w", "Running", "gpu-node-2", "0/1",
               7, "CrashLoopBackOff", containers=("nvidia-sandbox-validator",),
               init_containers=("vfio-pci-validation",)),
    PodReading("gpu-operator", "gpu-operator-node-feature-discovery-worker-5xk2z", "Running",
               "gpu-node-1", "1/1", 0, "", containers=("worker",)),
)
# What the operator left on the nodes: gpu-node-2 still has the host driver it booted with.
KATA_NODE_LABELS = {
    "gpu-node-1": {"nvidia.com/gpu.workload.config": "vm-passthrough",
                   "nvidia.com/cc.ready.state": "false"},
    "gpu-node-2": {"nvidia.com/gpu.workload.config": "vm-passthrough",
                   "nvidia.com/cc.ready.state": "false",
                   "nvidia.com/gpu.deploy.driver": "pre-installed"},
}
POLICY = {"spec": {"sandboxWorkloads": {"enabled": True, "mode": "kata"}},
          "status": {"state": "notReady"}}
VALIDATOR_LOG = ("validating the vfio-pci binding",
                 "device 0000:3b:00.0 not bound to 'vfio-pci', driver: 'nvidia'",
                 "validation failed, retrying in 5s")
EVENTS = (
    EventRow("gpu-operator", "pod/nvidia-sandbox-validator-2jx9w", "Warning", "BackOff",
             "Back-off restarting failed container", 7, "2025-01-01T10:00:00"),
    EventRow("kata-system", "pod/kata-deploy-x7k2p", "Normal", "Started",
             "Started container kube-kata", 1, "2025-01-01T09:58:00"),
)


CANNED_EVENTS = (
    {"type": "Warning", "reason": "BackOff", "count": 7,
     "lastTimestamp": "2027-01-15T07:59:00Z", "source": {"component": "kubelet"},
     "message": "Back-off restarting failed container nvidia-sandbox-validator"},
)


def canned_pod(namespace: str, name: str) -> dict[str, Any]:
    """A GPU Operator operand as the API serves it: an init container done, the main
    container crash-looping after its last run failed."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace,
                     "creationTimestamp": "2027-01-15T07:00:00Z",
                     "labels": {"app": name.rsplit("-", 1)[0]},
                     "managedFields": [{"manager": "kubelet"}]},
        "spec": {"nodeName": "gpu-node-2", "runtimeClassName": "kata-qemu-nvidia-gpu",
                 "initContainers": [{"name": "vfio-pci-validation", "image": "validator:v1"}],
                 "containers": [{"name": "nvidia-sandbox-validator", "image": "validator:v1"}]},
        "status": {"phase": "Running", "startTime": "2027-01-15T07:00:05Z",
                   "initContainerStatuses": [{
                       "name": "vfio-pci-validation", "ready": True, "restartCount": 0,
                       "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
                   "containerStatuses": [{
                       "name": "nvidia-sandbox-validator", "ready": False, "restartCount": 7,
                       "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                       "lastState": {"terminated": {"reason": "Error", "exitCode": 1}}}],
                   "conditions": [{"type": "Ready", "status": "False"}]},
    }


def canned_node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "creationTimestamp": "2027-01-01T00:00:00Z",
                         "labels": {"nvidia.com/gpu.workload.config": "vm-passthrough"}},
            "spec": {}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


class FakeInspector:
    def __init__(self, cluster: Cluster | None = None, facts: Facts | None = None) -> None:
        self.facts = facts or example_facts()
        self.followed: list[tuple[str, str]] = []
        self.watched: list[tuple[str, ...]] = []
        self.logs_read: list[tuple[str, str, str | None, bool]] = []
        self.followed_containers: list[str | None] = []
        self.inspected: list[tuple[str, str, str, str]] = []

    async def view(self, namespaces=("kata-system", "gpu-operator"),
                   host_checks=None, hosts=None, diagnose_too=True) -> ClusterView:
        """The recorded cluster as the rules read it, with the host checks it is given (as
        installer.diagnosis.clusterinfo.cluster_view: the cluster-wide ones left out)."""
        nodes = tuple(replace(n, labels={**n.labels, **KATA_NODE_LABELS.get(n.name, {})})
                      for n in self.facts.cluster.nodes)
        checks = {n: r for n, r in (host_checks or {}).items() if n != "cluster"}
        return ClusterView(PODS, EVENTS, nodes, state=State(
            nodes=nodes, runtime_classes=("kata-qemu-nvidia-gpu",), cluster_policy=POLICY,
            pods=tuple(PodReading(p.namespace, p.name, p.phase, node=p.node,
                                  labels={"app": p.name.rsplit("-", 1)[0]},
                                  waiting_reason=p.reason, restarts=p.restarts,
                                  log_tail=VALIDATOR_LOG if p.reason else ()) for p in PODS),
            host_checks=check_views(checks)))

    async def logs(self, namespace, pod, container, previous=False):
        self.logs_read.append((namespace, pod, container, previous))
        run = "previous" if previous else "current"
        return [f"{pod} {container or ''} {run} log line {i}" for i in range(5)]

    async def describe(self, kind, namespace, name):
        """Canned JSON of the object, through the real describe text."""
        from datetime import UTC, datetime

        from installer.diagnosis.describe import describe_node, describe_pod

        self.inspected.append(("describe", kind, namespace, name))
        now = datetime.fromtimestamp(FROZEN, UTC)
        if kind == "node":
            return describe_node(canned_node(name), [], now)
        return describe_pod(canned_pod(namespace, name), list(CANNED_EVENTS), now)

    async def yaml(self, kind, namespace, name):
        from installer.diagnosis.describe import as_yaml

        self.inspected.append(("yaml", kind, namespace, name))
        return as_yaml(canned_node(name) if kind == "node" else canned_pod(namespace, name))

    def follow(self, namespace, pod, container, on_lines, stop: threading.Event) -> None:
        self.followed.append((namespace, pod))
        self.followed_containers.append(container)
        on_lines(list(VALIDATOR_LOG))

    async def watch_pods(self, namespaces, emit) -> None:
        """The pods as a watch's first list reports them, then nothing until cancelled."""
        self.watched.append(tuple(namespaces))
        for pod in PODS:
            if pod.namespace in namespaces:
                emit(PodStatus(path="watch/pods", namespace=pod.namespace, pod=pod.name,
                               phase=pod.phase, node=pod.node, ready=pod.ready,
                               restarts=pod.restarts, reason=pod.reason))
        await asyncio.Event().wait()


def services(world: World | None = None, *, recorded: bool = False,
             facts: Facts | None = None, discover_error: Exception | None = None,
             inspector: FakeInspector | None = None,
             host_access: FakeHostAccess | None = None,
             held: threading.Event | None = None, kube: Any = None) -> Services:
    """`held`: discovery hands over its first node page, then waits for the event before it
    ends (as a long node list is read page by page). `kube`: the client the pod-mode
    permission check asks (tests/unit/test_podrbac.py's ReviewingKube)."""
    world = world or World()
    the_facts = facts or world.facts

    async def provide(cluster: Cluster, on_nodes=None) -> Facts:
        if discover_error is not None:
            raise discover_error
        if held is not None and on_nodes is not None and the_facts.cluster is not None:
            on_nodes(the_facts.cluster.nodes[:2])
            await asyncio.to_thread(held.wait, 30)
        return the_facts

    async def checks(answers, facts, executors, ask=None, probe_pods=False):
        # The real path (the engine's gather + check steps); only the probe is faked.
        return await run_checks(answers, facts, executors, ask=ask, probe_pods=probe_pods)

    inspector = inspector or FakeInspector(facts=the_facts)
    return Services(facts=provide, executors=world.executors,
                    host_access=host_access or FakeHostAccess(),
                    inspector=lambda cluster: inspector,
                    contexts=lambda kubeconfig: _contexts(kubeconfig),
                    checks=checks, recorded=recorded,
                    **({"kube": lambda cluster: kube} if kube is not None else {}))


def _contexts(kubeconfig):
    from installer.diagnosis.clusterinfo import Contexts

    return Contexts(kubeconfig or "~/.kube/config", ("example", "staging"), "example")


def state(answers: Answers | None = None, facts: Facts | None = None,
          with_facts: bool = True) -> WizardState:
    return WizardState(answers=answers or example_answers(),
                       facts=(facts or example_facts()) if with_facts else None)


FROZEN = 1_800_000_000.0  # the run state's clock in tests that show times


def operator_waits(t0: float = FROZEN) -> dict[str, list[Any]]:
    """What verify/gpu-operator says while gpu-node-2's validator is held in an init container."""
    from installer.engine.events import Waiting

    awaited = "operands on 2 Kata nodes, ClusterPolicy ready, GPUs allocatable"
    held = ("3 of 4 operand pods running on gpu-node-2; waiting for nvidia-sandbox-validator: "
            "Init:1/4 vfio-pci-validation")
    return {"verify/gpu-operator": [
        Waiting(path="verify/gpu-operator", awaited=awaited, observed=held, started_at=t0,
                deadline=t0 + 315, nodes={"gpu-node-2": held}, ready=("gpu-node-1",))]}

