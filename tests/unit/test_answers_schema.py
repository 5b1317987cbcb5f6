"""The committed JSON Schema accepts exactly what the validator accepts, as far as a schema can
say it: types, choices, bounds, patterns, required and unknown keys. (Rules in code - a user
name's characters, one chart source, versions - are the validator's alone.)

No JSON Schema library is installed, so `conforms` below reads the draft 2020-12 keywords the
schema uses, by the specification - independently of how pydantic writes them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.answers.model import API_VERSION, Answers
from installer.answers.strictmodel import Invalid

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "installer/answers/answers.schema.json")
                    .read_text())
SCHEMA_KINDS = {"unknown", "missing", "type", "choice", "bounds", "pattern"}
JSON_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
              "null": (type(None),), "object": (dict,), "array": (list,)}


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    return type(a) is type(b) and a == b


def _is(value: Any, json_type: str) -> bool:
    # bool is an int in Python but not a number in JSON; 22.0 is an integer to JSON Schema but
    # YAML keeps it a float, and the answers refuse it: the documents here never hold one.
    return isinstance(value, JSON_TYPES[json_type]) and (json_type == "boolean"
                                                         or not isinstance(value, bool))


def _ecma_search(pattern: str, text: str) -> bool:
    """ECMA-262 regex semantics for the patterns used: `\\d` is 0-9, `$` ends the text."""
    return re.search(pattern.replace("$", r"\Z"), text, re.ASCII) is not None


def conforms(schema: dict[str, Any], value: Any) -> bool:
    if "$ref" in schema:
        return conforms(SCHEMA["$defs"][schema["$ref"].removeprefix("#/$defs/")], value)
    checks = [
        "anyOf" not in schema or any(conforms(s, value) for s in schema["anyOf"]),
        "const" not in schema or _same(value, schema["const"]),
        "enum" not in schema or any(_same(value, c) for c in schema["enum"]),
        "type" not in schema or _is(value, schema["type"]),
    ]
    if not all(checks):
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (value >= schema.get("minimum", value) and value <= schema.get("maximum", value)
                and ("exclusiveMinimum" not in schema or value > schema["exclusiveMinimum"]))
    if isinstance(value, str):
        return "pattern" not in schema or _ecma_search(schema["pattern"], value)
    if isinstance(value, list):
        return all(conforms(schema.get("items", {}), v) for v in value)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        return (all(k in value for k in schema.get("required", ()))
                and all(conforms(props[k], v) if k in props else
                        extra is True or (extra is not False and conforms(extra, v))
                        for k, v in value.items()))
    return True


def validator_accepts(doc: dict[str, Any]) -> bool:
    """Whether the validator finds nothing a schema could have said."""
    try:
        Answers.from_data(doc)
    except Invalid as exc:
        return not any(e.kind in SCHEMA_KINDS for e in exc.errors)
    return True


BASE = {"apiVersion": API_VERSION, "kind": "Answers", "kataDeploy": {"version": "3.29.0"},
        "gpuOperator": {"version": "v26.3.1"}}


@pytest.mark.parametrize(("edit", "accepted"), [
    ({}, True),
    ({"ssh": {"port": 22, "connectTimeout": 5, "commandTimeout": 0.5}}, True),
    ({"ssh": {"port": "22"}}, False),
    ({"ssh": {"port": 0}}, False),
    ({"ssh": {"port": 65536}}, False),
    ({"ssh": {"useAgent": 1}}, False),
    ({"ssh": {"concurrency": True}}, False),
    ({"ssh": {"connectTimeout": 0}}, False),
    ({"ssh": {"hostKeyPolicy": "yolo"}}, False),
    ({"ssh": {"configFile": None, "jumpHost": None}}, True),
    ({"ssh": {"knownHosts": None}}, False),
    ({"ssh": {"usr": "root"}}, False),
    ({"ssh": {"sudo": {"mode": "password", "password": "x"}}}, False),
    ({"kind": "Config"}, False),
    ({"nodes": {"items": [{"name": "a", "choice": "kata", "port": 2222}]}}, True),
    ({"nodes": {"items": [{"name": "a"}]}}, False),
    ({"nodes": {"items": {"a": "kata"}}}, False),
    ({"checks": {"ignore": ["kvm", 3]}}, False),
    ({"gpuOperator": {"version": "v26.3.1", "timeout": "10m\n"}}, False),
    ({"gpuOperator": {"version": "v26.3.1", "timeout": "\u0663m"}}, False),
    ({"gpuOperator": {"version": "v26.3.1", "values": {"a": {"b": [1]}}}}, True),
    ({"sample": {"timeoutSeconds": 29}}, False),
    ({"sample": None}, False),
])
def test_schema_and_validator_agree_on_these_documents(edit, accepted):
    doc = {**BASE, **edit}
    assert validator_accepts(doc) is accepted
    assert conforms(SCHEMA, doc) is accepted


ODD = st.sampled_from([None, True, 0, -1, 1.5, "", "x", "10m", [], {}, {"x": 1}, ["x"]])


def _near(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values around what a (sub)schema allows: its choices, its bounds and one past them,
    strings for its pattern, nested objects with keys left out - and, one time in five, an odd
    value of any type."""
    if "$ref" in schema:
        return st.deferred(lambda: _near(SCHEMA["$defs"][schema["$ref"].split("/")[-1]]))
    options = [_near(s) for s in schema.get("anyOf", ())]
    options += [st.sampled_from([*schema.get("enum", ()), schema.get("const", "x")])]
    kind = schema.get("type")
    if kind in ("integer", "number"):
        edges = [schema[k] + d for k in ("minimum", "maximum", "exclusiveMinimum")
                 if k in schema for d in (-1, 0, 1)]
        options.append(st.sampled_from(edges or [0, 1]).map(
            lambda v, k=kind: float(v) + 0.5 if k == "number" else int(v)))
    elif kind == "string":
        options.append(st.sampled_from(["1s", "10m", "10m\n", "m", "root", "v1.2.3"]))
    elif kind == "array":
        options.append(st.lists(_near(schema.get("items", {})), max_size=2))
    elif kind == "object" and "properties" in schema:
        props = schema["properties"]
        options.append(st.fixed_dictionaries({}, optional={k: _near(v) for k, v in props.items()}))
    return st.integers(0, 4).flatmap(lambda i: st.one_of(options) if i else ODD)


@settings(deadline=None, derandomize=True, database=None, max_examples=400,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={**{k: _near(v) for k, v in SCHEMA["properties"].items()},
                                           "bogus": ODD}).map(lambda edit: {**BASE, **edit}))
def test_schema_and_validator_agree_on_generated_documents(doc):
    assert conforms(SCHEMA, doc) is validator_accepts(doc), doc
