"""Text from hosts and the cluster in the TUI: a node label value, an event message, a pod
log line and a host's kernel command line hold markup and terminal control sequences; every
table, pane and static shows them literally, with the controls escaped, and no control
character reaches what the screen draws (the strips the terminal is sent), nor, in a real
terminal, acts on it."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import replace

import pytest

from installer.diagnosis.clusterinfo import EventRow
from screens.app import InstallerApp
from screens.widgets.keyedtable import KeyedTable
from tests.fixtures.hostile import HOSTILE, RAW, SHOWN, hostile_facts
from tests.screens import fakes
from tests.screens.helpers import screen_text, shown, until
from tests.screens.terminal import Terminal

WIDE = (300, 50)  # no column cut short


def drawn(app) -> str:
    """The screen as drawn, control characters and all (screen_text joins the strips the
    compositor sends the terminal); it must hold none."""
    text = screen_text(app)
    assert not RAW.search(text.replace("\n", "")), RAW.search(text.replace("\n", ""))
    return text


async def test_troubleshooting_shows_labels_events_logs_and_evidence_as_data(monkeypatch):
    monkeypatch.setattr(fakes, "EVENTS", (
        EventRow("gpu-operator", "pod/nvidia-sandbox-validator-2jx9w", "Warning", "BackOff",
                 HOSTILE, 7, "2025-01-01T10:00:00"),))
    labels = {**fakes.KATA_NODE_LABELS["gpu-node-1"], "nvidia.com/gpu.workload.config": HOSTILE}
    monkeypatch.setattr(fakes, "KATA_NODE_LABELS", {**fakes.KATA_NODE_LABELS,
                                                    "gpu-node-1": labels})
    log = (f"device 0000:3b:00.0 not bound to 'vfio-pci', driver: 'nvidia' {HOSTILE}",
           HOSTILE, f"\t{HOSTILE}")
    monkeypatch.setattr(fakes, "VALIDATOR_LOG", log)
    inspector = fakes.FakeInspector()
    app = InstallerApp(fakes.state(), services=fakes.services(inspector=inspector),
                       start="nodes")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("ctrl+t")
        await until(pilot, lambda: getattr(app.screen, "view", None) is not None)
        tabs = app.screen.query_one("#ts-tabs")

        # Findings: a log line in the evidence below the table (an event's message has
        # its own tab, below).
        await pilot.pause()
        findings = app.screen.query_one("#findings", KeyedTable)
        at = next(i for i, f in enumerate(app.screen.findings)
                  if any("driver: 'nvidia' [bold" in e for e in f.evidence))
        findings.focus()
        findings.move_cursor(row=at)
        await pilot.pause()
        assert f"driver: 'nvidia' {SHOWN}" in shown(app, "#finding-detail")
        assert f"driver: 'nvidia' {SHOWN}" in drawn(app)

        tabs.active = "ts-events"
        await pilot.pause()
        assert SHOWN in drawn(app)

        tabs.active = "ts-nodes"
        await pilot.pause()
        assert SHOWN in drawn(app)

        tabs.active = "ts-pods"
        await pilot.pause()
        pods = app.screen.query_one("#ts-pod-table", KeyedTable)
        pods.focus()
        pods.move_cursor(row=pods.get_row_index("gpu-operator/nvidia-sandbox-validator-2jx9w"))
        await pilot.press("enter")
        await until(pilot, lambda: len(app.screen.query_one("#ts-log").pane.ring) == 3)
        await pilot.pause()
        text = drawn(app)
        assert f"driver: 'nvidia' {SHOWN}" in text
        assert f"        {SHOWN}" in text  # the tab, expanded
        # What the pane draws is what the ring holds: the escaped line.
        pane = app.screen.query_one("#ts-log").pane
        assert pane.ring[1] == SHOWN


async def test_a_host_string_in_check_evidence_is_shown_as_data():
    facts = fakes.example_facts()
    host = facts.hosts["gpu-node-2"]
    facts = replace(facts, hosts={**facts.hosts, "gpu-node-2": replace(
        host, cmdline=f"BOOT_IMAGE=/vmlinuz {HOSTILE}", os_pretty=HOSTILE)})
    app = InstallerApp(fakes.state(facts=facts),  # the probe finds the hostile host
                       services=fakes.services(fakes.World(facts=facts), facts=facts),
                       start="checks")
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: bool(app.state.checks), what="check results")
        grid = app.screen.query_one(KeyedTable)
        grid.focus()
        grid.move_cursor(row=grid.get_row_index("gpu-node-2"),
                         column=grid.get_column_index("iommu-enabled"))
        await pilot.pause()
        assert f"BOOT_IMAGE=/vmlinuz {SHOWN}" in shown(app, "#evidence")
        assert f"BOOT_IMAGE=/vmlinuz {SHOWN}" in drawn(app)


async def test_an_api_servers_error_and_a_notification_are_never_markup():
    from screens.state import WizardState

    app = InstallerApp(WizardState(), services=fakes.services(
        discover_error=RuntimeError(f"the server said: {HOSTILE}")), start="cluster")
    async with app.run_test(size=WIDE) as pilot:
        await until(pilot, lambda: app.facts_error is not None, what="the failure")
        await pilot.pause()
        assert SHOWN in shown(app, "#error")
        assert SHOWN in drawn(app)
        app.screen.notify(f"notice: {HOSTILE}", timeout=30)
        await until(pilot, lambda: len(app._notifications), what="the notification")
        note = list(app._notifications)[-1]
        assert note.message == f"notice: {SHOWN}" and not note.markup  # Textual: plain text


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_a_hosts_kernel_command_line_reaches_a_real_terminal_as_text(tmp_path):
    """The real program in tmux: the Checks screen's evidence quotes gpu-node-1's hostile
    kernel command line literally, the screen is not cleared under it and the window keeps
    its title. (A hostile label value cannot come from a cluster: the API server refuses it,
    and so does the recorded facts loader.)"""
    facts = hostile_facts(tmp_path, label=False)
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "TERM": "xterm-256color",
           "PATH": os.environ["PATH"]}
    term = Terminal([sys.executable, "-m", "screens.cli", "--answers",
                     str(fakes.EXAMPLES / "answers.yaml"), "--wizard", "--facts", str(facts)],
                    cwd=fakes.ROOT, env=env, size=(220, 40), workdir=tmp_path)
    try:
        term.wait_for("Kubeconfig")
        for title in ("Nodes - Kata VMs", "SSH - reaching", "Checks - host"):
            term.keys("C-n")
            term.wait_for(title)
        term.wait_for("iommu-enabled")
        term.keys("Down")  # from the header into the grid, should the cursor start there
        want = "proc/cmdline: BOOT_IMAGE=/vmlinuz [bold red]x[/] " \
            "[link=https://evil.example]y[/link] \\x1b[2J\\x1b]0;pwned"
        screen = term.screen()
        for _ in range(12):  # walk right to the iommu-enabled column
            if want in screen:
                break
            term.keys("Right")
            time.sleep(0.2)
            screen = term.screen()
        assert want in screen, screen
        assert "iommu-enabled" in screen  # the grid above it was not cleared away
        assert "pwned" not in term.title()
    finally:
        term.close()
