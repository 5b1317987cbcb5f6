"""Fix `kubelet-gate`: set `KubeletPodResourcesGet: true` in the kubelet config.

Needed below Kubernetes 1.34 (on by default from 1.34). The edit is textual so the rest of
the file keeps its bytes: the gate goes under an existing `featureGates:` map (never a
second `featureGates:` key), a `false` becomes `true`, and a file without featureGates gets
the map appended. The result is parsed back and must equal the original plus the gate,
or the fix refuses. Then `systemctl restart kubelet`; undo restores the file and restarts.
"""

from __future__ import annotations

import re

import yaml

from remote.fixes.base import FileView, FixBlocked, HostChange, ScriptBuilder
from remote.hostfacts import HostFacts
from remote.yamlload import safe_load

NAME = "kubelet-gate"
GATE = "KubeletPodResourcesGet"
_TOP = re.compile(r"^featureGates:[ \t]*(?P<rest>[^\n#]*?)[ \t]*(?:#.*)?\Z")
_CHILD = re.compile(r"^(?P<ind>[ \t]+)(?P<key>[A-Za-z0-9_\"']+)[ \t]*:[ \t]*(?P<val>[^#\n]*?)"
                    r"[ \t]*(?:#.*)?\Z")


def _version_ok(v: str | None) -> bool:
    m = re.match(r"v?(\d+)\.(\d+)", v or "", re.ASCII)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (1, 34)


def add_gate(text: str) -> str:
    """Return `text` with the gate set to true (pure; raises ValueError when unsure)."""
    lines = text.splitlines(keepends=True)
    top = [i for i, ln in enumerate(lines) if _TOP.match(ln.rstrip("\r\n"))]
    if len(top) > 1:
        raise ValueError("the file has more than one featureGates key")
    if not top:
        sep = "" if text.endswith("\n") or not text else "\n"
        return f"{text}{sep}featureGates:\n  {GATE}: true\n"
    i = top[0]
    eol = lines[i][len(lines[i].rstrip("\r\n")):] or "\n"
    rest = _TOP.match(lines[i].rstrip("\r\n")).group("rest")  # type: ignore[union-attr]
    if rest in ("{}", "{ }"):
        lines[i] = f"featureGates:{eol}  {GATE}: true{eol}"
        return "".join(lines)
    if rest.startswith("{") and rest.endswith("}"):
        inner = rest[1:-1].strip()
        items = [x.strip() for x in inner.split(",") if x.strip()]
        items = [x for x in items if x.split(":", 1)[0].strip().strip("\"'") != GATE]
        items.append(f"{GATE}: true")
        lines[i] = "featureGates: {" + ", ".join(items) + "}" + eol
        return "".join(lines)
    if rest:
        raise ValueError(f"featureGates has an inline value {rest!r}")
    j = i + 1
    indent = None
    last_child = i
    while j < len(lines):
        raw = lines[j].rstrip("\r\n")
        if raw.strip() == "" or raw.lstrip().startswith("#"):
            j += 1
            continue
        m = _CHILD.match(raw)
        if not m or (indent is not None and m.group("ind") != indent):
            if raw[:1] in (" ", "\t"):
                raise ValueError(f"unexpected line under featureGates: {raw!r}")
            break
        indent = m.group("ind")
        if m.group("key").strip("\"'") == GATE:
            lines[j] = f"{indent}{GATE}: true{lines[j][len(raw):]}"
            return "".join(lines)
        last_child = j
        j += 1
    indent = indent or "  "
    lines.insert(last_child + 1, f"{indent}{GATE}: true{eol}")
    return "".join(lines)


def plan(facts: HostFacts, host_root: str = "/", view: FileView | None = None, *,
         kubelet_version: str | None = None) -> HostChange | None:
    view = view or FileView(facts)
    path = facts.kubelet_config_path
    text = view.get(path)
    if text is None:
        return None
    try:
        data = safe_load(text) or {}
    except yaml.YAMLError as e:
        raise FixBlocked(NAME, f"/{path} is not valid YAML: {str(e).splitlines()[0]}",
                         "Repair the kubelet config first.") from None
    if not isinstance(data, dict):
        raise FixBlocked(NAME, f"/{path} is not a YAML mapping", "Repair the kubelet config.")
    gates = data.get("featureGates") or {}
    if not isinstance(gates, dict):
        raise FixBlocked(NAME, "featureGates is not a map", f"Edit /{path} by hand.")
    if gates.get(GATE) is True:
        return None
    if gates.get(GATE) is None and _version_ok(kubelet_version):
        return None
    try:
        new = add_gate(text)
        after = safe_load(new)
    except (ValueError, yaml.YAMLError) as e:
        raise FixBlocked(NAME, f"cannot add the gate safely: {e}",
                         f"Add `{GATE}: true` under featureGates in /{path} by hand.") from None
    want = dict(data)
    want["featureGates"] = {**gates, GATE: True}
    if after != want:
        raise FixBlocked(NAME, "the edited file would not parse to the original plus the gate",
                         f"Add `{GATE}: true` under featureGates in /{path} by hand.")
    b = ScriptBuilder(NAME, host_root)
    b.edit(path, text, new)
    view.set(path, new)
    b.run(["systemctl", "restart", "kubelet"], undo=["systemctl", "restart", "kubelet"])
    return b.change(facts.hostname, f"set {GATE}: true in the kubelet config and restart kubelet")
