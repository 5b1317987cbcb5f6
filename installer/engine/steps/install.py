"""Change step: `helm upgrade --install` one chart, its output streamed as events."""

from __future__ import annotations

from installer.charts import helm
from installer.cluster.facts import Facts
from installer.engine.events import Output
from installer.engine.params import HelmParams
from installer.engine.plan import Step
from installer.engine.runner import Context, Done
from installer.engine.waits import WaitReporter
from installer.permit import Permit

# Where each chart is set in the answers file, so a helm failure's fix names the key.
ANSWERS_SECTION = {"install/kata-deploy": "kataDeploy", "install/gpu-operator": "gpuOperator"}


def helm_timeout(args: list[str]) -> float:
    """helm's own --timeout (its default, 5m, when none is given)."""
    return helm.seconds(args[args.index("--timeout") + 1] if "--timeout" in args else "5m")


def helm_awaited(release: str, namespace: str, args: list[str]) -> str:
    what = f"helm to install {namespace}/{release}"
    return what + (" and wait for its resources to be ready (--wait)" if "--wait" in args
                   else "")


async def install(ctx: Context, step: Step[HelmParams], facts: Facts) -> Done:
    h: helm.Helm = ctx.services["helm"]
    (change,) = step.changes
    p = step.params
    args = list(p.command[1:])
    waits: WaitReporter | None = None

    def on_line(stream: str, line: str) -> None:
        ctx.emit(Output(path=step.id, message=line, stream=stream))
        if waits is not None and line.strip():
            waits.saw(f"helm said: {line.strip()}")

    async def act(permit: Permit) -> str:
        nonlocal waits
        waits = WaitReporter(ctx.emit, step.id, helm_awaited(p.release, p.namespace, args),
                             helm_timeout(args))
        waits.saw("helm is running")
        if p.recover:
            await helm.uninstall(h, permit, [p.recover, p.release, "--namespace", p.namespace,
                                             "--wait"], on_line)
        return await helm.install(h, permit, args, dict(p.values), on_line,
                                  ANSWERS_SECTION.get(step.id, "the chart"), p.namespace)

    await ctx.change(step.id, change.target, change.description, act,
                     {"command": list(p.command), "values": p.values})
    return Done(f"{p.namespace}/{p.release} deployed")
