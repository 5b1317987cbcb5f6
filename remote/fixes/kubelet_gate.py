"""Fix `kubelet-gate`: set `KubeletPodResourcesGet: true` where this node's kubelet reads it.

Needed below Kubernetes 1.34 (on by default from 1.34). Where the setting lives depends on
the distribution (remote/kubelet.py):

- kubeadm: /var/lib/kubelet/config.yaml. The edit is textual so the rest of the file keeps
  its bytes: the gate goes under an existing `featureGates:` map (never a second
  `featureGates:` key), a `false` becomes `true`, and a file without featureGates gets the
  map appended. The result is parsed back and must equal the original plus the gate, or the
  fix refuses. Then `systemctl restart kubelet`.
- MicroK8s: its kubelet flags file (args/kubelet): the gate joins an existing
  `--feature-gates=` line (or replaces its `=false`), else a new line is appended; the flags
  are parsed back and must equal the original plus the gate. Then kubelite restarts.
- k0s, k3s, RKE2: refused, naming what to edit by hand - k0s rewrites its kubelet config
  at every start, and k3s/RKE2 take kubelet flags from a file that also holds the cluster's
  join token. /var/lib/kubelet/config.yaml is never edited on these nodes, even when one
  is lying there: their kubelets do not read it.

Undo restores the file and restarts the kubelet again.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml

from remote.fixes.base import FileView, FixBlocked, HostChange, ScriptBuilder
from remote.hostfacts import HostFacts
from remote.kubelet import parse_args_file, parse_gate_flag, read_settings
from remote.versionparse import release_of
from remote.yamlload import safe_load

NAME = "kubelet-gate"
GATE = "KubeletPodResourcesGet"
_TOP = re.compile(r"^featureGates:[ \t]*(?P<rest>[^\n#]*?)[ \t]*(?:#.*)?\Z")
_CHILD = re.compile(r"^(?P<ind>[ \t]+)(?P<key>[A-Za-z0-9_\"']+)[ \t]*:[ \t]*(?P<val>[^#\n]*?)"
                    r"[ \t]*(?:#.*)?\Z")


def _version_ok(v: str | None) -> bool:
    """The kubelet has the gate on by default (1.34 and newer); an unknown version does not
    count, so the gate is set: an explicit `true` is harmless on any kubelet that has it."""
    found = release_of(v)
    return found is not None and found >= "1.34.0"


def _only_line(lines: list[str], match: Callable[[str], object], what: str) -> int | None:
    """The index of the one line that matches (None: no line does); two are refused, since
    the last one would win and an edit of the first would change nothing."""
    at = [i for i, ln in enumerate(lines) if match(ln)]
    if len(at) > 1:
        raise ValueError(f"the file has more than one {what}")
    return at[0] if at else None


def _appended(text: str, block: str) -> str:
    sep = "" if text.endswith("\n") or not text else "\n"
    return f"{text}{sep}{block}"


def add_gate(text: str) -> str:
    """Return `text` with the gate set to true (pure; raises ValueError when unsure)."""
    lines = text.splitlines(keepends=True)
    i = _only_line(lines, lambda ln: _TOP.match(ln.rstrip("\r\n")), "featureGates key")
    if i is None:
        return _appended(text, f"featureGates:\n  {GATE}: true\n")
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


def add_gate_flag(text: str) -> str:
    """Return a kubelet flags file with the gate on (pure; raises ValueError when unsure)."""
    lines = text.splitlines(keepends=True)
    i = _only_line(lines, lambda ln: ln.strip().startswith("--feature-gates"),
                   "--feature-gates line")
    if i is None:
        return _appended(text, f"--feature-gates={GATE}=true\n")
    raw = lines[i].rstrip("\r\n")
    eol = lines[i][len(raw):] or "\n"
    m = re.fullmatch(r"(?P<lead>\s*--feature-gates[= ])(?P<q>[\"']?)(?P<val>[^\"'\s]*)(?P=q)\s*",
                     raw)
    if not m:
        raise ValueError(f"cannot read {raw.strip()!r}")
    items = [x for x in m.group("val").split(",") if x and x.split("=", 1)[0] != GATE]
    items.append(f"{GATE}=true")
    lines[i] = f"{m.group('lead')}{m.group('q')}{','.join(items)}{m.group('q')}{eol}"
    return "".join(lines)


def _needed(gate: bool | None, kubelet_version: str | None) -> bool:
    return gate is not True and not (gate is None and _version_ok(kubelet_version))


def plan(facts: HostFacts, host_root: str = "/", view: FileView | None = None, *,
         kubelet_version: str | None = None, distribution: str | None = None
         ) -> HostChange | None:
    """`distribution`: the node's (k8s, k3s, rke2, k0s, microk8s); None goes by the host's
    own files."""
    view = view or FileView(facts)
    settings = read_settings(facts, distribution)
    lay = settings.layout
    if lay.no_fix:
        if settings.error or not _needed(settings.feature_gates().get(GATE), kubelet_version):
            return None
        raise FixBlocked(NAME, f"not done on {lay.distribution}: {lay.no_fix}",
                         "Set it by hand: " + lay.how_to_set(
                             f"featureGates: {{{GATE}: true}}", f"--feature-gates={GATE}=true"))
    if lay.args:
        return _plan_args(facts, host_root, view, kubelet_version, lay.args, lay.restart)
    return _plan_config(facts, host_root, view, kubelet_version)


def _plan_args(facts: HostFacts, host_root: str, view: FileView, kubelet_version: str | None,
               path: str, restart: tuple[str, ...]) -> HostChange | None:
    text = view.get(path)
    if text is None:
        return None
    flags = parse_args_file(text)
    gates = parse_gate_flag(flags.get("--feature-gates", ""))
    if not _needed(gates.get(GATE), kubelet_version):
        return None
    try:
        new = add_gate_flag(text)
    except ValueError as e:
        raise FixBlocked(NAME, f"cannot add the gate to /{path} safely: {e}",
                         f"Add `--feature-gates={GATE}=true` to /{path} by hand.") from None
    after = parse_args_file(new)
    others = {k: v for k, v in flags.items() if k != "--feature-gates"}
    if {k: v for k, v in after.items() if k != "--feature-gates"} != others or \
            parse_gate_flag(after.get("--feature-gates", "")) != {**gates, GATE: True}:
        raise FixBlocked(NAME, "the edited flags would not be the original plus the gate",
                         f"Add `--feature-gates={GATE}=true` to /{path} by hand.")
    b = ScriptBuilder(NAME, host_root)
    b.edit(path, text, new)
    view.set(path, new)
    b.run(list(restart), undo=list(restart))
    return b.change(facts.hostname, f"set --feature-gates={GATE}=true in the kubelet's flags "
                    "and restart kubelite")


def _plan_config(facts: HostFacts, host_root: str, view: FileView,
                 kubelet_version: str | None) -> HostChange | None:
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
    if not _needed(gates.get(GATE), kubelet_version):
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

