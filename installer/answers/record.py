"""Frozen records validated from plain data (parsed YAML), and the JSON Schema of them.

A record is a class of annotated fields, declared once: the field's snake_case name (its key
in files is the camelCase of it), its type, its default and its per-field rules. One generic
routine checks a document against it strictly - no coercion ('22' is not an int, 1 is not a
bool; an int is a float) - and reports every problem at once with where it is; the same
declarations give the JSON Schema and the document back.

Why not pydantic: its import and the schema building at class creation cost about 0.2 s at
every start of the CLI and the wizard, for the handful of types an answers file uses.

Types understood: str, int, float, bool, Any, Literal[...], X | None, list[X], dict[str, X],
other records, and Annotated[X, rule, ...] where a rule is a callable that raises ValueError
with the message to show (Bounds and Pattern are rules the schema can express too).

Not dataclasses: building a dataclass writes and compiles its methods, about 1 ms a class at
every start; a record's methods are the base class's, and its types are read when first used.
"""

from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from typing import Annotated, Any, Literal, NamedTuple, Self

Location = tuple[str | int, ...]

_TYPE_NAMES = {str: "a valid string", int: "a valid integer", float: "a valid number",
               bool: "a valid boolean", list: "a valid list", dict: "a valid dictionary"}
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}
_UNIONS = (types.UnionType, typing.Union)  # `X | None`, spelled either way
_REQUIRED = object()  # the default of a field that has none
_BAD = object()  # a value that failed; its errors are already recorded


class Error(NamedTuple):
    """One problem in a document. `kind` is what the reader's fix depends on: an "unknown"
    key, a "missing" key, a wrong "type", not one of the "choice"s, out of "bounds", not
    matching a "pattern" (all of which the JSON Schema says too), or a "value" that a rule in
    code or a record's invariant refused."""

    loc: Location
    kind: str
    message: str


class Invalid(Exception):
    """A document did not validate; `errors` lists every problem found, in field order."""

    def __init__(self, errors: list[Error]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


class Bounds:
    """Numeric limits, checked in pydantic's order (le, ge, gt) so a NaN names the upper one."""

    kind = "bounds"

    def __init__(self, *, ge: float | None = None, gt: float | None = None,
                 le: float | None = None) -> None:
        self.ge, self.gt, self.le = ge, gt, le

    def __call__(self, value: float) -> None:
        if self.le is not None and not value <= self.le:
            raise ValueError(f"Input should be less than or equal to {self.le}")
        if self.ge is not None and not value >= self.ge:
            raise ValueError(f"Input should be greater than or equal to {self.ge}")
        if self.gt is not None and not value > self.gt:
            raise ValueError(f"Input should be greater than {self.gt}")

    def schema(self) -> dict[str, Any]:
        names = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum"}
        return {names[k]: v for k, v in vars(self).items() if v is not None}


class Pattern:
    """A regular expression the whole string must match, as JSON Schema reads it: `\\d` is
    0-9 and `$` is the end of the text (Python's `$` would also allow a final newline). JSON
    Schema's `pattern` is unanchored, so the regex must be written `^...$`."""

    kind = "pattern"

    def __init__(self, regex: str) -> None:
        if not (regex.startswith("^") and regex.endswith("$") and not regex.endswith("\\$")):
            raise ValueError(f"pattern {regex!r} must be anchored: ^...$")
        self.regex = regex
        self._python = re.compile(regex[:-1] + r"\Z", re.ASCII)

    def __call__(self, value: str) -> None:
        if not self._python.search(value):
            raise ValueError(f"String should match pattern '{self.regex}'")

    def schema(self) -> dict[str, Any]:
        return {"pattern": self.regex}


class _Field(NamedTuple):
    """One field as the validator, the dump and the schema all read it."""

    name: str
    key: str
    type: Any
    default: Any  # _REQUIRED when the key must be given

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


def camel(name: str) -> str:
    """The key a field has in files: `host_key_policy` -> `hostKeyPolicy`."""
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class Record:
    """Base of the records: frozen, built with keywords, equal by value. Every annotation of a
    subclass is a field, in order after its bases' ones; a value given to it is its default
    (a list or dict default is copied for each record)."""

    _defaults: typing.ClassVar[dict[str, Any]] = {}
    _fields_cache: typing.ClassVar[tuple[_Field, ...] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._defaults = {**cls._defaults, **{name: cls.__dict__.get(name, _REQUIRED)
                                             for name in inspect.get_annotations(cls)}}
        cls._fields_cache = None

    def __init__(self, **values: Any) -> None:
        for name, default in self._defaults.items():
            if name in values:
                value = values.pop(name)
            elif default is _REQUIRED:
                raise TypeError(f"{type(self).__name__}() needs {name}=")
            else:
                value = copy.deepcopy(default) if isinstance(default, list | dict) else default
            object.__setattr__(self, name, value)
        if values:
            raise TypeError(f"{type(self).__name__}() has no field {', '.join(values)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: build a new one")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: build a new one")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._defaults)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._defaults)
        return f"{type(self).__name__}({values})"

    def invariant(self) -> None:
        """A rule across fields: raise ValueError to refuse the record. Runs only once every
        field is valid; the error is the record's."""

    @classmethod
    def fields(cls) -> tuple[_Field, ...]:
        """The field descriptions, types resolved on first use (annotations are strings until
        then, and a record may name one declared after it)."""
        if cls._fields_cache is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            cls._fields_cache = tuple(_Field(name, camel(name), hints[name], default)
                                      for name, default in cls._defaults.items())
        return cls._fields_cache

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Validate a document into a record; raise Invalid listing every problem."""
        errors: list[Error] = []
        record = _record(cls, data, (), errors)
        if errors:
            raise Invalid(errors)
        return record

    def to_data(self, *, omit_default_nulls: bool = False) -> dict[str, Any]:
        """The document back, keys as in files. `omit_default_nulls` leaves out a null whose
        default is null too (unset optional keys) but keeps one that overrides a default."""
        out: dict[str, Any] = {}
        for f in self.fields():
            value = getattr(self, f.name)
            if not (omit_default_nulls and value is None and f.default is None):
                out[f.key] = _data(value, omit_default_nulls)
        return out

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the document: types, choices, bounds, patterns,
        required and unknown keys; rules in code and invariants are the validator's alone."""
        defs: dict[str, Any] = {}
        top = _object_schema(cls, defs)
        defs.pop(cls.__name__)
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **top,
                **({"$defs": defs} if defs else {})}


def _data(value: Any, omit_default_nulls: bool) -> Any:
    if isinstance(value, Record):
        return value.to_data(omit_default_nulls=omit_default_nulls)
    if isinstance(value, list):
        return [_data(v, omit_default_nulls) for v in value]
    if isinstance(value, dict):
        return {k: _data(v, omit_default_nulls) for k, v in value.items()}
    return value


def _record(cls: type[Record], data: Any, loc: Location, errors: list[Error]) -> Any:
    if not isinstance(data, dict):
        errors.append(Error(loc, "type",
                            f"Input should be a valid dictionary or instance of {cls.__name__}"))
        return _BAD
    before = len(errors)
    values: dict[str, Any] = {}
    for f in cls.fields():
        if f.key in data:
            values[f.name] = _value(f.type, data[f.key], (*loc, f.key), errors)
        elif f.required:
            errors.append(Error((*loc, f.key), "missing", f"required key '{f.key}' is missing"))
    known = {f.key for f in cls.fields()}
    errors += [Error((*loc, key), "unknown", f"unknown key '{key}'")
               for key in data if key not in known]
    if len(errors) > before:
        return _BAD
    record = cls(**values)
    try:
        record.invariant()
    except ValueError as exc:
        errors.append(Error(loc, "value", str(exc)))
        return _BAD
    return record


def _value(tp: Any, value: Any, loc: Location, errors: list[Error]) -> Any:
    """Check one value against a type; return it (ints made floats where a float is due), or
    _BAD after recording why."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        result = _value(tp.__origin__, value, loc, errors)
        for rule in tp.__metadata__:
            if result is _BAD:
                break
            try:
                rule(result)
            except ValueError as exc:
                errors.append(Error(loc, getattr(rule, "kind", "value"), str(exc)))
                result = _BAD
        return result
    if origin in _UNIONS:  # X | None, the only union records use
        if value is None:
            return None
        (inner,) = (a for a in typing.get_args(tp) if a is not types.NoneType)
        return _value(inner, value, loc, errors)
    if origin is Literal:
        choices = typing.get_args(tp)
        if any(type(value) is type(c) and value == c for c in choices):
            return value
        names = [repr(c) for c in choices]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        why = (f" (YAML read an unquoted word as {str(value).lower()}: quote it, e.g. "
               f"{names[-1]})" if isinstance(value, bool) and isinstance(choices[-1], str)
               else "")
        errors.append(Error(loc, "choice", f"Input should be {listed}{why}"))
        return _BAD
    if tp is Any:
        return value
    if isinstance(tp, type) and issubclass(tp, Record):
        return _record(tp, value, loc, errors)
    return _container(origin, tp, value, loc, errors) if origin else _scalar(tp, value, loc,
                                                                                errors)


def _container(origin: type, tp: Any, value: Any, loc: Location, errors: list[Error]) -> Any:
    if not isinstance(value, origin):
        errors.append(Error(loc, "type", f"Input should be {_TYPE_NAMES[origin]}"))
        return _BAD
    if origin is list:
        (item,) = typing.get_args(tp)
        items = [_value(item, v, (*loc, i), errors) for i, v in enumerate(value)]
        return _BAD if _BAD in items else items
    key_type, item = typing.get_args(tp)
    out = {}
    for k, v in value.items():
        if _value(key_type, k, (*loc, k, "[key]"), errors) is not _BAD:
            out[k] = _value(item, v, (*loc, k), errors)
    return _BAD if len(out) < len(value) or _BAD in out.values() else out


def _scalar(tp: type, value: Any, loc: Location, errors: list[Error]) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            pass
    elif isinstance(value, tp) and (tp is bool or not isinstance(value, bool)):
        return value
    errors.append(Error(loc, "type", f"Input should be {_TYPE_NAMES[tp]}"))
    return _BAD


def _object_schema(cls: type[Record], defs: dict[str, Any]) -> dict[str, Any]:
    if cls.__name__ in defs:
        return defs[cls.__name__]
    defs[cls.__name__] = schema = {"title": cls.__name__, "type": "object"}
    if cls.__doc__:
        schema["description"] = " ".join(cls.__doc__.split())
    properties = {}
    for f in cls.fields():
        properties[f.key] = _schema(f.type, defs)
        if not f.required:
            properties[f.key]["default"] = _data(f.default, omit_default_nulls=False)
    schema["properties"] = properties
    required = [f.key for f in cls.fields() if f.required]
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        out = _schema(tp.__origin__, defs)
        for rule in tp.__metadata__:
            if hasattr(rule, "schema"):
                out.update(rule.schema())
        return out
    if origin in _UNIONS:
        (inner,) = (a for a in typing.get_args(tp) if a is not types.NoneType)
        return {"anyOf": [_schema(inner, defs), {"type": "null"}]}
    if origin is Literal:
        choices = list(typing.get_args(tp))
        out = {"const": choices[0]} if len(choices) == 1 else {"enum": choices}
        return {**out, "type": "string"} if all(isinstance(c, str) for c in choices) else out
    if tp is Any:
        return {}
    if isinstance(tp, type) and issubclass(tp, Record):
        _object_schema(tp, defs)
        return {"$ref": f"#/$defs/{tp.__name__}"}
    if origin is list:
        return {"type": "array", "items": _schema(typing.get_args(tp)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(typing.get_args(tp)[1], defs)
                or True}
    return {"type": _JSON_TYPES[tp]}
