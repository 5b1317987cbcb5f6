"""Host fixes: consent per kind of fix, each planned fix's preview, its progress, reboots."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Select, Static

from installer.engine.events import Event
from installer.errors import UserError
from installer.textsafe import display
from screens.base import Field, Form, WizardScreen, problems_text
from screens.state import answers_data
from screens.widgets.datatext import DataStatic
from screens.widgets.keyedtable import KeyedTable

POLICY = (("ask me during the run", "ask"), ("apply without asking", "apply"),
          ("never (skip)", "skip"))

FIELDS = [
    Field("fix-iommu", "IOMMU on (grub)", "hostFixes.iommu", "select", POLICY),
    Field("fix-nouveau", "Blacklist nouveau", "hostFixes.nouveauBlacklist", "select", POLICY),
    Field("fix-vfio", "Bind GPUs to vfio", "hostFixes.vfioBind", "select", POLICY),
    Field("fix-kubelet", "Kubelet feature gate", "hostFixes.kubeletFeatureGate", "select",
          POLICY),
    Field("fix-reboot", "Reboot when needed", "hostFixes.reboot", "select", POLICY),
]

COLUMNS = (("status", "Status"), ("node", "Node"), ("fix", "Fix"), ("policy", "Consent"))
POLICY_LABEL = {"ask": "asks first", "apply": "applies", "skip": "never"}

_STATUS = {"pending": ("planned", ""), "running": ("applying…", "yellow"),
           "ok": ("✓ applied", "green"), "failed": ("✗ failed", "bold red"),
           "skipped": ("- skipped", "dim"), "dry-run": ("· dry-run", "dim"),
           "cancelled": ("! stopped", "red")}


def host_fixes(plan: dict[str, Any] | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(step, change) pairs of every host change in a plan."""
    if not plan:
        return []
    return [(s, c) for s in plan["steps"] for c in s["changes"] if c["kind"] == "host"]


class FixesScreen(WizardScreen):
    STEP = "fixes"
    TITLE = "Host fixes - preview, consent, progress, reboots"
    HELP = """
Decides which host files the installer may change, per kind of fix (answers hostFixes.*):
ask me during the run (the run shows the exact change and waits for your yes), apply
without asking, or never (the host is left alone and its failed check stays failed).

What each fix changes on a host: IOMMU on - /etc/default/grub's kernel command line
(intel_iommu=on or amd_iommu=on), then update-grub; Blacklist nouveau -
/etc/modprobe.d/gpu-kata-blacklist-nouveau.conf and the initramfs; the host NVIDIA
driver (under Bind GPUs to vfio) - /etc/modprobe.d/gpu-kata-blacklist-nvidia.conf;
Kubelet feature gate - KubeletPodResourcesGet in /var/lib/kubelet/config.yaml and a
kubelet restart; Bind GPUs to vfio - the GPUs and their IOMMU groups to vfio-pci; Reboot
when needed - a reboot, with its own consent. Each file is backed up first; each planned
fix is listed with its preview, and during an install this screen shows each one's
progress.
"""

    def body(self) -> ComposeResult:
        with VerticalScroll(id="fixes-scroll"):
            yield Form(FIELDS, id="fixes-form")
            yield DataStatic("", id="error", classes="error")
            yield DataStatic("", id="fixes-status")
            yield KeyedTable(id="fixes", cursor_type="row")
            yield DataStatic("", id="preview")

    def on_mount(self) -> None:
        self.refresh_from_state()

    def _plan(self) -> dict[str, Any] | None:
        run = self.wizard.run_state
        if run.plan is not None and run.status != "idle":
            return run.plan  # what the run is doing (or did), with its progress
        plan, _ = self.wizard.state.plan_or_error()
        return plan.to_dict() if plan else None

    def refresh_from_state(self) -> None:
        self.query_one(Form).load(answers_data(self.wizard.state.answers))
        fixes = host_fixes(self._plan())
        table = self.query_one(KeyedTable)
        run = self.wizard.run_state
        rows = []
        for i, (step, change) in enumerate(fixes):
            row = run.steps.get(step["id"])
            status = row.status if row else "pending"
            label, style = (("after reboot", "yellow") if change["condition"]
                            and status == "pending" else _STATUS.get(status, ("?", "")))
            detail = change["detail"]
            rows.append((str(i), (Text(label, style=style), change["target"],
                                  detail.get("fix") or change["description"],
                                  POLICY_LABEL.get(detail.get("policy", ""),
                                                   detail.get("policy", "")))))
        table.fill_rows(COLUMNS, rows)
        table.set_class(not fixes, "-empty")
        status = Text()
        if not fixes:
            state = self.wizard.state
            hosts = state.facts.hosts if state.facts else {}
            unprobed = [n for n in state.kata_nodes() if n not in hosts]
            if unprobed:
                status.append(f"No host fixes are planned yet: {', '.join(unprobed[:5])} "
                              "not probed (the Checks screen probes them).", style="dim")
            elif not state.kata_nodes():
                status.append("No host fixes: no node is chosen for Kata.", style="dim")
            else:
                status.append("No host fixes are needed: the Kata hosts are ready.",
                              style="green")
        else:
            reboots = sorted({c["target"] for _, c in fixes if c["detail"].get("fix") == "reboot"
                              or c["detail"].get("reboot")})
            later = sum(1 for _, c in fixes if c["condition"])
            now = len(fixes) - later
            status.append(f"{now} host fix{'es' if now != 1 else ''} planned")
            if later:
                status.append(f", {later} more after the reboot (asked for again then)")
            if reboots:
                status.append(f" · reboot needed on {', '.join(reboots)}", style="yellow")
        self.query_one("#fixes-status", Static).update(status)
        self._preview(fixes)

    def _preview(self, fixes: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        table = self.query_one(KeyedTable)
        box = self.query_one("#preview", Static)
        if not fixes or not table.row_count:
            box.update("")
            return
        _step, change = fixes[min(table.cursor_row, len(fixes) - 1)]
        text = Text()
        text.append(f"{change['description']}\n", style="bold")
        preview = change["detail"].get("preview", "")
        # The host file's own text: a CR or BEL in it is shown, not dropped by rich.
        text.append(display(preview, multiline=True) or "(no preview)",
                    style="" if preview else "dim")
        box.update(text)

    def on_keyed_table_row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self._preview(host_fixes(self._plan()))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        form = self.query_one(Form)
        err = self.query_one("#error", Static)
        try:
            self.wizard.state.edit(form.changes())
            err.display = False
        except UserError as exc:
            err.update(problems_text(exc, form))
            err.display = True
            return
        self.wizard.answers_changed("fixes")
        self.refresh_from_state()

    def on_run_event(self, event: Event) -> None:
        self.refresh_from_state()
