"""Write these answers into that file, keeping what the operator wrote.

The wizard saves over a file the operator may have written by hand: its comments, key order,
quoting and unchanged values are theirs. So an existing file is loaded with ruamel.yaml in
round-trip mode and only what changed is edited in place - a changed value replaced (in its
old quoting style), a key the answers no longer have removed (the comment lines below it kept
with the key before it), a new key inserted where the model orders it. A value equal to its
default is not added (the file stays short), but a key the file already had stays even at its
default: the operator wrote it. A new file holds only the non-default values, plus the chart
versions, pinned so the file replays the same charts after the installer's defaults move.

Whatever comes out must load back to the very same answers (checked on the text written); if
an edit cannot guarantee that (anchors shared by two keys, a file that is not an answers
mapping), the file is written fresh instead. Secrets never reach the file: the answers hold
references only (`passphraseEnv`), and a key of the old file the answers do not have - an
inline `password:` among them - is removed.

ruamel.yaml is imported here, when saving, never on `--help` or the wizard's first frame.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from installer.answers.model import API_VERSION, KIND, Answers, dump_answers, validate_answers
from installer.errors import UserError

Key = str | int
# Written even when equal to the default: the chart versions, so that a saved file installs
# the same charts after an upgrade of the installer changes its defaults.
PINNED: frozenset[tuple[str, ...]] = frozenset({
    ("apiVersion",), ("kind",), ("kataDeploy", "version"), ("gpuOperator", "version"),
})
_MINIMAL = {"apiVersion": API_VERSION, "kind": KIND, "kataDeploy": {}, "gpuOperator": {}}
_ABSENT = object()


def save_answers(answers: Answers, path: Path) -> Path:
    """Write `answers` to `path`, private (0600: it names hosts, users and key paths), as an
    edit of the file already there (see the module's docstring)."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        existing: str | None = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        existing = None
    text = answers_text(answers, existing)
    # Written beside it and renamed over it: a crash or a full disk mid-write leaves the
    # operator's file as it was, never half of it. A symlinked file is written where it points.
    target = path.resolve() if path.is_symlink() else path
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def answers_text(answers: Answers, existing: str | None = None) -> str:
    """The text to save: `existing` (a file's current text) edited to hold `answers`, or a
    new document of the non-default values when there is none or it cannot be edited."""
    new = yaml.safe_load(dump_answers(answers))
    if existing is not None and existing.strip():
        try:
            edited = _edited(existing, new, answers)
        except Exception:  # a file ruamel or the edit cannot take: the answers are
            edited = None  # still saved, whole, rather than not at all
        if edited is not None:
            return edited
    text = _fresh(new, answers)
    if not _loads_to(text, answers):  # the model's defaults did not round-trip: write it all
        return dump_answers(answers)
    return text


# --- ruamel.yaml, imported on the first save ----------------------------------------------

def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()  # round-trip mode: comments, order, quoting and flow style are kept
    y.preserve_quotes = True
    y.width = 4096  # never fold a long value onto two lines
    y.indent(mapping=2, sequence=4, offset=2)  # as installer/examples/answers.yaml
    return y


def _emit(y: Any, doc: Any) -> str:
    import io

    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def _edited(existing: str, new: dict[str, Any], answers: Answers) -> str | None:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    y = _yaml()
    y.indent(**_indentation(existing))  # the file's own, so unchanged lines stay as they are
    try:
        doc = y.load(existing)
    except (YAMLError, ValueError):
        return None
    if not isinstance(doc, CommentedMap):
        return None
    added: list[tuple[Key, ...]] = []
    _merge_map(doc, new, (), added)
    for path in _minimized(doc, new, answers, added):
        _settle(_at(doc, path[:-1]), path[-1], section=len(path) == 1)
    text = _emit(y, doc)
    return text if _loads_to(text, answers) else None


def _indentation(text: str) -> dict[str, int]:
    """The file's block indentation, from the first nested mapping and the first block
    sequence under a key (ruamel's own guess gives one number for both)."""
    found = {"mapping": 2, "sequence": 4, "offset": 2}
    seen: set[str] = set()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for parent, child in itertools.pairwise(lines):
        if not parent.rstrip().endswith(":") or parent.lstrip().startswith("- "):
            continue
        step = (len(child) - len(child.lstrip())) - (len(parent) - len(parent.lstrip()))
        if step < 0 or (step == 0 and not child.lstrip().startswith("- ")):
            continue
        if child.lstrip().startswith("- ") and "offset" not in seen:
            found["offset"], found["sequence"] = step, step + 2
            seen.add("offset")
        elif not child.lstrip().startswith("- ") and "mapping" not in seen and step > 0:
            found["mapping"] = step
            seen.add("mapping")
    return found


def _fresh(new: dict[str, Any], answers: Answers) -> str:
    doc = _commented(new)
    _minimized(doc, new, answers, [(k,) for k in new])
    doc.yaml_set_start_comment(
        "gpu-kata-installer answers file, saved by the wizard. Keys left out take their\n"
        "defaults (`gpu-kata-installer answers schema` lists them); secrets are never written.")
    keys = list(doc)
    for before, key in itertools.pairwise(keys):
        if isinstance(doc[key], dict):  # a blank line before each section
            _add_tail(doc, before, "\n")
    return _emit(_yaml(), doc)


def _loads_to(text: str, answers: Answers) -> bool:
    try:
        return validate_answers(yaml.safe_load(text)) == answers
    except (UserError, yaml.YAMLError):
        return False


# --- the edit: change what changed, leave the rest ----------------------------------------

def _merge_map(doc: Any, new: dict[str, Any], at: tuple[Key, ...],
               added: list[tuple[Key, ...]]) -> None:
    gone = [k for k in doc if k not in new]
    for key, value in new.items():
        if key not in doc:
            _insert(doc, key, _commented(value), list(new))
            added.append((*at, key))
        elif doc[key] != value or _kind(doc[key], value):
            doc[key] = _merged(doc[key], value, (*at, key), added)
    for key in gone:
        # Gone from the answers: cleared by the operator, or never valid (an inline secret).
        # A null stays: the answers leave out a null that is the default, so it is unchanged.
        if doc[key] is not None:
            _delete(doc, key)


def _kind(old: Any, new: Any) -> bool:
    """Equal values of different kinds (`true` and 1, 1 and 1.0) that still need rewriting:
    only a bool against a number - the model reads 1.0 and 1 alike where a float is due."""
    return isinstance(old, bool) != isinstance(new, bool)


def _merged(old: Any, new: Any, at: tuple[Key, ...], added: list[tuple[Key, ...]]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import ScalarString

    if isinstance(old, CommentedMap | CommentedSeq) and not old:
        # Written `{}` or `[]`: the new value goes on the same line too (`[consumer-gpu]`),
        # where a comment after it stays after it.
        value = _commented(new)
        if isinstance(value, CommentedMap | CommentedSeq):
            value.fa.set_flow_style()
        return value
    if isinstance(old, CommentedMap) and isinstance(new, dict):
        _merge_map(old, new, at, added)
        return old
    if isinstance(old, CommentedSeq) and isinstance(new, list):
        _merge_seq(old, new, at, added)
        return old
    if isinstance(old, ScalarString) and isinstance(new, str):
        return type(old)(new)  # the same quoting as before
    return _commented(new)


def _merge_seq(old: Any, new: list[Any], at: tuple[Key, ...],
               added: list[tuple[Key, ...]]) -> None:
    """Items matched by `name` when every item has one (nodes.items): a node's comments stay
    with that node when another is removed; else item by item, in order."""
    def names(items: list[Any]) -> list[Any] | None:
        got = [i.get("name") if isinstance(i, dict) else None for i in items]
        return got if None not in got and len(set(got)) == len(got) else None

    old_names, new_names = names(old), names(new)
    if old_names is not None and new_names is not None:
        for i in reversed(range(len(old))):
            if old_names[i] not in new_names:
                _delete(old, i)
        kept = [n for n in old_names if n in new_names]
        if kept == [n for n in new_names if n in kept]:  # survivors in the same order
            for i, item in enumerate(new):
                if item["name"] in kept:
                    j = kept.index(item["name"])
                    if old[j] != item:
                        old[j] = _merged(old[j], item, (*at, j), added)
                else:
                    old.insert(i, _commented(item))
                    _settle(old, i)
                    kept.insert(i, item["name"])
            return
    for i in reversed(range(len(new), len(old))):
        _delete(old, i)
    for i, item in enumerate(new):
        if i >= len(old):
            old.append(_commented(item))
            _settle(old, i)
        elif old[i] != item or _kind(old[i], item):
            old[i] = _merged(old[i], item, (*at, i), added)


def _commented(value: Any) -> Any:
    """Plain data as ruamel's own types, so comments can be attached to what is added."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _commented(v)
        return out
    if isinstance(value, list):
        return CommentedSeq(_commented(v) for v in value)
    return value


def _insert(doc: Any, key: str, value: Any, order: list[str]) -> None:
    """After the nearest key that comes before it in the model's order (else first)."""
    before = [k for k in order[:order.index(key)] if k in doc]
    doc.insert(list(doc).index(before[-1]) + 1 if before else 0, key, value)


def _settle(node: Any, key: Key, section: bool = False) -> None:
    """Blank lines that closed the entry before an added one: moved below it, so blocks stay
    apart (copied, for an added top-level section: then there is one on each side)."""
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    at = keys.index(key)
    if at == 0:
        return
    blanks = _take_tail(node, keys[at - 1], blanks_only=True)
    if blanks and section:
        _add_tail(node, keys[at - 1], blanks)
    _add_tail(node, key, blanks)


# --- comments: the lines below a key belong to it in ruamel; keep them on removal ----------

def _leaf(node: Any, key: Key) -> tuple[Any, Key]:
    """The last scalar at or under node[key]: where ruamel keeps the comment lines after it."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    value = node[key]
    if isinstance(value, CommentedMap) and value:
        return _leaf(value, list(value)[-1])
    if isinstance(value, CommentedSeq) and value:
        return _leaf(value, len(value) - 1)
    return node, key


def _slot(node: Any) -> int:
    from ruamel.yaml.comments import CommentedSeq

    return 0 if isinstance(node, CommentedSeq) else 2  # a sequence item's; a mapping value's


def _take_tail(node: Any, key: Key, blanks_only: bool = False) -> str:
    """Detach and return the lines after node[key]'s end-of-line comment (comment lines and
    blank lines up to the next key); with `blanks_only`, only the blank lines that end them."""
    holder, leaf = _leaf(node, key)
    entry = holder.ca.items.get(leaf)
    token = entry[_slot(holder)] if entry else None
    if token is None or "\n" not in token.value:
        return ""
    eol, _, rest = token.value.partition("\n")
    body = rest.rstrip("\n") if blanks_only else ""
    keep = f"{body}\n" if body else ""
    if eol or keep:
        token.value = f"{eol}\n{keep}"
    else:
        entry[_slot(holder)] = None
    return rest[len(keep):]


def _add_tail(node: Any, key: Key, lines: str) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    holder, leaf = _leaf(node, key)
    entry = holder.ca.items.setdefault(leaf, [None, None, None, None])
    slot = _slot(holder)
    if entry[slot] is None:
        entry[slot] = CommentToken("\n" + lines, CommentMark(0), None)
    else:  # what was below the entry, then what was below the next one
        value = entry[slot].value
        entry[slot].value = (value if value.endswith("\n") else f"{value}\n") + lines


def _delete(node: Any, key: Key) -> None:
    """Remove node[key], moving the comment lines below it to the entry before it (to the
    one after it when it is the first)."""
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    lines = _take_tail(node, key)
    at = keys.index(key)
    del node[key]
    if lines and len(keys) > 1:
        _add_tail(node, keys[at - 1] if at > 0 else (keys[1] if isinstance(node, dict) else 0),
                  lines)


# --- defaults: what is added only when it differs from the default -------------------------

def _minimized(doc: Any, new: dict[str, Any], answers: Answers,
               added: list[tuple[Key, ...]]) -> list[tuple[Key, ...]]:
    """Take out of `doc` each added key that holds its default - one by one, each kept out
    only if the document still loads to the same answers (what a default is, is the model's
    business: a chart source's `name` is needed beside a changed `repo`). Returns the added
    paths still in `doc`."""
    defaults = yaml.safe_load(dump_answers(validate_answers(_MINIMAL)))
    plain = _plain(doc)
    dropped: list[tuple[Key, ...]] = []
    for path in sorted(added, key=len):
        dropped += _defaults_in(plain, path, _at(new, path), _at(defaults, path), answers)
    for path in dropped:
        del _at(doc, path[:-1])[path[-1]]
    return [p for p in added if _at(doc, p) is not _ABSENT]


def _defaults_in(plain: dict[str, Any], path: tuple[Key, ...], value: Any, default: Any,
                 answers: Answers) -> list[tuple[Key, ...]]:
    """The paths at or under `path` that can be left out of `plain` (and are, there)."""
    parent = _at(plain, path[:-1])
    if not isinstance(parent, dict) or path[-1] not in parent:
        return []
    if value == default and not any(p[:len(path)] == path for p in PINNED):
        held = parent.pop(path[-1])
        if _plain_loads_to(plain, answers):
            return [path]
        parent[path[-1]] = held  # order does not matter to the check
    if isinstance(value, dict) and isinstance(default, dict):
        return [p for k in list(value)
                for p in _defaults_in(plain, (*path, k), value[k], default.get(k, _ABSENT),
                                      answers)]
    return []


def _at(data: Any, path: tuple[Key, ...]) -> Any:
    for key in path:
        found = (key in data if isinstance(data, dict) else
                 isinstance(data, list) and isinstance(key, int) and key < len(data))
        if not found:
            return _ABSENT
        data = data[key]
    return data


def _plain_loads_to(data: dict[str, Any], answers: Answers) -> bool:
    try:
        return validate_answers(data) == answers
    except UserError:
        return False


def _plain(value: Any) -> Any:
    """ruamel's scalar and collection types as the plain ones a YAML load gives."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value
