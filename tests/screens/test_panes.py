"""Panes that scroll and show everything: the Helm output pane follows its newest lines even
when it was fed while hidden, the troubleshoot screen's host checks reach their last row, the
Review plan drops a stale horizontal scroll, and text cut at 80 columns is shown whole in a
detail line."""

from __future__ import annotations

from textual.events import MouseScrollDown
from textual.widgets import TabbedContent

from screens.app import InstallerApp
from screens.bridge import OUTPUT_KEY
from screens.modals import ConfirmModal
from screens.widgets.keyedtable import KeyedTable
from screens.widgets.logpane import LogView
from tests.screens import fakes
from tests.screens.helpers import screen_text, shown, until


def feed(app: InstallerApp, lines: list[str]) -> None:
    """Tool output as the app takes it from the bridge: into the run's ring, then to the
    live screens."""
    app.run_state.output.extend(lines)
    app.screen.on_lines({OUTPUT_KEY: lines})


def app_for(start: str = "cluster", state=None, world=None) -> InstallerApp:
    app = InstallerApp(state or fakes.state(), services=fakes.services(world), start=start)
    app.run_state.clock = lambda: fakes.FROZEN
    return app


async def troubleshoot_table(pilot, app: InstallerApp, tab: str, table_id: str) -> KeyedTable:
    """Open the troubleshoot screen on `tab` and focus its table."""
    await pilot.press("ctrl+t")
    await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
    app.screen.query_one("#ts-tabs", TabbedContent).active = tab
    await pilot.pause()
    table = app.screen.query_one(f"#{table_id}", KeyedTable)
    table.focus()
    await pilot.pause()
    return table


async def test_helm_output_fed_while_hidden_shows_its_newest_lines_when_shown():
    app = app_for(start="install")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#run-tabs", TabbedContent).active == "tab-pods"
        for i in range(0, 500, 50):  # batches, as the bridge delivers them
            lines = [f"helm line {n:03d}" for n in range(i, i + 50)]
            feed(app, lines)
            await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        await pilot.pause()
        view = screen.query_one("#output", LogView)
        text = screen_text(app)
        assert "helm line 499" in text, text
        assert "helm line 000" not in text
        assert "[following]" in shown(app, "#output .log-title")
        # more lines after it is shown still come into view
        feed(app, ["helm line 500"])
        await pilot.pause()
        assert "helm line 500" in screen_text(app)
        assert view.pane.follow


async def test_helm_output_shown_first_with_a_full_ring_starts_at_its_end():
    app = app_for(start="install")
    app.run_state.output.extend([f"early line {n:03d}" for n in range(500)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        await pilot.pause()
        text = screen_text(app)
        assert "early line 499" in text, text
        assert "[following]" in shown(app, "#output .log-title")


async def test_helm_output_keeps_following_across_a_resize():
    app = app_for(start="install")
    app.run_state.output.extend([f"line {n:03d}" for n in range(500)])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        await pilot.pause()
        assert "line 499" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await pilot.pause()
        assert "line 499" in screen_text(app)
        assert "[following]" in shown(app, "#output .log-title")


def many_checks() -> dict:
    from installer.hosts.checks import CheckResult
    return {node: [CheckResult(f"check-{i:02d}", "pass" if i % 7 else "warn", "warning",
                               f"{node} check {i:02d} saw what it needed to see, in a summary "
                               f"long enough to be cut at eighty columns ({i:02d} end)",
                               evidence=[f"evidence {i:02d}"], remedy=f"remedy {i:02d}")
                   for i in range(20)]
            for node in ("gpu-node-1", "gpu-node-2", "gpu-node-3")}


async def test_troubleshoot_host_checks_scroll_to_the_last_check_and_show_it_whole():
    app = app_for(start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        app.state.checks = many_checks()
        table = await troubleshoot_table(pilot, app, "ts-checks", "check-table")
        assert table.row_count == 60
        await pilot.press("ctrl+end")
        await pilot.pause()
        text = screen_text(app)
        assert "gpu-node-3  ✓ pass  check-19" in text, text  # the last row is on screen
        detail = shown(app, "#ts-check-detail")
        assert detail.startswith("gpu-node-3 · check-19 · ✓ pass")
        assert "in a summary long enough to be cut at eighty columns (19 end)" in detail
        assert "evidence 19" in detail and "What to do: remedy 19" in detail
        # the mouse wheel scrolls it too
        await pilot.press("ctrl+home")
        await pilot.pause()
        assert table.scroll_y == 0
        for _ in range(30):
            table.post_message(MouseScrollDown(table, 1, 1, 0, 1, 0, False, False, False))
        await pilot.pause(0.3)
        assert table.scroll_y > 0


async def test_troubleshoot_event_message_is_shown_whole_under_the_table():
    app = app_for(start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        await troubleshoot_table(pilot, app, "ts-events", "events")
        screen = app.screen
        # at 80 columns the Message column is off the right edge; the detail line has it
        assert "Back-off restarting" not in screen_text(app)
        await pilot.press("down")
        await pilot.pause()
        assert screen.events[1].reason == "BackOff"
        detail = shown(app, "#event-detail")
        assert "gpu-operator/pod/nvidia-sandbox-validator-2jx9w · Warning · BackOff · seen 7x" \
            in detail
        assert "Back-off restarting failed container" in detail
        assert "Back-off restarting failed container" in screen_text(app)


async def test_troubleshoot_finding_detail_scrolls_to_its_remedy():
    app = app_for(start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        await pilot.pause()
        screen = app.screen
        finding = screen.findings[0]
        assert finding.remedy and f"What to do: {finding.remedy}" in shown(app,
                                                                          "#finding-detail")
        box = screen.query_one("#finding-box")
        box.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        assert finding.remedy.split()[-1] in screen_text(app)  # its last word on screen


async def scrolled_right_review(app: InstallerApp, pilot):
    box = app.screen.query_one("#plan-box")
    await pilot.pause()
    assert box.max_scroll_x > 10  # the plan is wider than 80 columns
    box.focus()
    for _ in range(12):
        await pilot.press("right")
    await pilot.pause()
    assert box.scroll_x > 0
    return box


async def test_review_plan_scrolls_back_left_when_the_plan_changes():
    app = app_for(start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        box = await scrolled_right_review(app, pilot)
        app.state.set_choice(["gpu-node-2"], "traditional")  # another plan
        app.screen.refresh_from_state()
        await pilot.pause()
        assert box.scroll_x == 0 and box.scroll_y == 0
        assert "  check:" in screen_text(app)  # its first lines, from their first column


async def test_review_plan_is_shown_from_the_left_when_the_screen_comes_back():
    app = app_for(start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        box = await scrolled_right_review(app, pilot)
        box.scroll_to(y=5, animate=False, immediate=True)
        await pilot.pause()
        app.goto("nodes")
        await pilot.pause()
        app.goto("review")
        await pilot.pause()
        await pilot.pause()
        box = app.screen.query_one("#plan-box")
        assert box.scroll_x == 0
        assert box.scroll_y == 5  # the same plan: the operator's place in it is kept


async def test_nodes_at_80_columns_show_the_default_line_and_the_row_under_the_cursor_whole():
    app = app_for(start="nodes")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(KeyedTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("gpu-node-3"))
        await pilot.pause()
        text = screen_text(app)
        assert "traditional    " not in text.split("gpu-node-3")[1].split("\n")[0]  # cut cell
        assert "(d switches kata/traditional)" in " ".join(text.split())  # wrapped, whole
        detail = shown(app, "#node-detail")
        assert detail == ("gpu-node-3 · GPUs: yes · Workload label: container · Runtime: "
                          "containerd 2.0.5 · Kubelet: v1.33.2 · Ready: yes · Choice: "
                          "traditional · Age: 9h")
        assert "Choice: traditional" in " ".join(screen_text(app).split())
        await pilot.press("k")  # a new choice shows at once
        await pilot.pause()
        assert shown(app, "#node-detail").endswith("Choice: kata · Age: 9h")


async def test_install_step_status_cut_by_the_table_is_shown_whole_under_it():
    world = fakes.World(fail="install/gpu-operator")
    app = app_for(world=world)
    async with app.run_test(size=(80, 24)) as pilot:
        app.goto("review")
        await pilot.pause()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await until(pilot, lambda: app.run_state.status == "failed")
        await pilot.pause()
        screen = app.screen
        detail = screen.query_one("#step-detail")
        table = screen.query_one("#steps", KeyedTable)
        table.focus()
        await pilot.pause()
        assert table.cursor_key == "install/gpu-operator"
        assert not detail.display  # the failed step, whole on the run line already
        failed = app.run_state.steps["install/gpu-operator"]
        run_line = " ".join(shown(app, "#run-line").split())
        assert failed.message in run_line and failed.detail in run_line
        table.move_cursor(row=table.get_row_index("verify/gpu-operator"))
        await pilot.pause()
        row = app.run_state.steps["verify/gpu-operator"]
        assert row.title not in screen_text(app).split("────")[0]  # the cell is cut
        assert detail.display
        assert shown(app, "#step-detail") == f"· verify/gpu-operator · {row.title}"
        assert row.title in " ".join(screen_text(app).split())
        table.blur()
        await pilot.pause()
        assert not detail.display  # out of the list, the line goes away


async def test_troubleshoot_pod_at_80_columns_is_shown_whole_under_the_pod_table():
    """At 80 columns the pod table ends at Ready: Restarts, Node, Reason and Age are off the
    right edge. The line under it names them for the pod under the cursor, and follows it."""
    app = app_for(start="review")
    async with app.run_test(size=(80, 24)) as pilot:
        table = await troubleshoot_table(pilot, app, "ts-pods", "ts-pod-table")
        table.move_cursor(row=table.get_row_index("gpu-operator/nvidia-sandbox-validator-2jx9w"))
        await pilot.pause()
        header = next(line for line in screen_text(app).splitlines() if "Namespace" in line)
        assert "Ready" in header and "Restarts" not in header  # cut by the table ...
        detail = shown(app, "#ts-pod-detail")
        assert detail.startswith("nvidia-sandbox-validator-2jx9w · Phase: Running")
        assert "Restarts: " in detail and "Node: gpu-node-2" in detail  # ... shown whole here
        await pilot.press("up")
        await pilot.pause()
        assert "nvidia-sandbox-validator" not in shown(app, "#ts-pod-detail")
