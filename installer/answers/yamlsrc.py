"""YAML loading that remembers where every value came from.

Operators fix answers files by line number, and PyYAML silently keeps the last of two
duplicate keys - which would hide a node given two choices. This loader rejects
duplicates and records the line of every mapping key and sequence item. The text is read
and composed by remote.yamlload, whose bounds and JSON-type rules every document shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from installer.errors import Problem, UserError
from remote.yamlload import MERGE_TAG, YAMLRefused, compose_all, read_text

Location = tuple[str | int, ...]


class _Builder:
    def __init__(self, source: str) -> None:
        # One loader only for its scalar constructors (ints, floats, bools, null).
        self._scalars = yaml.SafeLoader(source)
        self.lines: dict[Location, int] = {}
        self.problems: list[Problem] = []

    def build(self, node: yaml.Node, path: Location) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == MERGE_TAG:
                    self.problems.append(Problem(
                        _dotted(path), "`<<` merge keys are not read here",
                        "write the merged keys out", line=key_node.start_mark.line + 1))
                    continue
                key = str(self.build(key_node, (*path, "<key>")))  # a string or an integer
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


def line_for(loc: Location, lines: dict[Location, int]) -> int | None:
    """The line of `loc`, or of the nearest enclosing location that has one."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def load_yaml(path: Path, kind: str = "answers file") -> tuple[Any, dict[Location, int]]:
    """Load one YAML document; return the data and a map of location -> line. `kind` names
    the file in messages."""
    try:
        text = read_text(path)
    except FileNotFoundError:
        create = (", or create one with `gpu-kata-installer answers init > answers.yaml`"
                  if kind == "answers file" else "")
        raise UserError(f"{path}: file not found", [
            Problem(str(path), "no such file", f"check the path{create}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the file", [
            Problem(str(path), str(exc), "make it a readable UTF-8 text file")]) from None
    return parse_yaml(text, str(path), kind)


def parse_yaml(text: str, name: str, kind: str = "answers file"
               ) -> tuple[Any, dict[Location, int]]:
    """Parse YAML text; `name` and `kind` are used in error messages."""
    try:
        nodes = compose_all(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, YAMLRefused):
            summary, fix = "not read", exc.fix
        else:
            summary, fix = "not valid YAML", "fix the YAML syntax at that line"
        raise UserError(f"{name}: {summary}", [
            Problem(name, str(problem), fix, line=line)]) from None
    if len(nodes) != 1:
        raise UserError(f"{name}: expected exactly one YAML document, found {len(nodes)}", [
            Problem(name, f"the {kind} must hold one document",
                    "remove extra `---` documents or fill in the empty file")])
    builder = _Builder(text)
    try:
        data = builder.build(nodes[0], ())
    except yaml.YAMLError as exc:
        raise UserError(f"{name}: not valid YAML", [Problem(name, str(exc))]) from None
    if builder.problems:
        raise UserError(f"{name}: invalid {kind}", builder.problems)
    return data, builder.lines
