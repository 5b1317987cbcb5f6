"""`status`: drift between the cluster and hosts and what the answers say was installed.

Like `terraform plan -detailed-exitcode`: 0 when everything matches, 1 with differences
(a host that could not be checked is one), 2 on bad input. The read is the install's own
gather phase in a dry-run (discover, probe the Kata hosts over SSH), its plan the install's
build_plan, so status and a re-run of the install agree on what differs
(installer.engine.drift says how each difference is read).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from installer.answers.model import Answers, load_answers
from installer.charts.verify import GPU_RUNTIME_CLASS
from installer.cluster import drain, kube
from installer.cluster.facts import Facts
from installer.cluster.podread import list_pods
from installer.engine.drift import KINDS, Drift, Observed, PodSeen, RuntimeClassSeen, checked, drift
from installer.engine.reading import NoConsent, PodsAgreed, reading_plan
from installer.engine.runner import Context, Engine
from installer.engine.runtime import run_services
from installer.errors import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    EXIT_STEP_FAILED,
    Problem,
    StepFailed,
    UserError,
)
from installer.redact import Redactor
from installer.textsafe import display

KATA_VERSION_ANNOTATION = "katacontainers.io/kata-version"
HEADINGS = {"label": "node labels", "cordon": "nodes left cordoned", "chart": "charts",
            "host": "host files",
            "runtimeclass": "RuntimeClass", "vfio": "GPUs off vfio-pci",
            "kata-deploy": "kata-deploy on nodes not chosen for Kata",
            "unchecked": "could not check"}


def observe(k: kube.Kube, answers: Answers) -> Observed:
    """The cheap reads beyond the install's facts: the Kata GPU RuntimeClass and where the
    kata-deploy DaemonSet's pods run."""
    try:
        rc = k.get_json(f"/apis/node.k8s.io/v1/runtimeclasses/{GPU_RUNTIME_CLASS}")
        meta = rc.get("metadata") or {}
        seen: RuntimeClassSeen | None = RuntimeClassSeen(
            GPU_RUNTIME_CLASS, rc.get("handler"),
            (meta.get("annotations") or {}).get(KATA_VERSION_ANNOTATION))
    except kube.ApiError as exc:
        if exc.status != 404:
            raise
        seen = None
    pods = tuple(PodSeen((p.get("metadata") or {}).get("name", ""),
                         (p.get("spec") or {}).get("nodeName"))
                 for p in list_pods(k, answers.kata_deploy.namespace)
                 if (drain.controller_of(p) or {}).get("kind") == "DaemonSet")
    return Observed(GPU_RUNTIME_CLASS, seen, pods)


async def gather_drift(answers: Answers, probe_pods: bool = False
                       ) -> tuple[list[Drift], dict[str, Any]]:
    """Gather as an install's dry-run does, plan, read the rest, compare. `probe_pods`:
    hosts reached through host-access pods are probed (their pods made, then deleted);
    the gather makes nothing else, and runs no change step."""
    from installer.engine.steps import default_executors

    ctx = Context(dry_run=not probe_pods, sinks=[],
                  decider=PodsAgreed() if probe_pods else NoConsent(),
                  services=run_services(answers, Redactor(), ask=getpass.getpass
                                        if sys.stdin.isatty() else None))
    plan, facts = await Engine(answers, ctx, default_executors(),
                               reading_plan).gather(Facts(cluster=None))
    observed = await asyncio.to_thread(observe, ctx.services["kube"], answers)
    return drift(answers, facts, plan, observed), checked(answers, facts, observed)


def _with_cluster(answers: Answers, kubeconfig: str | None, context: str | None) -> Answers:
    """--kubeconfig and --context over the answers' own cluster section."""
    update = {k: v for k, v in (("kubeconfig", kubeconfig), ("context", context)) if v}
    if not update:
        return answers
    return answers.model_copy(update={"cluster": answers.cluster.model_copy(update=update)})


def render_text(found: list[Drift]) -> str:
    if not found:
        return "no drift: the cluster matches the answers"
    lines = []
    for kind in KINDS:
        group = [d for d in found if d.kind == kind]
        if group:
            lines.append(f"{HEADINGS[kind]}:")
        lines += [f"  {d.target}: expected {d.expected}; found {d.found}\n    fix: {d.fix}"
                  for d in group]
    n = len(found)
    lines.append(f"{n} difference{'s' if n != 1 else ''}")
    return "\n".join(display(line, multiline=True) for line in lines)


def run_status(answers_path: Path, kubeconfig: str | None, context: str | None,
               as_json: bool, probe_pods: bool = False) -> int:
    answers = _with_cluster(load_answers(answers_path), kubeconfig, context)
    try:
        found, looked = asyncio.run(gather_drift(answers, probe_pods))
    except UserError as exc:
        # Exit 1 means "differences" here: a cluster that could not be compared at all
        # (an API server that does not answer, a context that may not read) is not one.
        exc.exit_code = EXIT_BAD_INPUT
        raise
    except StepFailed as exc:
        raise UserError("status could not read the cluster", [Problem(
            "(cluster)", str(exc), exc.fix or "fix what it says, then run status again")]
                        ) from None
    code = EXIT_STEP_FAILED if found else EXIT_OK
    if as_json:
        print(json.dumps({"drift": [d.to_dict() for d in found], "checked": looked,
                          "exitCode": code}, indent=2, sort_keys=True))
    else:
        print(render_text(found))
    sys.stdout.flush()
    return code
