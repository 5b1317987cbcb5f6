"""Charts: versions, sources (remote or a local path), resource naming, CC mode, extra values."""

from __future__ import annotations

from typing import Any

import yaml
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Input, Select, Static, TabbedContent, TabPane, TextArea

from installer.answers.model import DEFAULT_KATA_CHART, DEFAULT_OPERATOR_REPO
from installer.answers.yamlsrc import parse_yaml
from installer.errors import Problem, UserError
from screens.base import Field, Form, WizardScreen, problems_text
from screens.state import answers_data
from screens.widgets.datatext import DataStatic

SOURCES = (("OCI registry", "oci"), ("Helm repository", "repo"), ("local path or archive",
                                                                  "path"))


def chart_fields(prefix: str, key: str) -> list[Field]:
    return [
        Field(f"{prefix}-source", "Chart source", f"{key}.source", "select", SOURCES),
        Field(f"{prefix}-ref", "Location", f"{key}.ref", "text"),
        Field(f"{prefix}-name", "Chart name (repo)", f"{key}.chart.name", "optional"),
        Field(f"{prefix}-version", "Version", f"{key}.version", "optional"),
        Field(f"{prefix}-namespace", "Namespace", f"{key}.namespace"),
        Field(f"{prefix}-release", "Release", f"{key}.release"),
        Field(f"{prefix}-timeout", "Timeout", f"{key}.timeout"),
    ]


KATA = chart_fields("kd", "kataDeploy")
OPERATOR = [*chart_fields("op", "gpuOperator"),
            Field("op-naming", "GPU resource name", "gpuOperator.resourceNaming", "select",
                  (("nvidia.com/pgpu", "pgpu"), ("per model (P_GPU_ALIAS=\"\")", "per-model"))),
            Field("op-nvswitch", "NVSwitch resource", "gpuOperator.nvswitchNaming", "select",
                  (("nvidia.com/nvswitch", "nvswitch"), ("per model", "per-model"))),
            Field("op-cc", "Confidential computing", "gpuOperator.ccMode", "select",
                  (("leave the operator's default", "leave"), ("off (ccManager.defaultMode=off)",
                                                               "off")))]


def _with_source(data: dict[str, Any], key: str) -> dict[str, Any]:
    """Add the virtual `source`/`ref` keys the form shows for a chart's `chart:` block."""
    section = data.setdefault(key, {})
    chart = section.get("chart", {})
    kind = next((k for k in ("oci", "repo", "path") if chart.get(k)), "oci")
    section["source"] = kind
    section["ref"] = chart.get(kind, "")
    return data


def _chart_changes(changes: dict[str, Any], key: str) -> dict[str, Any]:
    """Turn the form's source/ref/name back into the answers' one-of `chart:` block."""
    kind = changes.pop(f"{key}.source")
    ref = changes.pop(f"{key}.ref")
    name = changes.pop(f"{key}.chart.name")
    chart: dict[str, Any] = {kind: ref}
    if kind == "repo":
        chart["name"] = name
    changes[f"{key}.chart"] = chart
    return changes


def parse_values(text: str, where: str) -> dict[str, Any]:
    """The values text as the answers file would read it (same loader, same rules); the
    problem says what the file's summary would, and the line, as the form shows no summary."""
    try:
        data, _ = parse_yaml(text, where, "values text") if text.strip() else ({}, {})
    except UserError as exc:
        what = exc.summary.removeprefix(f"{where}: ")
        raise UserError("extra values", [Problem(
            where, f"{what}{f' (line {p.line})' if p.line else ''}: {p.message}", p.fix)
            for p in exc.problems]) from None
    if not isinstance(data, dict):
        raise UserError("extra values", [Problem(where, "extra values must be a YAML mapping",
                                                 "write `key: value` lines")])
    return data


def dump_values(values: dict[str, Any]) -> str:
    return yaml.safe_dump(values, sort_keys=False) if values else ""


class ChartsScreen(WizardScreen):
    STEP = "charts"
    TITLE = "Charts - kata-deploy and the NVIDIA GPU Operator"
    HELP = f"""
Decides the two helm installs (answers kataDeploy.* and gpuOperator.*): where each chart
comes from, its version, namespace, release name and timeout - each a part of the plan's
`helm upgrade --install` command. kata-deploy installs from {DEFAULT_KATA_CHART} by default
(versions without a leading v, 3.29.0 or newer), the GPU Operator from
{DEFAULT_OPERATOR_REPO} (versions with the v, such as v26.3.1); air-gapped sites give a local
chart directory or archive instead. The version also picks the chart values the installer
writes for it.

GPU resource name: nvidia.com/pgpu for every GPU, or one name per GPU model (the
kataSandboxDevicePlugin's P_GPU_ALIAS / NVSWITCH_ALIAS values). Confidential computing: on
TDX/SEV-SNP hosts with CC-capable GPUs the operator's default switches GPUs into CC mode;
`off` sets ccManager.defaultMode=off and keeps plain Kata pods working. Extra values (YAML)
merge last into the chart's values; the review screen warns when they undo a setting Kata
needs (sandboxWorkloads enabled with mode kata, the qemu-nvidia-gpu shim).
"""

    def __init__(self) -> None:
        super().__init__()
        self.error: UserError | None = None

    def body(self) -> ComposeResult:
        with TabbedContent(id="chart-tabs"):
            with TabPane("kata-deploy", id="tab-kd"), VerticalScroll():
                yield Form(KATA, id="kd-form")
                yield DataStatic("Extra values (YAML, merged last)", classes="muted")
                yield TextArea("", id="kd-values", language=None, classes="values",
                               highlight_cursor_line=False)
            with TabPane("GPU Operator", id="tab-op"), VerticalScroll():
                yield Form(OPERATOR, id="op-form")
                yield DataStatic("Extra values (YAML, merged last)", classes="muted")
                yield TextArea("", id="op-values", language=None, classes="values",
                               highlight_cursor_line=False)
        yield DataStatic("", id="error", classes="error")

    def on_mount(self) -> None:
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        data = answers_data(self.wizard.state.answers)
        data = _with_source(_with_source(data, "kataDeploy"), "gpuOperator")
        self.query_one("#kd-form", Form).load(data)
        self.query_one("#op-form", Form).load(data)
        for area_id, key in (("#kd-values", "kataDeploy"), ("#op-values", "gpuOperator")):
            area = self.query_one(area_id, TextArea)
            text = dump_values(data[key].get("values") or {})
            if self.error is None and area.text != text:
                with area.prevent(TextArea.Changed):
                    area.text = text
        self._show_error()

    def _edit(self) -> None:
        kd_form = self.query_one("#kd-form", Form)
        op_form = self.query_one("#op-form", Form)
        try:
            changes = _chart_changes(kd_form.changes(), "kataDeploy")
            changes.update(_chart_changes(op_form.changes(), "gpuOperator"))
            changes["kataDeploy.values"] = parse_values(
                self.query_one("#kd-values", TextArea).text, "kataDeploy.values")
            changes["gpuOperator.values"] = parse_values(
                self.query_one("#op-values", TextArea).text, "gpuOperator.values")
            self.wizard.state.edit(changes)
            self.error = None
        except UserError as exc:
            self.error = exc
        problems = [p.where for p in self.error.problems] if self.error else []
        kd_form.mark(problems)
        op_form.mark(problems)
        self._show_error()
        if self.error is None:
            self.wizard.answers_changed("charts")

    def _show_error(self) -> None:
        err = self.query_one("#error", Static)
        err.display = self.error is not None
        if self.error is not None:
            err.update(problems_text(self.error))
        else:
            err.update(Text(""))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edit()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self._edit()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._edit()

    def can_leave(self) -> str | None:
        if self.error is not None:
            return "fix the chart settings first (the last valid ones are kept otherwise)"
        return None
