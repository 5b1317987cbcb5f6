"""Gather step: probe every host in one fan-out (read-only), under the concurrency limit."""

from __future__ import annotations

from dataclasses import replace

from installer.cluster.facts import Facts, ProbeFailure
from installer.engine.events import StepFinished, StepStarted
from installer.engine.params import ProbeParams
from installer.engine.plan import Step
from installer.engine.runner import Context
from installer.engine.steps.hostrun import run_on
from installer.hosts.access import HostAccess
from remote.probe import parse_probe, probe_command
from remote.ssh import HostResult

DRY_RUN = "dry-run"  # a ProbeFailure's kind: not probed because the run is a dry-run


def host_facts(result: HostResult) -> object:
    """Parsed facts, or why the host could not be probed."""
    if result.error is not None:
        return ProbeFailure(result.error.kind, result.error.message, result.error.remedy)
    if result.exit_status != 0 and not result.stdout:
        return ProbeFailure("error", f"the probe exited {result.exit_status}: "
                            f"{result.stderr.decode('utf-8', 'replace').strip()[:300]}")
    return parse_probe(result.stdout)


async def probe(ctx: Context, step: Step[ProbeParams], facts: Facts) -> Facts:
    access: HostAccess = ctx.services["hosts"]
    for t in step.params.targets:
        where = t.pod or t.address
        ctx.emit(StepStarted(path=f"probe/{t.node}", title=f"probe {t.node} ({where})",
                             phase="gather", message=f"probe {t.node}"))

    def done(result: HostResult) -> None:
        failed = result.error is not None
        ctx.emit(StepFinished(path=f"probe/{result.name}", status="failed" if failed else "ok",
                              message=str(result.error) if failed else
                              f"probed in {result.duration:.1f}s",
                              detail=result.error.remedy if failed and result.error else ""))

    reach = step.params.targets
    skipped: dict[str, object] = {}
    if ctx.dry_run:  # a dry-run creates no pod: those hosts are shown, not probed
        reach = tuple(t for t in reach if not t.pod)
        for t in step.params.targets:
            if t.pod:
                skipped[t.node] = ProbeFailure(
                    DRY_RUN, f"not probed: reached through pod {t.pod}, which a dry-run does "
                    "not create", "allow the pods: a run asks before it creates them "
                    "(headless --yes; `status --yes`), or give the host's recorded tree with "
                    "--facts")
                ctx.emit(StepFinished(path=f"probe/{t.node}", status="dry-run",
                                      message=f"not probed: a dry-run creates no pod ({t.pod})"))
    results = await run_on(ctx, step.id, reach, probe_command(), sudo=access.sudo,
                           on_result=done)
    hosts = {**facts.hosts, **skipped, **{name: host_facts(r) for name, r in results.items()}}
    return replace(facts, hosts=hosts)
