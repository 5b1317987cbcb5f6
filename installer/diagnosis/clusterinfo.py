"""Read-only views of a cluster for the wizard and for troubleshooting.

Contexts in a kubeconfig, the pods and events of the installer's namespaces, node labels,
and pod logs (a tail, or followed). Nothing here changes anything. The kubernetes client is
synchronous, so async callers get `asyncio.to_thread` wrappers; `follow_log` is meant to
run in a thread of its own and hands lines over in batches.

`basic_findings` puts the diagnosis rules' findings (installer.diagnosis.rules) first, then a plain
reading of the rest: failed steps, failed checks, unhealthy pods, warning events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.answers.model import KATA_NAMESPACE, OPERATOR_NAMESPACE
from installer.cluster.facts import NodeFacts
from installer.cluster.podread import PodReading, read_pod
from installer.errors import Problem, UserError

if TYPE_CHECKING:  # the wizard's first frame lists contexts from here, without the checks
    from installer.hosts.checks import CheckResult

DEFAULT_NAMESPACES = (KATA_NAMESPACE, OPERATOR_NAMESPACE)


@dataclass(frozen=True)
class EventRow:
    namespace: str
    object: str
    type: str
    reason: str
    message: str
    count: int = 1
    last_seen: str = ""


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    where: str
    message: str
    remedy: str = ""
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterView:
    """What the troubleshooting screen shows at one moment."""

    pods: tuple[PodReading, ...] = ()
    events: tuple[EventRow, ...] = ()
    nodes: tuple[NodeFacts, ...] = ()
    errors: tuple[str, ...] = ()
    diagnosis: tuple[Finding, ...] = ()  # the rules' findings (installer.diagnosis.rules)


@dataclass(frozen=True)
class Contexts:
    path: str
    names: tuple[str, ...] = ()
    current: str | None = None
    error: str | None = None


def list_contexts(kubeconfig: str | None) -> Contexts:
    """The contexts of a kubeconfig (or of KUBECONFIG's files, merged), or why it cannot be
    read (never raises).

    Read as YAML, not through the kubernetes client: the wizard's first screen asks, and the
    client's import costs more than the first frame may take."""
    from installer.cluster.kubeconfig import context_names, kubeconfig_files, load_kubeconfig

    files = kubeconfig_files(kubeconfig)
    path = os.pathsep.join(files)
    if not any(Path(f).is_file() for f in files):
        return Contexts(path, error=f"no file at {path}")
    try:
        config = load_kubeconfig(kubeconfig)
        names, current = context_names(config.data)
    except UserError as exc:  # a broken kubeconfig is the operator's input, not our bug
        why = exc.problems[0].message if exc.problems else exc.summary
        return Contexts(path, error=f"cannot read {path}: {why}")
    return Contexts(config.source, names, current)


def _event_row(ev: dict[str, Any]) -> EventRow:
    obj = ev.get("involvedObject") or {}
    when = ev.get("lastTimestamp") or ev.get("eventTime") or ev.get("firstTimestamp") or ""
    return EventRow(ev["metadata"].get("namespace", ""),
                    f"{(obj.get('kind') or '').lower()}/{obj.get('name', '')}",
                    ev.get("type") or "", ev.get("reason") or "",
                    (ev.get("message") or "").strip(), ev.get("count") or 1, str(when))


def diagnosis_findings(state: Any) -> tuple[Finding, ...]:
    """The diagnosis rules over `state` (an installer.diagnosis.rules.State), most likely first, in
    the screen's shape: every rule's finding is an error, since each one blocks GPU pods."""
    from installer.diagnosis.rules import diagnose

    return tuple(Finding("error", f.rule, f"{f.cause} ({f.symptom})", f.fix, tuple(f.evidence))
                 for f in diagnose(state))


async def cluster_view(kube: Any, namespaces: Iterable[str] = DEFAULT_NAMESPACES,
                       host_checks: Mapping[str, Sequence[CheckResult]] | None = None, *,
                       diagnose_too: bool = True) -> ClusterView:
    """Pods, events and nodes of the installer's namespaces, and the diagnosis rules'
    findings over them (installer.diagnosis.rules), read-only."""
    from installer.cluster import kube as kube_service
    from installer.diagnosis.clusterstate import list_namespaces, read_state

    namespaces = tuple(namespaces)
    listing = await asyncio.to_thread(list_namespaces, kube, namespaces)
    pods = tuple(read_pod(p) for p in listing.pods)
    events = tuple(sorted((_event_row(e) for e in listing.events), key=lambda e: e.last_seen))
    errors = [str(e) for e in listing.errors]
    if not diagnose_too:  # a pod table's read (the run's last word after its watch): just the pods
        return ClusterView(pods, events, (), tuple(errors))
    nodes: tuple[NodeFacts, ...] = ()
    diagnosis: tuple[Finding, ...] = ()
    try:
        cluster = await kube_service.discover(kube)
        nodes = cluster.nodes
        checks = {n: r for n, r in (host_checks or {}).items() if n != "cluster"}
        state = await read_state(kube, cluster, namespaces, checks, listing=listing)
        diagnosis = diagnosis_findings(state)
        errors += [str(e) for e in state.unread if e not in listing.errors]
    except Exception as exc:  # a partial view still helps; say what could not be read
        errors.append(f"diagnosis: {exc}".splitlines()[0])
    return ClusterView(pods, events, nodes, tuple(errors), diagnosis)


def _log_query(container: str | None, tail: int) -> dict[str, str]:
    """A pod log's query (plain HTTP: the typed client is expensive to import)."""
    return {"tailLines": str(tail), **({"container": container} if container else {})}


async def pod_log(kube: Any, namespace: str, pod: str, container: str | None = None,
                  tail: int = 2000) -> list[str]:
    def read() -> list[str]:
        return kube.get_text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                             **_log_query(container, tail)).splitlines()

    return await asyncio.to_thread(read)


def follow_log(kube: Any, namespace: str, pod: str, container: str | None,
               on_lines: Callable[[list[str]], None], stop: threading.Event,
               tail: int = 500) -> None:
    """`kubectl logs -f`: blocking; call in a thread. Lines go out in batches; `stop` ends it."""
    resp = kube.open_stream(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", follow="true",
                            **_log_query(container, tail))
    done = threading.Event()

    def close_on_stop() -> None:
        # A quiet pod blocks the read; closing the response is what ends it promptly.
        while not (stop.wait(0.5) or done.is_set()):
            pass
        if stop.is_set():
            # shutdown() wakes a read blocked on the socket (close() alone may not).
            with contextlib.suppress(Exception):
                resp.shutdown()
            with contextlib.suppress(Exception):  # already closed: nothing to end
                resp.close()

    threading.Thread(target=close_on_stop, daemon=True).start()
    pending = b""
    try:
        for chunk in resp.stream(64 * 1024):
            if stop.is_set():
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if lines:
                on_lines([x.decode("utf-8", "replace") for x in lines])
        if pending and not stop.is_set():
            on_lines([pending.decode("utf-8", "replace")])
    except Exception:
        if not stop.is_set():
            raise
    finally:
        done.set()
        with contextlib.suppress(Exception):  # closed by close_on_stop
            resp.release_conn()


@dataclass
class RunSummary:
    """What a run left behind, for findings (failed steps and check results)."""

    failed_steps: list[tuple[str, str, str]] = field(default_factory=list)  # path, msg, detail
    checks: Mapping[str, Sequence[CheckResult]] = field(default_factory=dict)


def basic_findings(view: ClusterView, run: RunSummary | None = None) -> list[Finding]:
    """Plain findings from what is known; the order is: run, checks, pods, events."""
    out: list[Finding] = list(view.diagnosis)
    run = run or RunSummary()
    for path, message, detail in run.failed_steps:
        out.append(Finding("error", path, message, detail))
    for node, results in sorted(run.checks.items()):
        for r in results:
            if r.status in ("fail", "warn") and not r.ignored:
                out.append(Finding("error" if r.status == "fail" else "warning",
                                   f"{node} {r.name}", r.summary, r.remedy,
                                   tuple(r.evidence)))
    for p in view.pods:
        if p.phase not in ("Running", "Succeeded") or p.reason or p.restarts > 3:
            why = p.reason or p.phase
            out.append(Finding("warning", f"pod {p.namespace}/{p.name}",
                               f"{why}" + (f", {p.restarts} restarts" if p.restarts else ""),
                               "read its log (Pods) and its events (Events)"))
    for e in view.events:
        if e.type == "Warning":
            out.append(Finding("warning", f"{e.namespace} {e.object}",
                               f"{e.reason}: {e.message}"))
    if not out and not view.errors:
        out.append(Finding("info", "cluster", "nothing looks wrong in what was read"))
    for err in view.errors:
        out.append(Finding("error", "read", err))
    return out


def require_kube(kubeconfig: str | None, context: str | None) -> Any:
    """Connect, turning any failure into a UserError the screens can show."""
    from installer.cluster import kube

    try:
        return kube.connect(kubeconfig, context)
    except UserError:
        raise
    except Exception as exc:  # pragma: no cover - defensive
        raise UserError("cannot connect to the cluster", [Problem(
            "cluster", str(exc), "check the kubeconfig and context")]) from None
