"""Answers files: every malformed document gives a short error naming the path, exit 2."""

from __future__ import annotations

import contextlib
import copy
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.answers.model import dump_answers, parse_answers
from installer.errors import EXIT_BAD_INPUT, UserError

EXAMPLES = Path(__file__).resolve().parents[2] / "installer" / "examples"
FULL = (EXAMPLES / "answers.yaml").read_text()
BASE = textwrap.dedent("""\
    apiVersion: gpu-kata-installer.io/v1alpha1
    kind: Answers
    kataDeploy: {version: 3.29.0}
    gpuOperator: {version: v26.3.1}
    """)


def bad(extra: str, base: str = BASE) -> UserError:
    with pytest.raises(UserError) as info:
        parse_answers(base + textwrap.dedent(extra), "a.yaml")
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value


def test_minimal_file_is_valid_and_round_trips():
    answers = parse_answers(BASE)
    assert parse_answers(dump_answers(answers)) == answers


def test_example_template_is_valid():
    from importlib.resources import files

    parse_answers(files("installer").joinpath("examples/answers.yaml").read_text())


MALFORMED = [
    # (name, extra yaml, path expected in the message, words expected)
    ("unknown top-level key", "bogus: 1\n", "bogus", "unknown key"),
    ("unknown nested key", "ssh: {usr: root}\n", "ssh.usr", "unknown key"),
    ("port is a string", "ssh: {port: '22'}\n", "ssh.port", "integer"),
    ("port out of range", "ssh: {port: 70000}\n", "ssh.port", "65535"),
    ("bad host key policy", "ssh: {hostKeyPolicy: yolo}\n", "ssh.hostKeyPolicy", "strict"),
    ("sudo password inline", "ssh: {sudo: {password: hunter22}}\n", "ssh.sudo.password",
     "secret"),
    ("key passphrase inline", "ssh: {passphrase: s3cretpass}\n", "ssh.passphrase", "secret"),
    ("kubeconfig token inline", "cluster: {token: abcdef}\n", "cluster.token", "secret"),
    ("user with shell metacharacters", "ssh: {user: 'root;reboot'}\n", "ssh.user",
     "not a user name"),
    ("user with a space", "ssh: {user: 'a b'}\n", "ssh.user", "not a user name"),
    ("jump host with backticks", "ssh: {jumpHost: '`id`@bastion'}\n", "ssh.jumpHost",
     "not a user name"),
    ("empty node name", "nodes: {items: [{name: '', choice: kata}]}\n", "nodes.items[0].name",
     "empty"),
    ("node name with $()", "nodes: {items: [{name: '$(reboot)', choice: kata}]}\n",
     "nodes.items[0].name", "not a Kubernetes node name"),
    ("node address with ;", "nodes: {items: [{name: a, choice: kata, address: 'h;id'}]}\n",
     "nodes.items[0].address", "neither an IP"),
    ("node user with |", "nodes: {items: [{name: a, choice: kata, user: 'x|y'}]}\n",
     "nodes.items[0].user", "not a user name"),
    ("duplicate node", "nodes: {items: [{name: a, choice: kata}, {name: a, choice: kata}]}\n",
     "nodes", "listed twice"),
    ("node given two choices",
     "nodes: {items: [{name: a, choice: kata}, {name: a, choice: traditional}]}\n",
     "nodes", "two choices"),
    ("bad node choice", "nodes: {items: [{name: a, choice: vm}]}\n", "nodes.items[0].choice",
     "kata"),
    ("bad default", "nodes: {default: leave}\n", "nodes.default", "kata"),
    ("fix policy typo", "hostFixes: {iommu: yes}\n", "hostFixes.iommu", "apply"),
    ("unquoted off read as false", None, "gpuOperator.ccMode",
     "unquoted word as false: quote it, e.g. 'off'"),
    ("items not a list", "nodes: {items: {a: kata}}\n", "nodes.items", "list"),
    ("wrong apiVersion", None, "apiVersion", "gpu-kata-installer.io/v1alpha1"),
    ("wrong kind", None, "kind", "Answers"),
    ("null kata-deploy version", None, "kataDeploy", "version` is required"),
    ("missing operator section", None, "gpuOperator", "missing"),
    ("kata-deploy version with v", None, "kataDeploy", "without a leading 'v'"),
    ("operator version without v", None, "gpuOperator", "with a leading 'v'"),
    ("kata-deploy too old", None, "kataDeploy", "too old"),
    ("two chart sources", None, "kataDeploy.chart", "exactly one"),
    ("repo without name", None, "gpuOperator.chart", "needs `name`"),
    ("kata manager enabled", None, "gpuOperator", "kataManager"),
    ("sample memory not a quantity", "sample: {memory: lots}\n", "sample.memory", "quantity"),
    ("check name with space", "checks: {ignore: ['iommu enabled']}\n", "checks.ignore[0]",
     "check name"),
    ("duplicate YAML key", "ssh: {user: a}\nssh: {user: b}\n", "ssh", "appears twice"),
    ("env var name with $", "ssh: {sudo: {passwordEnv: '$X'}}\n", "ssh.sudo.passwordEnv",
     "environment variable"),
]

HEADS = {
    "wrong apiVersion": BASE.replace("v1alpha1", "v9"),
    "wrong kind": BASE.replace("kind: Answers", "kind: Config"),
    "null kata-deploy version": BASE.replace("kataDeploy: {version: 3.29.0}",
                                             "kataDeploy: {version: null}"),
    "missing operator section": BASE.replace("gpuOperator: {version: v26.3.1}\n", ""),
    "kata-deploy version with v": BASE.replace("3.29.0", "v3.29.0"),
    "operator version without v": BASE.replace("v26.3.1", "26.3.1"),
    "kata-deploy too old": BASE.replace("3.29.0", "3.20.0"),
    "unquoted off read as false": BASE.replace("gpuOperator: {version: v26.3.1}",
                                               "gpuOperator: {version: v26.3.1, ccMode: off}"),
    "two chart sources": BASE.replace(
        "kataDeploy: {version: 3.29.0}",
        "kataDeploy: {version: 3.29.0, chart: {oci: 'oci://x/y', path: ./c}}"),
    "repo without name": BASE.replace(
        "gpuOperator: {version: v26.3.1}",
        "gpuOperator: {version: v26.3.1, chart: {repo: 'https://x'}}"),
    "kata manager enabled": BASE.replace(
        "gpuOperator: {version: v26.3.1}",
        "gpuOperator: {version: v26.3.1, values: {kataManager: {enabled: true}}}"),
}


@pytest.mark.parametrize(("name", "extra", "path", "words"), MALFORMED,
                         ids=[m[0] for m in MALFORMED])
def test_malformed_answers_name_the_path(name, extra, path, words):
    error = bad(extra or "", HEADS.get(name, BASE))
    rendered = str(error)
    assert f"  {path}" in rendered or rendered.splitlines()[1].lstrip().startswith(path)
    assert words in rendered
    assert "Traceback" not in rendered


def test_errors_carry_line_numbers():
    error = bad("ssh:\n  port: nope\n")
    problem = next(p for p in error.problems if p.where == "ssh.port")
    assert problem.line == 6


def test_not_yaml_and_not_a_mapping():
    assert "not valid YAML" in str(bad("ssh: [unclosed\n"))
    with pytest.raises(UserError, match="mapping"):
        parse_answers("- a\n- b\n")
    with pytest.raises(UserError, match="exactly one YAML document"):
        parse_answers("")


def test_a_secret_written_inline_is_reported_once():
    error = bad("ssh: {sudo: {password: hunter22}}\n")
    assert [p.where for p in error.problems] == ["ssh.sudo.password"]
    assert "hunter22" not in str(error)


# Fuzzing: 5,000 documents in all (1,000 generated from the schema's words, 2,000 arbitrary
# texts, 2,000 mutations of the complete example). Derandomized so CI always runs the same
# cases (about 30 s on a loaded 2-core machine); a failure names its document.
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
METACHARACTERS = ["$(reboot)", "`id`", "a;b", "a|b", "a&&b", "'", '"', "\\", "\n", "\x00",
                  "../../etc", "-oProxyCommand=x", " ", "é", "\u202e"]

yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                         st.text(max_size=12), st.sampled_from(METACHARACTERS))
yaml_docs = st.recursive(
    yaml_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(
            ["apiVersion", "kind", "ssh", "nodes", "items", "name", "choice", "kataDeploy",
             "gpuOperator", "version", "chart", "oci", "path", "values", "sudo", "port",
             "user", "password", "x"]), children, max_size=5)),
    max_leaves=20)


def _dump(doc) -> str:
    """YAML text of a generated document (libyaml's emitter: fuzzing time goes to parsing)."""
    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                     allow_unicode=True)


def _never_anything_but_user_error(text: str) -> None:
    """Valid answers round-trip through saving; invalid ones raise a UserError (exit 2) whose
    every problem names where it is - nothing else ever escapes."""
    try:
        answers = parse_answers(text)
    except UserError as exc:
        assert exc.exit_code == EXIT_BAD_INPUT
        assert exc.problems and all(p.where and p.message for p in exc.problems), str(exc)
        assert "Traceback" not in str(exc)
        return
    assert parse_answers(dump_answers(answers)) == answers


@settings(FUZZ, max_examples=1000)
@given(yaml_docs)
def test_generated_documents_never_raise_anything_but_user_error(doc):
    _never_anything_but_user_error(_dump(doc))


@settings(FUZZ, max_examples=2000)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_user_error(text):
    with contextlib.suppress(UserError):
        parse_answers(text)


def _example() -> dict:
    from importlib.resources import files

    return yaml.safe_load(files("installer").joinpath("examples/answers.yaml").read_text())


EXAMPLE = _example()


def _paths(node, prefix=()):
    """Every key path of a document (mappings by key, lists by index)."""
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


@st.composite
def mutated_examples(draw):
    """The complete example with one to four edits: a value replaced (scalars, metacharacters,
    lists, mappings), a key deleted, or an unknown or secret-named key added."""
    doc = copy.deepcopy(EXAMPLE)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        edit = draw(st.sampled_from(["replace", "delete", "add"]))
        if edit == "replace":
            parent[path[-1]] = draw(yaml_docs)
        elif edit == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            key = draw(st.sampled_from(["bogus", "token", "password", "passphraseEnv",
                                        "address", "user", "port", "Name"]))
            parent[key] = draw(yaml_scalars)
    return doc


@settings(FUZZ, max_examples=2000)
@given(mutated_examples())
def test_mutations_of_a_complete_file_never_raise_anything_but_user_error(doc):
    _never_anything_but_user_error(_dump(doc))


def test_an_explicit_null_that_is_not_the_default_survives_saving():
    """`ssh.configFile: null` turns ssh_config off; a saved file must not turn it back on."""
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "installer" / "examples"
    text = (examples / "answers.yaml").read_text().replace(
        "  knownHosts: ~/.ssh/known_hosts",
        "  knownHosts: ~/.ssh/known_hosts\n  configFile: null")
    answers = parse_answers(text)
    assert answers.ssh.config_file is None
    again = parse_answers(dump_answers(answers))
    assert again == answers and again.ssh.config_file is None
    assert "identityFile" in dump_answers(answers) and "passphraseEnv" not in dump_answers(answers)


# --- names that must exist, and patterns that match the whole string in ASCII ---

def test_an_unknown_check_to_ignore_fails_validation_listing_the_names():
    error = bad("checks: {ignore: [consumer-gpu, kvm]}\n")
    (problem,) = error.problems
    assert (problem.where, problem.line) == ("checks.ignore[1]", 5)
    assert problem.message == "not a check name"
    for name in ("cpu-virtualization", "iommu-enabled", "kubelet-podresources-gate",
                 "node-ready", "existing-nfd", "all"):
        assert name in problem.fix


def test_every_check_name_and_all_can_be_ignored_and_the_plan_builds():
    """Each name the validator accepts is one the checks know: the plan (which runs the host
    checks) raised ValueError for names it did not, 'node-ready' among them."""
    from installer.answers.checknames import IGNORABLE
    from installer.cluster.factsfile import load_recorded_facts
    from installer.engine.plan import build_plan

    facts = load_recorded_facts(EXAMPLES / "facts.yaml")
    for name in IGNORABLE:
        answers = parse_answers(FULL.replace("ignore: []", f"ignore: [{name}]"))
        assert build_plan(answers, facts).steps, name


@pytest.mark.parametrize(("extra", "path"), [
    ("kataDeploy: {version: 3.29.0, namespace: \"kata-system\\n\"}\n", "kataDeploy.namespace"),
    ("kataDeploy: {version: 3.29.0, release: \"kata-deploy\\n\"}\n", "kataDeploy.release"),
    ("kataDeploy: {version: \"3.29.0\\n\"}\n", "kataDeploy"),
    ("kataDeploy: {version: \"\u0663.29.0\"}\n", "kataDeploy"),  # an Arabic-Indic three
    ("gpuOperator: {version: v26.3.1, timeout: \"10m\\n\"}\n", "gpuOperator.timeout"),
    ("gpuOperator: {version: \"v26.3.\u0661\"}\n", "gpuOperator"),
    ("nodes: {items: [{name: \"gpu-1\\n\", choice: kata}]}\n", "nodes.items[0].name"),
    ("nodes: {items: [{name: a, choice: kata, address: \"h1\\n\"}]}\n",
     "nodes.items[0].address"),
    ("nodes: {items: [{name: a, choice: kata, address: \"fe80::1%$(reboot)\"}]}\n",
     "nodes.items[0].address"),
    ("nodes: {items: [{name: a, choice: kata, address: \"fe80::1%eth0\\n\"}]}\n",
     "nodes.items[0].address"),
    ("nodes: {items: [{name: a, choice: kata, user: \"root\\n\"}]}\n", "nodes.items[0].user"),
    ("ssh: {jumpHost: \"bastion:\u00b2\"}\n", "ssh.jumpHost"),  # '²'.isdigit() is True
    ("ssh: {jumpHost: \"bastion:\u0662\u0662\"}\n", "ssh.jumpHost"),
    ("ssh: {sudo: {passwordEnv: \"PW\\n\"}}\n", "ssh.sudo.passwordEnv"),
    ("sample: {memory: \"16Gi\\n\"}\n", "sample.memory"),
    ("sample: {memory: \"\u0661\u0666Gi\"}\n", "sample.memory"),
    ("gpuOperator: {version: v26.3.1, chart: {repo: \"https://x\\n\", name: g}}\n",
     "gpuOperator.chart"),
], ids=["namespace-newline", "release-newline", "version-newline", "version-arabic-digit",
        "timeout-newline", "operator-version-arabic-digit", "node-name-newline",
        "address-newline", "ipv6-scope-metacharacters", "ipv6-scope-newline", "user-newline",
        "jump-port-superscript", "jump-port-arabic-digits", "env-newline", "memory-newline",
        "memory-arabic-digits", "repo-url-newline"])
def test_a_final_newline_or_a_non_ascii_digit_is_refused(extra, path):
    head = BASE if extra.startswith(("nodes", "ssh", "sample")) else BASE.replace(
        "kataDeploy: {version: 3.29.0}\n" if extra.startswith("kataDeploy") else
        "gpuOperator: {version: v26.3.1}\n", "")
    error = bad(extra, head)
    assert [p.where for p in error.problems] == [path], str(error)
    assert "Traceback" not in str(error)


def test_an_ipv6_address_with_an_interface_scope_is_accepted():
    answers = parse_answers(BASE + "nodes: {items: [{name: a, choice: kata, "
                                   "address: 'fe80::1%eth0'}]}\n")
    assert answers.nodes.items[0].address == "fe80::1%eth0"


# --- chart values: JSON types, as helm reads them ---

def test_chart_values_hold_json_types_only():
    """An unquoted date stays the text written (what helm reads from the same YAML), so the
    plan shows what helm gets; types JSON and helm cannot hold are refused with the line."""
    answers = parse_answers(BASE.replace(
        "kataDeploy: {version: 3.29.0}",
        "kataDeploy:\n  version: 3.29.0\n  values: {since: 2024-01-01, at: 10:30, n: 1}"))
    assert answers.kata_deploy.values == {"since": "2024-01-01", "at": "10:30", "n": 1}
    for value, words in (("!!binary aGVsbG8=", "!!binary"), ("!!set {a, b}", "!!set"),
                         (".nan", "not a finite number"), ("!!python/tuple [1]", "!!python")):
        error = bad("", BASE.replace("kataDeploy: {version: 3.29.0}",
                                     f"kataDeploy:\n  version: 3.29.0\n  values:\n"
                                     f"    a: {value}"))
        (problem,) = error.problems
        assert words in problem.message and problem.line == 6 and problem.fix, value


def test_a_billion_laughs_answers_file_is_refused_at_once():
    import time

    from tests.unit.test_yamlload import billion_laughs

    started = time.monotonic()
    error = bad("x:\n" + "".join(f"  {line}\n" for line in billion_laughs().splitlines()))
    assert time.monotonic() - started < 2
    assert "aliases expand" in str(error) and error.problems[0].line


def test_a_recursive_alias_in_an_answers_file_is_refused():
    error = bad("gpuOperator: &op {version: v26.3.1, values: {again: *op}}\n",
                BASE.replace("gpuOperator: {version: v26.3.1}\n", ""))
    assert "recursive alias" in str(error)


def test_merge_keys_are_refused_with_the_fix():
    error = bad("x: &x {port: 22}\nssh: {<<: *x}\n")
    assert "`<<` merge keys" in str(error) and "ssh" in str(error)
