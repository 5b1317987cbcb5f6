"""YAML loading that remembers where every value came from.

Operators fix answers files by line number, and PyYAML silently keeps the last of two
duplicate keys - which would hide a node given two choices. This loader rejects
duplicates and records the line of every mapping key and sequence item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from installer.errors import Problem, UserError
from remote.yamlload import SAFE_LOADER as _LOADER  # libyaml's: same nodes and marks, faster

Location = tuple[str | int, ...]


class _Builder:
    def __init__(self, source: str) -> None:
        # One loader only for its scalar constructors (ints, bools, timestamps, ...).
        self._scalars = yaml.SafeLoader(source)
        self.lines: dict[Location, int] = {}
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: Location) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build(key_node, (*path, "<key>"))
                if not isinstance(key, str | int | float | bool) and key is not None:
                    self.problems.append(
                        Problem(_dotted(path), "mapping keys must be plain strings",
                                line=key_node.start_mark.line + 1)
                    )
                    continue
                key = str(key) if not isinstance(key, str) else key
                if key in out:
                    self.problems.append(
                        Problem(
                            _dotted((*path, key)),
                            f"key '{key}' appears twice",
                            "keep one of them; YAML would silently use the last",
                            line=key_node.start_mark.line + 1,
                        )
                    )
                    continue
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalars.construct_object(node, deep=True)  # scalar


def _dotted(path: Location) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def dotted(path: Location) -> str:
    """Render a location as the operator would write it: `nodes.items[2].name`."""
    return _dotted(path)


def load_yaml(path: Path) -> tuple[Any, dict[Location, int]]:
    """Load one YAML document; return the data and a map of location -> line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found", [
            Problem(str(path), "no such file", "check the path, or create one with "
                    "`gpu-kata-installer answers init > answers.yaml`")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the file", [
            Problem(str(path), str(exc), "make it a readable UTF-8 text file")]) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, name: str) -> tuple[Any, dict[Location, int]]:
    """Parse YAML text; `name` is used in error messages."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{name}: not valid YAML", [
            Problem(name, str(problem), "fix the YAML syntax at that line", line=line)]) from None
    nodes = [n for n in nodes if n is not None]
    if len(nodes) != 1:
        raise UserError(f"{name}: expected exactly one YAML document, found {len(nodes)}", [
            Problem(name, "an answers file holds one document",
                    "remove extra `---` documents or fill in the empty file")])
    builder = _Builder(text)
    try:
        data = builder.build(nodes[0], ())
    except yaml.YAMLError as exc:
        raise UserError(f"{name}: not valid YAML", [Problem(name, str(exc))]) from None
    if builder.problems:
        raise UserError(f"{name}: invalid answers file", builder.problems)
    return data, builder.lines
