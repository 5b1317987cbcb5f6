"""Change step: `helm upgrade --install` one chart, its output streamed as events."""

from __future__ import annotations

from installer.charts import helm
from installer.cluster.facts import Facts
from installer.engine.events import Output
from installer.engine.plan import Step
from installer.engine.runner import Context
from installer.permit import Permit

# Where each chart is set in the answers file, so a helm failure's fix names the key.
ANSWERS_SECTION = {"install/kata-deploy": "kataDeploy", "install/gpu-operator": "gpuOperator"}


async def install(ctx: Context, step: Step, facts: Facts) -> str:
    h: helm.Helm = ctx.services["helm"]
    (change,) = step.changes
    args = step.params["command"][1:]

    def on_line(stream: str, line: str) -> None:
        ctx.emit(Output(path=step.id, message=line, stream=stream))

    async def act(permit: Permit) -> str:
        recover = step.params.get("recover")
        if recover:
            release, ns = step.params["release"], step.params["namespace"]
            await helm.uninstall(h, permit, [recover, release, "--namespace", ns, "--wait"],
                                 on_line)
        return await helm.install(h, permit, args, step.params["values"], on_line,
                                  ANSWERS_SECTION.get(step.id, "the chart"),
                                  step.params["namespace"])

    await ctx.change(step.id, change.target, change.description, act,
                     {"command": step.params["command"], "values": step.params["values"]})
    return f"{step.params['namespace']}/{step.params['release']} deployed"
