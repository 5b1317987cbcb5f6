"""The pydantic base of the answers and of the recorded facts, and its errors in our terms.

Both documents are read the same way: frozen models, unknown keys refused, no coercion ('22'
is not an int, 1 is not a bool; an int is a float), camelCase keys in files and snake_case
names in code. A document is validated by its keys only (`by_name=False`): `host_key_policy:`
in a file is an unknown key, as the JSON Schema says; code builds models by name.

pydantic's errors become `Error(loc, kind, message)`: `kind` is what the reader's fix depends
on - an "unknown" key, a "missing" key, a wrong "type", not one of the "choice"s, out of
"bounds", not matching a "pattern" (all of which the JSON Schema says too), or a "value" that
a rule in code or a model's invariant refused. The callers turn them into Problems with a
line and a fix.

Importing this module imports pydantic (expensive at startup, and the models' schemas are
built when their classes are; BENCHMARKS.md section 3): only the answers and facts modules
import it, and `--help`/`--version`
import neither (tests/unit/test_startup_imports.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from pydantic.json_schema import GenerateJsonSchema

Location = tuple[str | int, ...]

# pydantic's error type -> our kind ("*_type" errors are all "type").
_KINDS = {
    "extra_forbidden": "unknown", "missing": "missing", "literal_error": "choice",
    "less_than_equal": "bounds", "greater_than_equal": "bounds", "greater_than": "bounds",
    "less_than": "bounds", "string_pattern_mismatch": "pattern", "value_error": "value",
}


class Error(NamedTuple):
    """One problem in a document, where it is (keys as in the file, list indices as ints)."""

    loc: Location
    kind: str
    message: str


class Invalid(Exception):
    """A document did not validate; `errors` lists every problem found."""

    def __init__(self, errors: list[Error]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors


class StrictModel(BaseModel):
    """Frozen, strict, camelCase in files; built by field name in code."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True,
                              alias_generator=to_camel, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Validate a document (parsed YAML) by its file keys; raise Invalid listing every
        problem."""
        try:
            return cls.model_validate(data, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise Invalid([_error(e) for e in exc.errors(include_url=False)]) from None

    def to_data(self, *, omit_default_nulls: bool = False) -> dict[str, Any]:
        """The document back, keys as in files, values as given (no JSON conversion: a YAML
        date in chart values stays a date). `omit_default_nulls` leaves out a null whose
        default is null too (unset optional keys) but keeps one that overrides a default."""
        out: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if not (omit_default_nulls and value is None and field.default is None):
                out[field.alias or name] = _data(value, omit_default_nulls)
        return out


def _data(value: Any, omit_default_nulls: bool) -> Any:
    if isinstance(value, StrictModel):
        return value.to_data(omit_default_nulls=omit_default_nulls)
    if isinstance(value, list):
        return [_data(v, omit_default_nulls) for v in value]
    if isinstance(value, dict):
        return {k: _data(v, omit_default_nulls) for k, v in value.items()}
    return value


def _error(err: Any) -> Error:
    loc: Location = tuple(err["loc"])
    kind = "type" if err["type"].endswith("_type") else _KINDS.get(err["type"], "value")
    message = err["msg"].removeprefix("Value error, ")
    if kind == "unknown":
        message = f"unknown key '{loc[-1]}'"
    elif kind == "missing":
        message = f"required key '{loc[-1]}' is missing"
    elif kind == "choice" and isinstance(err["input"], bool):
        # YAML 1.1 reads yes/no/on/off as booleans; say so when a word choice got one.
        last = err["ctx"]["expected"].rpartition(" or ")[2]
        if last.startswith("'"):
            message += (f" (YAML read an unquoted word as {str(err['input']).lower()}: "
                        f"quote it, e.g. {last})")
    return Error(loc, kind, message)


class _Schema(GenerateJsonSchema):
    """Draft 2020-12 with the document's keys; no per-property titles (pydantic would make
    one of every field's name), class docstrings as descriptions."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: Any) -> dict[str, Any]:
        out = super().model_schema(schema)
        if "description" in out:  # one line, as a schema viewer shows it
            out["description"] = " ".join(out["description"].split())
        return out

    def generate(self, schema: Any, mode: Any = "validation") -> dict[str, Any]:
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}


def json_schema(model: type[StrictModel]) -> dict[str, Any]:
    """JSON Schema of a document: types, choices, bounds, patterns, required and unknown
    keys; rules in code and invariants are the validator's alone."""
    return model.model_json_schema(by_alias=True, schema_generator=_Schema)
