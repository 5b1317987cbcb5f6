"""Read-only views of a cluster for the wizard and for troubleshooting.

Contexts in a kubeconfig, the pods and events of the installer's namespaces, node labels,
and pod logs (a tail, or followed). Nothing here changes anything. The kubernetes client is
synchronous, so async callers get `asyncio.to_thread` wrappers; `follow_log` is meant to
run in a thread of its own and hands lines over in batches.

`basic_findings` shows the findings headless `troubleshoot` prints (installer.diagnosis.rules'
`troubleshoot_findings`, over the same state), with the wizard run's failed steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
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
    # What the rules read (an installer.diagnosis.rules.State); None when the cluster could not
    # be read. The findings come from it through rules.troubleshoot_findings, as headless.
    state: Any = None


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


def screen_findings(findings: Iterable[Any]) -> tuple[Finding, ...]:
    """installer.diagnosis.rules findings in the screen's shape (a row each): where (the rule,
    or the node and check, or the step), then the cause with the symptom it explains."""
    return tuple(Finding(f.severity, f.where or f.rule, f"{f.cause} ({f.symptom})", f.fix,
                         tuple(f.evidence)) for f in findings)


async def cluster_view(kube: Any, namespaces: Iterable[str] = DEFAULT_NAMESPACES,
                       host_checks: Mapping[str, Sequence[CheckResult]] | None = None, *,
                       hosts: Mapping[str, Any] | None = None,
                       diagnose_too: bool = True) -> ClusterView:
    """Pods, events and nodes of the installer's namespaces, and the state the diagnosis
    rules read (installer.diagnosis.rules), read-only. `host_checks` and `hosts`: the
    checks' results and the probed hosts' facts, as the headless command's probe gives them."""
    from installer.cluster import kube as kube_service
    from installer.diagnosis.clusterstate import list_namespaces, nvswitch_nodes_of, read_state

    namespaces = tuple(namespaces)
    listing = await asyncio.to_thread(list_namespaces, kube, namespaces)
    pods = tuple(read_pod(p) for p in listing.pods)
    events = tuple(sorted((_event_row(e) for e in listing.events), key=lambda e: e.last_seen))
    errors = [str(e) for e in listing.errors]
    if not diagnose_too:  # a pod table's read (the run's last word after its watch): just the pods
        return ClusterView(pods, events, (), tuple(errors))
    nodes: tuple[NodeFacts, ...] = ()
    state = None
    try:
        cluster = await kube_service.discover(kube)
        nodes = cluster.nodes
        # the cluster-wide checks are the checks screen's; the rules read the hosts'
        checks = {n: r for n, r in (host_checks or {}).items() if n != "cluster"}
        state = await read_state(kube, cluster, namespaces, checks,
                                 nvswitch_nodes_of(hosts or {}), listing=listing)
        errors += [str(e) for e in state.unread if e not in listing.errors]
    except Exception as exc:  # a partial view still helps; say what could not be read
        errors.append(f"diagnosis: {exc}".splitlines()[0])
    return ClusterView(pods, events, nodes, tuple(errors), state)


def describe_object(kube: Any, kind: str, name: str, namespace: str, now: datetime) -> str:
    """`kubectl describe` of one pod or node: the object and its events read, then laid out
    (installer.diagnosis.describe). Blocking: the wizard calls it in a thread, the bundle in
    its own sequence of reads."""
    from installer.cluster.podread import object_events, read_object
    from installer.diagnosis.describe import describe_node, describe_pod

    text = describe_pod if kind == "pod" else describe_node
    return text(read_object(kube, kind, name, namespace),
                object_events(kube, kind, name, namespace), now)


def _log_query(container: str | None, tail: int, previous: bool = False) -> dict[str, str]:
    """A pod log's query (plain HTTP: the typed client is expensive to import)."""
    return {"tailLines": str(tail), **({"container": container} if container else {}),
            **({"previous": "true"} if previous else {})}


async def pod_log(kube: Any, namespace: str, pod: str, container: str | None = None,
                  tail: int = 2000, previous: bool = False) -> list[str]:
    """The log's last lines; `previous`: of the container's last run (`kubectl logs -p`),
    what an operator reads after a crash, since the restarted container's log is new."""
    def read() -> list[str]:
        return kube.get_text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                             **_log_query(container, tail, previous)).splitlines()

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


def basic_findings(view: ClusterView,
                   failed_steps: tuple[tuple[str, str, str], ...] = ()) -> list[Finding]:
    """The screen's findings: installer.diagnosis.rules.troubleshoot_findings over the view's
    state - the headless command's computation - with the wizard run's failed steps (path,
    message, detail). Without a state (the cluster could not be read) the read errors say
    why; the unhealthy pods and warning events have their own tabs."""
    from installer.diagnosis.rules import troubleshoot_findings

    if view.state is not None:
        out = list(screen_findings(troubleshoot_findings(view.state, failed_steps)))
    else:
        out = [Finding("error", path, message, detail) for path, message, detail in failed_steps]
        out += [Finding("error", "read", err) for err in view.errors]
    if not out:
        out.append(Finding("info", "cluster", "nothing looks wrong in what was read"))
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
