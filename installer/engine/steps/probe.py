"""Gather step: probe every host in one fan-out (read-only), under the concurrency limit."""

from __future__ import annotations

from dataclasses import replace

from installer.cluster.facts import Facts, ProbeFailure
from installer.engine.events import StepFinished, StepStarted
from installer.engine.params import ProbeParams
from installer.engine.plan import Step
from installer.engine.runner import Context
from installer.hosts.access import HostAccess, target
from remote.probe import parse_probe, probe_command
from remote.ssh import HostResult, run_on_hosts


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
    targets = [target(t) for t in step.params.targets]
    for t in targets:
        ctx.emit(StepStarted(path=f"probe/{t.name}", title=f"probe {t.name} ({t.address})",
                             phase="gather", message=f"probe {t.name}"))

    def done(result: HostResult) -> None:
        failed = result.error is not None
        ctx.emit(StepFinished(path=f"probe/{result.name}", status="failed" if failed else "ok",
                              message=str(result.error) if failed else
                              f"probed in {result.duration:.1f}s",
                              detail=result.error.remedy if failed and result.error else ""))

    results = await run_on_hosts(targets, probe_command(), access.options,
                                 limit=ctx.services.get("ssh_limit", 50), sudo=access.sudo,
                                 sudo_password=access.sudo_password, on_result=done,
                                 **access.ssh_kwargs())
    hosts = {**facts.hosts, **{name: host_facts(r) for name, r in results.items()}}
    return replace(facts, hosts=hosts)
