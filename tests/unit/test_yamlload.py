"""remote.yamlload parses with libyaml, yet a bad document's error names what is wrong; every
document is bounded (size, alias expansion, depth, no recursive alias) and of JSON types."""

from __future__ import annotations

import time

import pytest
import yaml

from remote.yamlload import MAX_BYTES, MAX_DEPTH, MAX_VALUES, YAMLRefused, read_text, safe_load


def test_a_document_reads_as_yaml_safe_load_reads_it():
    text = "featureGates:\n  KubeletPodResourcesGet: true\nport: 10250\nname: null\n"
    assert safe_load(text) == yaml.safe_load(text)


def test_the_error_names_the_offending_character_and_its_line():
    with pytest.raises(yaml.YAMLError) as caught:
        safe_load("apiVersion: v1\nclusters: [\n@oops\n")
    assert "found character '@' that cannot start any token" in str(caught.value)
    assert caught.value.problem_mark.line == 2


def test_unsafe_tags_are_refused():
    with pytest.raises(yaml.YAMLError):
        safe_load("!!python/object/apply:os.system ['true']")


# --- bounds: every reader shares them (answers, facts, kubeconfigs, host files) ---

def billion_laughs(levels: int = 9) -> str:
    """Nine levels of nine aliases: 2 KiB of text, 10^9 strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _refused(text: str) -> YAMLRefused:
    with pytest.raises(YAMLRefused) as caught:
        safe_load(text)
    return caught.value


def test_a_billion_laughs_is_refused_at_once_naming_the_line():
    started = time.monotonic()
    error = _refused(billion_laughs())
    assert time.monotonic() - started < 2
    assert f"more than {MAX_VALUES:,} values" in error.problem and "alias" in error.fix
    assert error.problem_mark.line == 5  # the first anchor whose expansion is over the limit


def test_aliases_within_the_bounds_read_as_before():
    text = "base: &b {image: x, tag: '1'}\none: *b\ntwo: *b\n" + billion_laughs(4)
    assert safe_load(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: [1, {c: *a}]}\n",
                                  "- &x [[*x]]\n"])
def test_a_recursive_alias_is_refused(text):
    error = _refused(text)
    assert "recursive alias" in error.problem


def test_deep_nesting_is_refused_without_a_recursion_error():
    assert "nested deeper than" in _refused("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).problem
    assert "nested deeper than" in _refused("a:\n" + "".join(
        "  " * i + "- \n" for i in range(1, MAX_DEPTH + 2)) + "  " * (MAX_DEPTH + 2) + "x\n"
    ).problem
    with pytest.raises(yaml.YAMLError):  # libyaml's own limit; the pure parser would recurse
        safe_load("[" * 5000 + "]" * 5000)
    assert safe_load("[" * 50 + "]" * 50) == yaml.safe_load("[" * 50 + "]" * 50)


def test_aliases_nesting_below_each_other_count_their_depth():
    half = MAX_DEPTH // 2 + 2
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    assert "nested deeper than" in _refused(text).problem


def test_a_document_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_BYTES + "\na: 1\n")
    error = _refused(read_text(path))
    assert "larger than 4 MiB" in error.problem
    started = time.monotonic()
    assert "larger than" in _refused(read_text("/dev/zero")).problem  # no end, bounded read
    assert time.monotonic() - started < 5


def test_many_values_are_refused_and_a_large_real_document_is_not():
    assert "holds more than" in _refused("[" + "1," * MAX_VALUES + "1]").problem
    contexts = [{"name": f"c{i}", "context": {"cluster": f"k{i}", "user": f"u{i}"}}
                for i in range(2000)]
    text = yaml.safe_dump({"apiVersion": "v1", "contexts": contexts})
    assert safe_load(text)["contexts"][1999]["name"] == "c1999"


# --- types: JSON's, as Kubernetes' YAML reads them ---

@pytest.mark.parametrize(("text", "value"), [
    ("a: 2024-01-01", "2024-01-01"),
    ("a: 2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    ("a: 2001-12-14 21:59:43.10 -5", "2001-12-14 21:59:43.10 -5"),
    ("a: 22:22", "22:22"),  # YAML 1.1 base 60: PyYAML read 1342, Go's YAML the text
    ("a: 1:30.5", "1:30.5"),
    ("a: 0x1F", 31),
    ("a: 1_000", 1000),
    ("a: 1.5e+3", 1500.0),
    ("a: !!str 2024-01-01", "2024-01-01"),
    ("a: !!timestamp 2024-01-01", "2024-01-01"),
    ("2024-01-01: a", "a"),
    ("1: a", "a"),
    ("base: &b {x: 1}\na: {<<: *b, y: 2}", {"x": 1, "y": 2}),
])
def test_values_keep_a_json_type(text, value):
    data = safe_load(text)
    got = data.get("a", next(iter(data.values()))) if isinstance(data, dict) else data
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(("text", "words"), [
    ("a: .inf", "not a finite number"),
    ("a: -.Inf", "not a finite number"),
    ("a: .nan", "not a finite number"),
    ("a: 1.0e+999", "not a finite number"),
    ("a: !!binary aGVsbG8=", "!!binary"),
    ("a: !!set {x, y}", "!!set"),
    ("a: !!omap [{x: 1}]", "!!omap"),
    ("a: !!pairs [{x: 1}]", "!!pairs"),
    ("a: !!python/object/apply:os.system ['true']", "!!python/object/apply:os.system"),
    ("a: !!python/name:os.system", "!!python/name:os.system"),
    ("a: !local x", "!local"),
    ("true: a", "mapping key must be a string"),
    ("null: a", "mapping key must be a string"),
    ("1.5: a", "mapping key must be a string"),
    ("? [x]\n: a", "mapping key must be a string"),
])
def test_values_of_no_json_type_are_refused_with_the_line_and_a_fix(text, words):
    error = _refused("ok: 1\n" + text + "\n")
    assert words in error.problem and error.fix
    assert error.problem_mark.line == 1


@pytest.mark.parametrize("text", ["a: !!float x", "a: !!int 0x1g", "a: !!bool maybe"])
def test_a_typed_scalar_whose_text_is_not_its_type_is_refused_not_raised(text):
    with pytest.raises(YAMLRefused, match="is not a !!"):
        safe_load(text)
