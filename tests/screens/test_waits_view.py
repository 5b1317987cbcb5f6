"""The install screen's honest waits: the running step's elapsed time, what it awaits, what it
last saw and its countdown, ticking with the run state's clock (frozen here, never slept on),
and the Nodes tab's steps x nodes grid."""

from __future__ import annotations

from rich.text import Text

from screens.app import InstallerApp
from screens.modals import ConfirmModal
from screens.widgets.keyedtable import KeyedTable
from tests.screens import fakes
from tests.screens.helpers import until


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def start_install(pilot) -> None:
    pilot.app.goto("review")
    await pilot.pause()
    await pilot.press("i")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmModal))
    await pilot.press("y")


def wait_line(app: InstallerApp) -> str:
    return str(app.screen.query_one("#wait-line").render())


async def test_the_running_step_shows_elapsed_awaited_last_seen_and_countdown():
    world = fakes.World(block="verify/gpu-operator", waits=fakes.operator_waits())
    app = InstallerApp(fakes.state(), services=fakes.services(world), start="cluster")
    clock = Clock(fakes.FROZEN)
    app.run_state.clock = clock
    async with app.run_test(size=(120, 40)) as pilot:
        await start_install(pilot)
        await until(pilot, lambda: app.run_state.steps.get("verify/gpu-operator") is not None
                    and app.run_state.steps["verify/gpu-operator"].wait is not None)
        await pilot.pause()
        app.screen.tick()
        text = wait_line(app)
        assert "verify/gpu-operator · 0s elapsed · times out in 5m15s" in text
        assert "awaits: operands on 2 Kata nodes, ClusterPolicy ready, GPUs allocatable" in text
        assert ("last seen: 3 of 4 operand pods running on gpu-node-2; waiting for "
                "nvidia-sandbox-validator: Init:1/4 vfio-pci-validation") in text
        clock.now += 63
        app.screen.tick()
        assert "verify/gpu-operator · 1m03s elapsed · times out in 4m12s" in wait_line(app)
        # the grid: gpu-node-1's operands are ready, gpu-node-2's still running (1m03s)
        grid = app.screen.query_one("#node-grid", KeyedTable)

        def cell(node: str, column: str) -> str:
            c = grid.get_cell(node, column)
            return c.plain if isinstance(c, Text) else str(c)

        assert cell("gpu-node-1", "operands") == "✓"
        assert cell("gpu-node-2", "operands") == "● 1m03s"
        assert cell("gpu-node-1", "checks").startswith("✓")  # its host checks passed
