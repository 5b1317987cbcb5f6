"""Every YAML document this tool reads is parsed here: bounded, JSON-typed, through libyaml.

Why bounded: YAML aliases share one node, so a few hundred bytes of nested aliases (the
"billion laughs") compose instantly and expand to 10^9 values in whatever walks them next
(the answers' line map, the validator, the plan's JSON), and an alias inside its own anchor
is a cycle that recursion never leaves. A document is therefore refused, as a YAMLError its
reader already reports, when it is over MAX_BYTES, expands (aliases counted each time they
are used) to over MAX_VALUES values, nests deeper than MAX_DEPTH, or holds a recursive alias.
The check walks each distinct node once, so it takes as long as the text, not its expansion.

Why JSON types: what is read ends up as JSON or as Go's YAML (chart values go to helm; the
plan, events and facts are JSON), and a Python-only type would reach the plan as something
other than what helm gets. The rule, by Kubernetes' own YAML reading (sigs.k8s.io/yaml):
- an unquoted timestamp (`2024-01-01`) and a YAML 1.1 base-60 number (`1:30`) stay the
  text as written;
- `.inf`, `.nan`, explicit tags that are no JSON type (`!!binary`, `!!set`, `!!omap`,
  `!!pairs`, `!!python/...`, `!local`) and mapping keys that are not strings or integers
  (`true:`, `null:`, `1.5:`, a list) are refused, naming the line and how to write it.

Why libyaml: PyYAML's pure-Python parser is slow for a kubelet config, and every plan
parses each Kata host's kubelet config twice (its check and its fix); libyaml's parser
builds the same nodes in C.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from os import PathLike
from typing import Any

import yaml

SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_BYTES = 4 * 1024 * 1024
MAX_VALUES = 100_000
MAX_DEPTH = 100
# Re-parsing a rejected document with the pure-Python parser, for its clearer message, is
# done only up to this size: on a whole 4 MiB file it would take tens of seconds.
_REPARSE_BYTES = 256 * 1024

_CORE = "tag:yaml.org,2002:"
MERGE_TAG = f"{_CORE}merge"  # `<<: *base`, which Go's YAML reads too
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null")} | {MERGE_TAG}
_KEY_TAGS = {f"{_CORE}str", f"{_CORE}int", MERGE_TAG}
_TIMESTAMP = f"{_CORE}timestamp"
_FLOAT = f"{_CORE}float"
_INT = f"{_CORE}int"
_FLOATS = yaml.constructor.SafeConstructor()
# Scalar tags whose text must parse as their type (constructor method per tag).
_TYPED = {_INT: "construct_yaml_int", _FLOAT: "construct_yaml_float",
          f"{_CORE}bool": "construct_yaml_bool"}


class YAMLRefused(yaml.MarkedYAMLError):
    """A document this tool will not read; `fix` says how to write it instead."""

    def __init__(self, problem: str, mark: yaml.Mark | None, fix: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)
        self.fix = fix


def read_text(path: str | PathLike[str]) -> str:
    """A file's UTF-8 text, reading at most MAX_BYTES + 1 bytes (so /dev/zero or a huge file
    cannot fill the memory); a longer file's text is over the limit, and parsing refuses it.
    Raises OSError and UnicodeDecodeError as Path.read_text does."""
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        return raw.decode("utf-8", errors="surrogateescape")  # its size is what is refused
    return raw.decode("utf-8")


def compose_all(text: str) -> list[yaml.Node]:
    """The documents' nodes, checked and with the conversions above applied (raises
    yaml.YAMLError, YAMLRefused for a document refused by the rules above)."""
    if len(text) > MAX_BYTES // 4 and len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise YAMLRefused(f"the document is larger than {MAX_BYTES >> 20} MiB", None,
                          f"no file this tool reads needs {MAX_BYTES >> 20} MiB: check that "
                          "this is the right file")
    try:
        nodes = _compose(text, SAFE_LOADER)
    except yaml.YAMLError:
        if SAFE_LOADER is yaml.SafeLoader or len(text) > _REPARSE_BYTES:
            raise
        # libyaml's message leaves out the offending character ("found character '@' that
        # cannot start any token"), and an operator fixing the file needs it: the pure-Python
        # parser's error is raised instead (it recurses, so a deep document keeps libyaml's).
        with contextlib.suppress(RecursionError):
            _compose(text, yaml.SafeLoader)
        raise
    budget = _Budget()
    for node in nodes:
        budget.check(node)
    return nodes


def safe_load(text: str) -> Any:
    """yaml.safe_load of one document under the rules above (raises yaml.YAMLError)."""
    nodes = compose_all(text)
    if len(nodes) > 1:
        raise yaml.composer.ComposerError(
            "expected a single document in the stream", nodes[0].start_mark,
            "but found another document", nodes[1].start_mark)
    if not nodes:
        return None
    return SAFE_LOADER("").construct_document(nodes[0])


def safe_load_all(text: str) -> list[Any]:
    """Every document of a stream (helm's rendered manifests), under the rules above."""
    return [SAFE_LOADER("").construct_document(node) for node in compose_all(text)]


def _compose(text: str, loader_class: type) -> list[yaml.Node]:
    loader = loader_class(text)
    try:
        nodes = []
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                nodes.append(node)
        return nodes
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


class _Budget:
    """Walks the node graph once per distinct node: expanded size, depth, cycles, types."""

    def __init__(self) -> None:
        self.values = 0  # expanded values of the documents checked so far
        self.nodes = 0  # distinct nodes seen: the values as written
        self.size: dict[int, int] = {}  # id(node) -> its expanded size
        self.height: dict[int, int] = {}  # id(node) -> its expanded depth

    def check(self, root: yaml.Node) -> None:
        self._first(root)
        path = {id(root)}
        stack = [(root, _children(root))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.discard(id(node))
                self._done(node)
                continue
            key = id(child)
            if key not in self.size:
                if key in path:
                    raise YAMLRefused("an alias refers to the anchor it is inside (a recursive "
                                      "alias)", child.start_mark,
                                      "replace the alias with the value it should have")
                self._first(child)
                if isinstance(child, yaml.ScalarNode):  # most nodes: done at once
                    self.size[key] = self.height[key] = 1
                else:
                    path.add(key)
                    stack.append((child, _children(child)))
            if len(stack) + self.height.get(key, 0) > MAX_DEPTH:
                raise YAMLRefused(f"values are nested deeper than {MAX_DEPTH} levels",
                                  child.start_mark, "flatten the document")
        self.values += self.size[id(root)]
        if self.values > MAX_VALUES:
            raise YAMLRefused(f"the documents hold more than {MAX_VALUES:,} values",
                              root.start_mark, "check that this is the right file")

    def _first(self, node: yaml.Node) -> None:
        self.nodes += 1
        if self.nodes > MAX_VALUES:
            raise YAMLRefused(f"the document holds more than {MAX_VALUES:,} values",
                              node.start_mark, "check that this is the right file")
        _check_node(node)

    def _done(self, node: yaml.Node) -> None:
        kids = list(_children(node))
        size = 1 + sum(self.size[id(k)] for k in kids)
        if size > MAX_VALUES:
            raise YAMLRefused(f"aliases expand this to more than {MAX_VALUES:,} values",
                              node.start_mark, "write the values out, or use fewer aliases "
                              "(a YAML alias bomb?)")
        self.size[id(node)] = size
        self.height[id(node)] = 1 + max((self.height[id(k)] for k in kids), default=0)


def _check_node(node: yaml.Node) -> None:
    """Refuse a node that is no JSON type; turn timestamps and base-60 numbers into text."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _TIMESTAMP or (node.tag in (_INT, _FLOAT) and ":" in node.value):
            node.tag = f"{_CORE}str"
        elif node.tag in _TYPED:
            # An explicit `!!float x` or `!!int x` reaches here as well as plain numbers.
            try:
                value = getattr(_FLOATS, _TYPED[node.tag])(node)
            except (KeyError, ValueError, TypeError, yaml.constructor.ConstructorError):
                raise YAMLRefused(f"'{node.value}' is not a {node.tag.replace(_CORE, '!!')}",
                                  node.start_mark, f"quote it if it is text ('{node.value}'), "
                                  "or drop the tag") from None
            if node.tag == _FLOAT and not math.isfinite(value):
                raise YAMLRefused(f"'{node.value}' is not a finite number", node.start_mark,
                                  f"quote it if it is text ('{node.value}'), or give a number")
        elif node.tag not in _SCALAR_TAGS:
            _refuse_tag(node)
        return
    want = f"{_CORE}map" if isinstance(node, yaml.MappingNode) else f"{_CORE}seq"
    if node.tag != want:
        _refuse_tag(node)
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and (key.tag in _KEY_TAGS
                                                     or key.tag == _TIMESTAMP):
                continue
            raise YAMLRefused("a mapping key must be a string", key.start_mark,
                              "quote the key, e.g. 'true': or '1.5':" if isinstance(
                                  key, yaml.ScalarNode) else "use a plain string as the key")


def _refuse_tag(node: yaml.Node) -> None:
    tag = node.tag.replace(_CORE, "!!")
    raise YAMLRefused(f"{tag} values are not read (only strings, numbers, booleans, null, "
                      "lists and mappings)", node.start_mark,
                      "write the value as a plain string, list or mapping without the tag")
