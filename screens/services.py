"""The wizard's seams to the world: discovery, checks, SSH, cluster reads, step executors.

Screens call these through the app (never `installer.cluster.kube` directly), in workers. Real
implementations delegate to the core (`installer.engine.steps`, `installer.diagnosis.clusterinfo`,
the engine); tests pass recorded facts and small fakes with the same shapes.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from installer.answers.model import Answers, Cluster
from installer.cluster.facts import Facts
from installer.cluster.factsfile import load_recorded_facts
from installer.diagnosis.clusterinfo import (
    DEFAULT_NAMESPACES,
    ClusterView,
    Contexts,
    cluster_view,
    follow_log,
    list_contexts,
    pod_log,
    require_kube,
)
from installer.errors import UserError

if TYPE_CHECKING:  # the engine, the plan and SSH are imported when used: not at startup
    from installer.cluster.kube import NodesSeen
    from installer.engine.events import Event
    from installer.engine.runner import Executors
    from installer.hosts.checks import CheckResult
    from installer.hosts.sshtest import ConnectionReport

# The cluster's facts; the nodes read so far are handed to `on_nodes` page by page (from
# another thread) while a long node list is read, so the Nodes screen can show them early.
FactsProvider = Callable[..., Awaitable[Facts]]
ExecutorsFactory = Callable[[], "Executors"]


class _NoDecisions:
    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        return False


async def discover_facts(cluster: Cluster, on_nodes: NodesSeen | None = None) -> Facts:
    """The real FactsProvider: the engine's own discovery (read-only), without the engine
    and its planner, which it does not need and which would delay its first request."""
    from installer.engine.steps.discover import discover_cluster

    found = await discover_cluster(cluster.kubeconfig, cluster.context, on_nodes=on_nodes)
    return Facts(cluster=found.cluster, source=found.source)


async def scan_for_plan(answers: Answers, facts: Facts, executors: Executors
                        ) -> Facts:
    """The plan's gather steps that only read the cluster - GPU pods on the nodes it would
    relabel - run by the engine's own executors, so the review screen shows the warning
    `--dry-run` prints without probing any host."""
    from installer.engine.params import GpuPodsParams
    from installer.engine.plan import build_plan
    from installer.engine.runner import Context

    ctx = Context(dry_run=True, sinks=[], decider=_NoDecisions())
    for step in build_plan(answers, facts).phase("gather"):
        if isinstance(step.params, GpuPodsParams):
            found = await executors[GpuPodsParams](ctx, step, facts)
            assert isinstance(found, Facts)  # a gather step's result
            facts = found
    return facts


def recorded_facts(path: Path) -> FactsProvider:
    """A FactsProvider that replays a recorded cluster (installer/examples/facts.yaml)."""

    async def provide(cluster: Cluster, on_nodes: NodesSeen | None = None) -> Facts:
        return load_recorded_facts(path)

    return provide


def default_executors() -> Executors:
    from installer.engine.steps import default_executors as core

    return core()


@dataclass
class ChecksOutcome:
    results: dict[str, Sequence[CheckResult]] = field(default_factory=dict)
    facts: Facts | None = None
    error: str | None = None


async def run_checks(answers: Answers, facts: Facts, executors: Executors, *,
                     ask: Callable[[str], str] | None = None,
                     probe_pods: bool = False) -> ChecksOutcome:
    """Probe the Kata nodes and run the prerequisite checks through the engine (read-only).

    `ask` answers the secrets the answers say to prompt for (see InstallerApp.secrets).
    `probe_pods`: the operator agreed to the host-access pods of the hosts reached through
    the cluster (hostAccess: pod); they are made, then deleted - nothing else is. Without
    it those hosts are not probed (the run is a dry-run)."""
    from installer.engine.events import CheckReported, Recorder
    from installer.engine.reading import PodsAgreed
    from installer.engine.runner import Context, Engine
    from installer.engine.runtime import run_services
    from installer.errors import StepFailed
    from installer.redact import Redactor

    rec = Recorder()
    error = None
    try:
        ctx = Context(dry_run=not probe_pods, sinks=[rec],
                      decider=PodsAgreed() if probe_pods else _NoDecisions(),
                      services=run_services(answers, Redactor(), ask=ask))
        _, facts, failed = await Engine(answers, ctx, executors).run_checks(facts)
        if failed:
            error = "checks failed: " + "; ".join(failed)
    except (StepFailed, UserError) as exc:
        error = str(exc)
    results = {e.node: e.results for e in rec.of(CheckReported)}
    return ChecksOutcome(results, facts, error)


class HostAccess(Protocol):
    """SSH as the wizard needs it: a connection test and trusting a host key."""

    async def test(self, answers: Answers, node: str, address: str | None) -> ConnectionReport: ...

    async def trust(self, answers: Answers, node: str, address: str | None,
                    fingerprint: str) -> None: ...


class SshHostAccess:
    """The real connection test (installer.hosts.sshtest): read-only, key trusted only on
    consent."""

    async def test(self, answers: Answers, node: str, address: str | None) -> ConnectionReport:
        from installer.hosts.sshtest import check_connection

        return await check_connection(answers, node, address)

    async def trust(self, answers: Answers, node: str, address: str | None,
                    fingerprint: str) -> None:
        from installer.hosts.sshtest import check_connection

        report = await check_connection(answers, node, address, trust=fingerprint)
        if not report.ok:
            raise RuntimeError(report.message)


class Inspector(Protocol):
    """Read-only cluster views for the pod tables, log panes and troubleshooting."""

    async def view(self, namespaces: tuple[str, ...],
                   host_checks: Mapping[str, Sequence[CheckResult]] | None = None, *,
                   hosts: Mapping[str, Any] | None = None,
                   diagnose_too: bool = True) -> ClusterView: ...

    async def logs(self, namespace: str, pod: str, container: str | None,
                   previous: bool = False) -> list[str]: ...

    async def describe(self, kind: str, namespace: str, name: str) -> str:
        """`kubectl describe`-like text of a pod or node (`d` on a table row)."""

    async def yaml(self, kind: str, namespace: str, name: str) -> str:
        """The object as YAML, without managedFields (`y` on a table row)."""

    def follow(self, namespace: str, pod: str, container: str | None,
               on_lines: Callable[[list[str]], None], stop: threading.Event) -> None: ...

    async def watch_pods(self, namespaces: tuple[str, ...],
                         emit: Callable[[Event], None]) -> None:
        """Every change of every pod in `namespaces` through `emit` (PodStatus; a
        WarningEvent if the watch is refused), until cancelled."""


class KubeInspector:
    """The real Inspector: connects lazily with the answers' kubeconfig and context."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._kube: Any = None

    def _connect(self) -> Any:
        if self._kube is None:
            self._kube = require_kube(self.cluster.kubeconfig, self.cluster.context)
        return self._kube

    async def view(self, namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
                   host_checks: Mapping[str, Sequence[CheckResult]] | None = None, *,
                   hosts: Mapping[str, Any] | None = None,
                   diagnose_too: bool = True) -> ClusterView:
        import asyncio

        try:
            kube = await asyncio.to_thread(self._connect)
            return await cluster_view(kube, namespaces, host_checks, hosts=hosts,
                                      diagnose_too=diagnose_too)
        except UserError as exc:
            return ClusterView(errors=(str(exc),))
        except Exception as exc:  # unreachable cluster: say so, keep the screen usable
            return ClusterView(errors=(f"cannot read the cluster: {exc}".splitlines()[0],))

    async def logs(self, namespace: str, pod: str, container: str | None,
                   previous: bool = False) -> list[str]:
        import asyncio

        kube = await asyncio.to_thread(self._connect)
        return await pod_log(kube, namespace, pod, container, previous=previous)

    async def describe(self, kind: str, namespace: str, name: str) -> str:
        from datetime import UTC, datetime

        from installer.diagnosis.clusterinfo import describe_object

        return await self._read(kind, name, lambda kube: describe_object(
            kube, kind, name, namespace, datetime.now(UTC)))

    async def yaml(self, kind: str, namespace: str, name: str) -> str:
        from installer.cluster.podread import read_object
        from installer.diagnosis.describe import as_yaml

        return await self._read(kind, name,
                                lambda kube: as_yaml(read_object(kube, kind, name, namespace)))

    async def _read(self, kind: str, name: str, read: Callable[[Any], str]) -> str:
        """One object read in a thread; a refusal or an unreachable cluster is the text."""
        import asyncio

        try:
            return await asyncio.to_thread(lambda: read(self._connect()))
        except Exception as exc:  # shown in the pane, the screen stays usable
            return f"cannot read {kind} {name}: {exc}"

    def follow(self, namespace: str, pod: str, container: str | None,
               on_lines: Callable[[list[str]], None], stop: threading.Event) -> None:
        follow_log(self._connect(), namespace, pod, container, on_lines, stop)

    async def watch_pods(self, namespaces: tuple[str, ...],
                         emit: Callable[[Event], None]) -> None:
        """A list then a watch per namespace, as `kubectl get pods -w` (installer.engine.watch):
        a change shows when the API server has it, not at the next poll."""
        import asyncio

        from installer.engine.watch import PodWatch

        kube = await asyncio.to_thread(self._connect)
        await PodWatch(kube, list(namespaces), emit).run()


class NoInspector:
    """No cluster to read (recorded facts): views are empty and say why."""

    def __init__(self, why: str = "recorded facts: there is no live cluster to read") -> None:
        self.why = why

    async def view(self, namespaces: tuple[str, ...] = DEFAULT_NAMESPACES,
                   host_checks: Mapping[str, Sequence[CheckResult]] | None = None, *,
                   hosts: Mapping[str, Any] | None = None,
                   diagnose_too: bool = True) -> ClusterView:
        return ClusterView(errors=(self.why,))

    async def logs(self, namespace: str, pod: str, container: str | None,
                   previous: bool = False) -> list[str]:
        return []

    async def describe(self, kind: str, namespace: str, name: str) -> str:
        return f"{kind} {name}: {self.why}; describe reads a live cluster."

    async def yaml(self, kind: str, namespace: str, name: str) -> str:
        return f"{kind} {name}: {self.why}; the YAML is read from a live cluster."

    def follow(self, namespace: str, pod: str, container: str | None,
               on_lines: Callable[[list[str]], None], stop: threading.Event) -> None:
        return None

    async def watch_pods(self, namespaces: tuple[str, ...],
                         emit: Callable[[Event], None]) -> None:
        return None


def connect_kube(cluster: Cluster) -> Any:
    """A client for the answers' cluster: the pod-mode permission check asks it."""
    return require_kube(cluster.kubeconfig, cluster.context)


def contexts_of(kubeconfig: str | None) -> Contexts:
    return list_contexts(kubeconfig)


@dataclass
class Services:
    """Everything the app reaches the world through; tests replace any part."""

    facts: FactsProvider = discover_facts
    executors: ExecutorsFactory = default_executors
    host_access: HostAccess = field(default_factory=SshHostAccess)
    inspector: Callable[[Cluster], Inspector] = KubeInspector
    contexts: Callable[[str | None], Contexts] = contexts_of
    checks: Callable[..., Awaitable[ChecksOutcome]] = run_checks  # run_checks' parameters
    # Recorded facts describe a cluster this session cannot change: only dry-runs.
    recorded: bool = False
    kube: Callable[[Cluster], Any] = connect_kube
