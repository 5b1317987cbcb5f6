"""`kubectl describe`-like text for a pod or node, its YAML, and kubectl's AGE.

Why here and pure: the troubleshoot screen's `d` and `y` keys and the support bundle's
summaries of failing pods show the same text, from the same JSON the API returned; reading
that JSON is installer.cluster's job (`read_object`, `object_events`), laying it out is this
module's. Layout follows kubectl's describe printer (k8s.io/kubectl pkg/describe/describe.go):
the init containers before the containers, each with its state, last state, ready and
restart count, then conditions and events - the parts an operator reads to see why a Kata GPU
pod is held in an init container or crash-looping.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import yaml


def parse_time(stamp: str | None) -> datetime | None:
    """An API timestamp (RFC 3339, `Z`; one without a zone read as UTC), or None when
    absent or unreadable."""
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # the API's times are UTC


def human_age(since: datetime | None, now: datetime) -> str:
    """The AGE column as kubectl prints it (apimachinery pkg/util/duration HumanDuration)."""
    if since is None:
        return "<unknown>"
    seconds = int((now - since).total_seconds())
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age_of(obj: dict[str, Any], now: datetime) -> str:
    return human_age(parse_time((obj.get("metadata") or {}).get("creationTimestamp")), now)


def as_yaml(obj: dict[str, Any]) -> str:
    """The object as `kubectl get -o yaml` shows it, without managedFields (noise that can be
    hundreds of lines, as kubectl hides it by default since 1.21)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return yaml.safe_dump({**obj, "metadata": meta}, sort_keys=False, width=1_000)


def aligned(text: str) -> str:
    """Tab-separated cells padded into columns, as kubectl's tabwriter does: each run of
    lines with tabs is one block, every cell but a line's last padded to its column's width
    in that block (a terminal or a file shows no tab stops)."""
    out: list[str] = []
    block: list[list[str]] = []

    def flush() -> None:
        widths: dict[int, int] = {}
        for cells in block:
            for i, cell in enumerate(cells[:-1]):
                widths[i] = max(widths.get(i, 0), len(cell))
        out.extend("".join(cell.ljust(widths[i] + 2) for i, cell in enumerate(cells[:-1]))
                   + cells[-1] for cells in block)
        block.clear()

    for line in text.split("\n"):
        if "\t" in line:
            block.append(line.split("\t"))
            continue
        flush()
        out.append(line)
    flush()
    return "\n".join(out)


def _state_lines(label: str, state: dict[str, Any]) -> list[str]:
    if not state:
        return []
    (kind, detail), = list(state.items())[:1]
    detail = detail or {}
    out = [f"    {label}:\t{kind.capitalize()}"]
    for key, name in (("reason", "Reason"), ("message", "Message"), ("exitCode", "Exit Code"),
                      ("signal", "Signal"), ("startedAt", "Started"),
                      ("finishedAt", "Finished")):
        if detail.get(key) not in (None, ""):
            out.append(f"      {name}:\t{detail[key]}")
    return out


def _containers(title: str, specs: list[dict[str, Any]],
                statuses: list[dict[str, Any]]) -> list[str]:
    if not specs:
        return []
    by_name = {s.get("name"): s for s in statuses}
    out = [f"{title}:"]
    for spec in specs:
        s = by_name.get(spec.get("name"), {})
        out.append(f"  {spec.get('name')}:")
        out.append(f"    Image:\t{spec.get('image', '')}")
        out += _state_lines("State", s.get("state") or {}) or ["    State:\tWaiting"]
        out += _state_lines("Last State", s.get("lastState") or {})
        out.append(f"    Ready:\t{bool(s.get('ready'))}")
        out.append(f"    Restart Count:\t{s.get('restartCount', 0)}")
        limits = (spec.get("resources") or {}).get("limits") or {}
        requests = (spec.get("resources") or {}).get("requests") or {}
        for name, values in (("Limits", limits), ("Requests", requests)):
            if values:
                out.append(f"    {name}:")
                out += [f"      {k}:\t{v}" for k, v in values.items()]
    return out


def _conditions(conditions: Iterable[dict[str, Any]]) -> list[str]:
    rows = [f"  {c.get('type')}\t{c.get('status')}"
            + (f"\t{c.get('reason')}: {c.get('message', '')}" if c.get("reason") else "")
            for c in conditions]
    return ["Conditions:", "  Type\tStatus", *rows] if rows else []


def _events(events: list[dict[str, Any]], now: datetime) -> list[str]:
    if not events:
        return ["Events:\t<none>"]
    def last(e: dict[str, Any]) -> datetime:
        return (parse_time(e.get("lastTimestamp") or e.get("eventTime")
                           or (e.get("metadata") or {}).get("creationTimestamp"))
                or datetime.min.replace(tzinfo=UTC))
    out = ["Events:", "  Type\tReason\tAge\tFrom\tMessage"]
    for e in sorted(events, key=last):
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        count = e.get("count") or 1
        age = human_age(last(e), now) + (f" (x{count})" if count > 1 else "")
        out.append(f"  {e.get('type', '')}\t{e.get('reason', '')}\t{age}\t{source}\t"
                   f"{(e.get('message') or '').strip()}")
    return out


def describe_pod(pod: dict[str, Any], events: list[dict[str, Any]], now: datetime) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    lines = [f"Name:\t{meta.get('name', '')}", f"Namespace:\t{meta.get('namespace', '')}",
             f"Node:\t{spec.get('nodeName') or '<none>'}",
             f"Start Time:\t{status.get('startTime') or '<none>'}",
             f"Runtime Class:\t{spec.get('runtimeClassName') or '<none>'}",
             f"Status:\t{status.get('phase', 'Unknown')}"]
    for key, name in (("reason", "Reason"), ("message", "Message")):
        if status.get(key):
            lines.append(f"{name}:\t{status[key]}")
    labels = meta.get("labels") or {}
    lines.append("Labels:\t" + ("\n\t".join(f"{k}={v}" for k, v in labels.items())
                               or "<none>"))
    lines += _containers("Init Containers", spec.get("initContainers") or [],
                         status.get("initContainerStatuses") or [])
    lines += _containers("Containers", spec.get("containers") or [],
                         status.get("containerStatuses") or [])
    lines += _conditions(status.get("conditions") or [])
    if spec.get("nodeSelector"):
        lines.append("Node-Selectors:\t" + "\n\t".join(
            f"{k}={v}" for k, v in spec["nodeSelector"].items()))
    if spec.get("tolerations"):
        lines.append("Tolerations:\t" + "\n\t".join(
            f"{t.get('key', '')}{'=' + t['value'] if t.get('value') else ''}"
            f"{':' + t['effect'] if t.get('effect') else ''}" for t in spec["tolerations"]))
    return aligned("\n".join(lines + _events(events, now))) + "\n"


def describe_node(node: dict[str, Any], events: list[dict[str, Any]], now: datetime) -> str:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, \
        node.get("status") or {}
    info = status.get("nodeInfo") or {}
    labels = meta.get("labels") or {}
    lines = [f"Name:\t{meta.get('name', '')}",
             "Labels:\t" + ("\n\t".join(f"{k}={v}" for k, v in sorted(labels.items()))
                            or "<none>"),
             "Taints:\t" + ("\n\t".join(
                 f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
                 for t in spec.get("taints") or []) or "<none>"),
             f"Unschedulable:\t{bool(spec.get('unschedulable'))}"]
    lines += _conditions(status.get("conditions") or [])
    for name, values in (("Capacity", status.get("capacity")),
                         ("Allocatable", status.get("allocatable"))):
        if values:
            lines += [f"{name}:", *(f"  {k}:\t{v}" for k, v in values.items())]
    if info:
        lines += ["System Info:", f"  Kernel Version:\t{info.get('kernelVersion', '')}",
                  f"  OS Image:\t{info.get('osImage', '')}",
                  f"  Container Runtime Version:\t{info.get('containerRuntimeVersion', '')}",
                  f"  Kubelet Version:\t{info.get('kubeletVersion', '')}"]
    return aligned("\n".join(lines + _events(events, now))) + "\n"
