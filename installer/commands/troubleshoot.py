"""`troubleshoot` and `bundle` without a screen: read the cluster (and, given answers, probe
the Kata hosts), run the diagnosis rules, print the findings or pack a support bundle.

With an answers file the read goes through the engine's own gather and check phases
(dry-run: nothing is changed), so the host checks are exactly those an install runs.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from installer.answers.model import Answers, load_answers
from installer.charts import helm
from installer.charts.values import gpu_operator_values, kata_nodes_of, planned_kata_deploy_values
from installer.cluster import kube
from installer.cluster.facts import (
    Facts,
    containerd_version_of,
    distribution_of,
    kubelet_root_of,
)
from installer.cluster.kubeconfig import helm_kubeconfig
from installer.cluster.podread import PodReading
from installer.diagnosis import gather
from installer.diagnosis.bundle import RunProgress
from installer.diagnosis.clusterinfo import DEFAULT_NAMESPACES, describe_object
from installer.diagnosis.clusterstate import nvswitch_nodes_of, read_state
from installer.diagnosis.progress import node_grid, steps_from_log
from installer.diagnosis.rules import Finding, State, troubleshoot_findings
from installer.engine.reading import NoConsent, reading_plan
from installer.engine.runner import Context, Engine
from installer.engine.runtime import run_services
from installer.engine.steps.discover import discover_cluster
from installer.errors import UserError
from installer.hosts.checks import CheckResult
from installer.redact import Redactor
from installer.statedir import state_dir
from installer.textsafe import display


@dataclass
class Collected:
    state: State
    facts: Facts
    kube: kube.Kube
    redactor: Redactor
    answers: Answers | None
    host_checks: dict[str, tuple[CheckResult, ...]] = field(default_factory=dict)
    namespaces: tuple[str, ...] = DEFAULT_NAMESPACES


async def collect(answers_path: Path | None, kubeconfig: str | None,
                  context: str | None) -> Collected:
    """What troubleshooting reads. A read the context may not make is kept as a fact
    (`unread`) and reported first, never a stop: a partial view still helps."""
    from installer.engine.params import DiscoverParams, GpuPodsParams, HostChecksParams
    from installer.engine.steps import default_executors, discover

    redactor = Redactor()
    answers = load_answers(answers_path) if answers_path else None
    host_checks: dict[str, tuple[CheckResult, ...]] = {}
    if answers:
        ctx = Context(dry_run=True, sinks=[], decider=NoConsent(),
                      services=run_services(answers, redactor))
        executors = {**default_executors(),
                     DiscoverParams: functools.partial(discover.discover, partial=True),
                     GpuPodsParams: functools.partial(discover.gpu_pods, partial=True)}
        plan, facts, _ = await Engine(answers, ctx, executors,
                                      reading_plan).run_checks(Facts(cluster=None))
        host_checks = {s.params.node: s.params.checks or ()
                       for s in plan.phase("check") if isinstance(s.params, HostChecksParams)}
        k: kube.Kube = ctx.services["kube"]
    else:
        found = await discover_cluster(kubeconfig, context, redactor, partial=True)
        k = found.kube
        facts = Facts(cluster=found.cluster)
    assert facts.cluster is not None
    namespaces = ((answers.kata_deploy.namespace, answers.gpu_operator.namespace)
                  if answers else DEFAULT_NAMESPACES)
    state = await read_state(k, facts.cluster, namespaces, host_checks,
                             nvswitch_nodes_of(facts.hosts))
    return Collected(state, facts, k, redactor, answers, host_checks, namespaces)


def print_findings(findings: list[Finding], as_json: bool) -> None:
    """JSON keeps the evidence verbatim; the text shows it as data (installer.textsafe):
    a log line or event message in it never reaches the terminal as a control sequence."""
    if as_json:
        print(json.dumps([f.to_json() for f in findings], indent=2))
        return
    if not findings:
        print("No problem found: the cluster matches what Kata GPU workloads need.")
    for i, f in enumerate(findings, 1):
        print(f"{i}. {display(f.cause)}\n   symptom: {display(f.symptom)}\n"
              f"   fix: {display(f.fix)}")
        for e in f.evidence:
            print(f"   - {display(e)}")


def all_findings(state: State) -> list[Finding]:
    """installer.diagnosis.rules.troubleshoot_findings, the troubleshoot screen's too."""
    return troubleshoot_findings(state)


def run_troubleshoot_headless(answers_path: Path | None, kubeconfig: str | None,
                              context: str | None, as_json: bool) -> int:
    """Exit 0 when nothing is found, 1 when findings are reported - a namespace that could
    not be read is one, so a partial view never exits 0."""
    collected = asyncio.run(collect(answers_path, kubeconfig, context))
    findings = all_findings(collected.state)
    print_findings(findings, as_json)
    return 1 if findings else 0


@dataclass
class BundleContent:
    """What `bundle` writes: the files, what was cut or unread, the versions' short table and
    the last run's per-node progress (installer.diagnosis.bundle.write_bundle)."""

    files: dict[str, str]
    notes: list[str]
    versions: list[tuple[str, str]]
    run: RunProgress | None


def _bundle_files(c: Collected, findings: list[Finding]) -> BundleContent:
    k = c.kube
    out = gather.Gathered({"findings.json": json.dumps([f.to_json() for f in findings],
                                                       indent=2)})
    files = out.files
    if c.answers:
        kd = planned_kata_deploy_values(c.answers.kata_deploy,
                                        kata_nodes_of(c.answers, c.facts.cluster),
                                        c.answers.images)
        files["values/kata-deploy.json"] = json.dumps(kd, indent=2)
        files["values/gpu-operator.json"] = json.dumps(gpu_operator_values(c.answers), indent=2)
    h = helm.find_helm(helm_kubeconfig(k.files), k.context)
    # The managed releases and those in the namespaces the bundle reads, not every release on the
    # cluster: another's values are not ours to put in a bundle (they may hold its passwords),
    # and each costs two helm processes.
    names = (c.answers.kata_deploy.release, c.answers.gpu_operator.release) if c.answers else ()
    for r in (r for r in c.state.releases
              if helm.manages(r, names) or r.namespace in c.namespaces):
        for what in ("manifest", "values"):
            code, text, err = asyncio.run(helm.run_helm(
                h, ["get", what, r.name, "--namespace", r.namespace]))
            files[f"releases/{r.namespace}-{r.name}.{what}.yaml"] = text if code == 0 else err
            if code != 0:
                out.notes.append(f"helm get {what} {r.namespace}/{r.name}: exit {code}")
    files["cluster/clusterpolicy.json"] = json.dumps(c.state.cluster_policy, indent=2,
                                                     default=str)
    files["cluster/nodes.json"] = json.dumps(
        [{"name": n.name, "labels": n.labels, "allocatable": n.allocatable,
          "kubelet": n.kubelet_version, "runtime": n.container_runtime, "ready": n.ready,
          "taints": [str(t) for t in n.taints], "distribution": distribution_of(n),
          "containerdVersion": containerd_version_of(n), "kubeletRoot": kubelet_root_of(n)}
         for n in c.state.nodes], indent=2)
    files["cluster/runtimeclasses.txt"] = "\n".join(c.state.runtime_classes) + "\n"
    elsewhere = [(p.namespace, p.name) for p in c.state.pods
                 if p.runtime_class and p.namespace not in c.namespaces]
    event_namespaces = tuple(dict.fromkeys((*c.namespaces, *(ns for ns, _ in elsewhere))))
    events = gather.read_events(k, event_namespaces, out)
    files["cluster/events.txt"] = gather.events_text(events)
    files["cluster/events.json"] = json.dumps(events, indent=2)
    pods = gather.read_pods(k, c.namespaces, elsewhere, out)
    gather.read_logs(k, pods, out)
    now = datetime.now(UTC)
    for p in c.state.pods:
        if (p.namespace in c.namespaces or p.runtime_class) and failing(p):
            files[f"describe/{p.namespace}/{p.name}.txt"] = _described(k, p, now)
    nodes = _read_or_note(lambda: list(k.list_items("/api/v1/nodes")), "nodes", out, [])
    gather.describe_gpu_nodes(k, nodes, out, now)
    for node, host in c.facts.hosts.items():
        files[f"hosts/{node}.json"] = json.dumps(
            {"facts": asdict(host),
             "checks": [r.to_dict() for r in c.host_checks.get(node, ())]},
            indent=2, default=str)
    files.update(_namespace_objects(k, c.namespaces))
    files.update(_last_run_log())
    found = gather.versions(
        installer=_installer_version(), helm=_helm_version(h),
        server=_read_or_note(lambda: k.get_json("/version"), "/version", out, None),
        nodes=nodes, releases=c.state.releases, pods=pods,
        runtime_classes=_read_or_note(
            lambda: k.get_json("/apis/node.k8s.io/v1/runtimeclasses").get("items") or [],
            "runtimeclasses", out, []))
    files["versions.json"] = json.dumps(found, indent=2)
    return BundleContent(files, out.notes, gather.version_rows(found), _last_run_progress())


def _read_or_note(read: Callable[[], Any], what: str, out: gather.Gathered, default: Any) -> Any:
    try:
        return read()
    except kube.ApiError as exc:
        out.notes.append(f"{what}: could not be read ({gather.why(exc)})")
        return default


def _installer_version() -> str:
    try:
        return version("gpu-kata-installer")
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


def _helm_version(h: helm.Helm) -> str:
    try:
        return f"{asyncio.run(helm.helm_version(h))} ({h.binary})"
    except UserError as exc:
        return f"unknown: {exc}"


def failing(p: PodReading) -> bool:
    """A pod worth a describe in the bundle: not finished well and not all ready, restarted,
    or held (waiting, unschedulable, in an init container)."""
    done = p.phase == "Succeeded"
    ready, _, total = p.ready.partition("/")
    return not done and (p.phase != "Running" or ready != total or p.restarts > 0
                         or bool(p.waiting_reason or p.init_container))


def _described(k: kube.Kube, p: PodReading, now: datetime) -> str:
    try:
        return describe_object(k, "pod", p.name, p.namespace, now)
    except kube.ApiError as exc:
        return f"could not be read: {exc}\n"


def _namespace_objects(k: kube.Kube, namespaces: tuple[str, ...]) -> dict[str, str]:
    """The namespaces' ConfigMaps (the charts' configuration) and what Secrets there are -
    only their names, types and key names: a Secret's values never reach the bundle."""
    files: dict[str, str] = {}
    for ns in namespaces:
        for kind in ("configmaps", "secrets"):
            try:
                items = list(k.list_items(f"/api/v1/namespaces/{ns}/{kind}"))
            except kube.ApiError as exc:
                files[f"cluster/{ns}/{kind}.txt"] = f"could not be read: {exc}\n"
                continue
            if kind == "secrets":
                listed: list[dict[str, Any]] = [
                    {"name": s["metadata"]["name"], "type": s.get("type", ""),
                     "keys": sorted({*(s.get("data") or {}), *(s.get("stringData") or {})})}
                    for s in items]
            else:
                listed = [{**cm, "metadata": {key: v for key, v in cm["metadata"].items()
                                              if key != "managedFields"}} for cm in items]
            files[f"cluster/{ns}/{kind}.json"] = json.dumps(listed, indent=2)
    return files


def _last_run_log() -> dict[str, str]:
    """The newest log of a run on this machine; a state directory that cannot be read is
    said in the bundle, not a reason to write none."""
    try:
        logs = sorted((state_dir() / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
        return {"run.log": logs[-1].read_text(encoding="utf-8", errors="replace")} if logs \
            else {}
    except OSError as exc:
        return {"run.log": f"the run logs in {state_dir() / 'logs'} could not be read: {exc}\n"}


def _last_run_progress() -> RunProgress | None:
    """The per-node grid of the newest run log on this machine that holds a plan (a
    troubleshoot session's log holds none); None when there is none or none can be read."""
    try:
        logs = sorted((state_dir() / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime,
                      reverse=True)
        for log in logs[:RUN_LOGS_SEARCHED]:
            with log.open(encoding="utf-8", errors="replace") as lines:
                found = steps_from_log(lines)
            if found is not None:
                return RunProgress(node_grid(*found), log.name)
    except OSError:  # said by _last_run_log, in run.log
        pass
    return None


RUN_LOGS_SEARCHED = 20


def run_bundle(answers_path: Path | None, kubeconfig: str | None, context: str | None,
               output: Path | None) -> int:
    from installer.diagnosis.bundle import bundle_target, write_bundle

    path = bundle_target(output)  # a bad --output is said before minutes of collecting
    collected = asyncio.run(collect(answers_path, kubeconfig, context))
    findings = all_findings(collected.state)
    content = _bundle_files(collected, findings)
    path = write_bundle(path, content.files, findings, collected.redactor,
                        versions=content.versions, run=content.run, notes=content.notes)
    print(f"wrote {path} ({len(content.files)} files, {len(findings)} finding(s), "
          f"{len(content.notes)} note(s) in MANIFEST.txt)", file=sys.stderr)
    return 0
