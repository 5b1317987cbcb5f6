"""Hypothesis strategies for the property suite: answers documents drawn from the real JSON
Schema and near-misses of them, YAML texts carrying the hazards YAML allows, kubeconfigs,
recorded-facts files and host trees.

Why from the schema: a key added to the answers model is generated without touching this
file, and a value is drawn from the type the schema declares - so a near-miss (a wrong type,
an extra key, a hostile string) is near a document the tool must accept, not random noise
that fails on the first line. Values lean towards the example file's, so most documents get
past validation to the plan.

Every server address a kubeconfig gets is on loopback: a closed port, or a stub the test
runs. Planted secrets are fixed strings the tests search for in everything a run wrote.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from tests.fixtures.hosts import make_trees
from tests.unit.test_answers import EXAMPLE, METACHARACTERS, _dump, _paths, yaml_docs, yaml_scalars

ROOT = Path(__file__).resolve().parents[1]
SCHEMA: dict[str, Any] = json.loads(
    (ROOT / "installer" / "answers" / "answers.schema.json").read_text())
FACTS_EXAMPLE: dict[str, Any] = yaml.safe_load(
    (ROOT / "installer" / "examples" / "facts.yaml").read_text())
FIXTURE_TREES = sorted(p.name for p in (ROOT / "tests" / "fixtures" / "hosts").iterdir()
                       if p.is_dir() and not p.name.startswith(("_", ".")))

# Planted secrets: each run is searched for them in its output and in every file it wrote.
TOKEN = "gki-planted-token-7f3a9c11"
SUDO_PASSWORD = "gki-planted-sudo-51be2d"
PASSPHRASE = "gki-planted-pass-c0de42"
INLINE = "gki-planted-inline-9d2e77"
SECRETS = (TOKEN, SUDO_PASSWORD, PASSPHRASE, INLINE)
SECRET_ENV = {"GKI_SUDO_PASSWORD": SUDO_PASSWORD, "GKI_KEY_PASSPHRASE": PASSPHRASE}

# A word the tests look for in output: wherever it is printed, the Rich markup around it is
# printed too (markup from a host or a file is data, never styling).
MARK = "gkimark"
MARKUP = f"[bold]{MARK}[/]"
# Strings a terminal or a renderer would act on: newlines, unicode digits, control and
# escape sequences (colour, window title, C1 CSI, bidi override), Rich markup.
HOSTILE = [*METACHARACTERS, "line\nbreak", "٣", "२२", "\uff11\uff10m", "\x1b[31mred\x1b[0m",
           "\x1b]0;t\x07", "\x9b2J", "\r", "tab\there", "\x7f", MARKUP, "[/]", "[red]",
           "a\u2028b"]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what no plain output may hold

def _at(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _strings(doc: Any) -> set[str]:
    return {v for v in (_at(doc, p) for p in _paths(doc)) if isinstance(v, str)}


WORDS = sorted(_strings(EXAMPLE) | {n["name"] for n in FACTS_EXAMPLE["nodes"]}
               | {"x", "ops", *SECRET_ENV})
_ABSENT = object()


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def from_schema(node: dict[str, Any], example: Any = _ABSENT) -> st.SearchStrategy[Any]:
    """Instances of a schema node, the example's value first (hypothesis shrinks towards the
    first branch, so a failure's minimal document is close to the example file)."""
    node = _resolve(node)
    drawn = _from_schema(node, example)
    return drawn if example is _ABSENT else st.one_of(st.just(example), drawn)


def _from_schema(node: dict[str, Any], example: Any) -> st.SearchStrategy[Any]:
    if "anyOf" in node:
        return st.one_of([from_schema(s, example) for s in node["anyOf"]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties")
        if not props:  # free-form (chart values)
            return st.dictionaries(st.sampled_from(["image", "enabled", "x", "node"]),
                                   yaml_scalars, max_size=3)
        sub = example if isinstance(example, dict) else {}
        required = set(node.get("required", ()))

        def prop(key: str) -> st.SearchStrategy[Any]:
            return from_schema(props[key], sub.get(key, _ABSENT))

        return st.fixed_dictionaries({k: prop(k) for k in props if k in required},
                                     optional={k: prop(k) for k in props if k not in required})
    if kind == "array":
        items = example if isinstance(example, list) and example else [_ABSENT]
        return st.lists(st.one_of([from_schema(node["items"], e) for e in items]), max_size=3)
    if kind == "string":
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True)
        return st.sampled_from(WORDS)
    if kind == "integer":
        low = node.get("minimum", node.get("exclusiveMinimum", -1) + 1)
        return st.integers(low, node.get("maximum", 2**16))
    if kind == "boolean":
        return st.booleans()
    return st.none()


def _mappings(doc: Any) -> list[dict[str, Any]]:
    return [m for m in (_at(doc, p) for p in _paths(doc)) if isinstance(m, dict)]


@st.composite
def answers_docs(draw) -> dict[str, Any]:
    """A schema instance, then up to three near-miss edits: a value of the wrong type, an
    unknown key, a hostile string, a secret written inline; and sometimes the references to
    the planted sudo password and key passphrase (their variables are set by the test)."""
    doc = copy.deepcopy(draw(from_schema(SCHEMA, EXAMPLE)))  # it may be the example itself
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["type", "key", "string", "inline"]))
        paths = [p for p in _paths(doc) if p]
        if edit == "type" and paths:
            path = draw(st.sampled_from(paths))
            _at(doc, path[:-1])[path[-1]] = draw(yaml_docs)
        elif edit == "string" and paths:
            path = draw(st.sampled_from(paths))
            _at(doc, path[:-1])[path[-1]] = draw(st.sampled_from(HOSTILE))
        else:
            target = draw(st.sampled_from(_mappings(doc)))
            if edit == "key":
                target[draw(st.sampled_from(["bogus", "Name", "ssh", MARKUP]))] = \
                    draw(yaml_scalars)
            else:
                target[draw(st.sampled_from(["password", "passphrase", "token"]))] = INLINE
    ssh = doc.get("ssh")
    if isinstance(ssh, dict) and draw(st.booleans()):
        ssh["passphraseEnv"] = "GKI_KEY_PASSPHRASE"
        if isinstance(ssh.get("sudo"), dict) or "sudo" not in ssh:
            ssh["sudo"] = {"mode": "password", "passwordEnv": "GKI_SUDO_PASSWORD"}
    return doc


# YAML fragments spliced into a document's text where a scalar was (flow style, so they fit
# anywhere): what YAML 1.1 turns into other types, tags, aliases, duplicate and complex keys.
def _bomb(depth: int) -> str:
    """Billion laughs, `depth` levels of ten: 10**depth leaves if aliases are expanded."""
    levels = ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, depth)]
    return "{" + ", ".join(levels) + "}"


FRAGMENTS = st.one_of(
    st.integers(6, 8).map(_bomb),
    st.sampled_from([
        "2001-12-14t21:59:43.10-05:00", "2002-12-14", "!!binary aGVsbG8=", "!!set {a, b}",
        "yes", "no", "on", "off", "~", ".inf", ".nan", "0o17", "0x1F", "1_000", "12:30:00",
        "{a: 1, a: 2}", "{[1, 2]: x}", "{? {a: b} : c}", "[&x a, *x, *x]", "{<<: {a: 1}}",
        "!!python/object/apply:os.system [id]", "!!str 3", "!!int '٣'", "!!float x",
        "'" + "x" * 200_000 + "'", "9" * 5000, "-" + "9" * 5000, "'\\x1b]0;t\\x07'",
        '"\\e[31mred"', '"\\x9b2J"', '"\\N\\L\\P"', '"[bold]' + MARK + '[/]"', "&a x", "*nope",
    ]))
SPLICE = "GKI-SPLICE-HERE"


@st.composite
def yaml_texts(draw, doc: Any) -> str:
    """The document as YAML text, now and then with a hazard spliced in for one value or a
    top-level key written twice."""
    doc = copy.deepcopy(doc)
    spliced = None
    if isinstance(doc, dict) and draw(st.booleans()):
        target = draw(st.sampled_from(_mappings(doc)))
        target[draw(st.sampled_from([*target, "x-extra"]))] = SPLICE
        spliced = draw(FRAGMENTS)
    text = _dump(doc)
    if spliced is not None:
        text = text.replace(SPLICE, spliced, 1)
    if isinstance(doc, dict) and doc and draw(st.integers(0, 5)) == 0:
        text += f"{draw(st.sampled_from(sorted(doc)))}: {{}}\n"
    return text


# Kubeconfigs: the shapes kubectl takes, every server on loopback.
BOOLEANS = [True, False, "true", "false", "no", "yes", "False", 0, 1, None]


@st.composite
def kubeconfigs(draw, servers: list[str]) -> dict[str, Any]:
    """A kubeconfig whose user holds the planted token (or another credential shape: an exec
    plugin whose binary is missing, a token file that is not there), with string booleans,
    a current context that may be missing or name no context, and wrong types here and
    there."""
    cluster: dict[str, Any] = {"server": draw(st.sampled_from(servers))}
    if draw(st.booleans()):
        cluster["insecure-skip-tls-verify"] = draw(st.sampled_from(BOOLEANS))
    if draw(st.integers(0, 3)) == 0:
        cluster["certificate-authority-data"] = draw(st.sampled_from(["bm90IGEgY2VydA==",
                                                                      "%%%", ""]))
    user = copy.deepcopy(draw(st.sampled_from([
        {"token": TOKEN},
        {"token": TOKEN, "as": "admin"},
        {"tokenFile": "/nonexistent/gki/token"},
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                  "command": "gki-no-such-credential-plugin", "args": ["--token", TOKEN]}},
        {"username": "admin", "password": TOKEN},
        {},
    ])))
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
    }
    current = draw(st.sampled_from(["x", "x", "x", None, "nope", MARKUP, "\x1b]0;t\x07"]))
    if current is not None:
        doc["current-context"] = current
    if draw(st.integers(0, 3)) == 0:
        path = draw(st.sampled_from([p for p in _paths(doc) if p]))
        _at(doc, path[:-1])[path[-1]] = draw(yaml_docs)
    return doc


# Recorded facts: the example's shape, edited.
@st.composite
def facts_docs(draw) -> dict[str, Any]:
    """The example facts with its host trees named by fixture (or GENERATED, which the test
    writes, or one that is missing), then up to three edits: an unknown key, a value of the
    wrong type, a key deleted, a hostile string."""
    doc = copy.deepcopy(FACTS_EXAMPLE)
    doc["hosts"] = {
        name: {"tree": draw(st.sampled_from([*FIXTURE_TREES, "GENERATED", "missing-tree"]))}
        for name in doc["hosts"]}
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = _at(doc, path[:-1])
        edit = draw(st.sampled_from(["key", "type", "delete", "string"]))
        if edit == "key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["bogus", "gpuPods", "tree", MARKUP]))] = \
                draw(yaml_scalars)
        elif edit == "delete":
            del parent[path[-1]]
        elif edit == "string":
            parent[path[-1]] = draw(st.sampled_from(HOSTILE))
        else:
            parent[path[-1]] = draw(yaml_docs)
    return doc


# Host trees: make_trees' declarations, drawn.
hostile_names = st.sampled_from(["gpu-1", MARKUP, "h\x1b]0;gkititle\x07", "\x1b[2J", "a\rb",
                                 "é", "\u202egkibidi"])
os_releases = st.builds(
    lambda name, ident, version: f'PRETTY_NAME="{name}"\nNAME="{name}"\nID={ident}\n'
                                 f'VERSION_ID="{version}"\n',
    st.one_of(hostile_names, st.text(max_size=20)), st.sampled_from(
        ["ubuntu", "debian", "rhel", "rocky", "\x1b[31m", "", MARKUP]),
    st.sampled_from(["22.04", "9.4", "12", "x", "\x07"]))
cmdlines = st.lists(st.sampled_from([
    "intel_iommu=on", "amd_iommu=on", "iommu=pt", "vfio-pci.ids=10de:2330",
    "modprobe.blacklist=nouveau", "quiet", "splash", "intel_iommu=\x1b[31m", MARKUP,
    "vfio-pci.ids=zz:zz,", "BOOT_IMAGE=/vmlinuz"]), max_size=5).map(" ".join)
flags = st.lists(st.sampled_from(["vmx", "svm", "hypervisor", "sev_snp", "tdx_guest", "fpu",
                                  MARKUP, "\x1b[1m"]), max_size=5).map(" ".join)
cpuinfos = st.builds(lambda vendor, name, f: make_trees.cpuinfo(vendor, 6, 143, name, f,
                                                               "2000.000", "1 KB", 1),
                     st.sampled_from(["GenuineIntel", "AuthenticAMD", "\x1b[31m"]),
                     hostile_names, flags)
devices = st.builds(
    make_trees.Dev,
    bdf=st.integers(1, 0xfe).map(lambda b: f"0000:{b:02x}:00.0"),
    vendor=st.sampled_from(["0x10de", "0x8086", "0x1a03", "0xzz", "", "\x1b[31m"]),
    device=st.sampled_from(["0x2330", "0x22a3", "0x2684", "0x20b5", "0x"]),
    cls=st.sampled_from(["0x030200", "0x030000", "0x068000", "0x040300", "0x060400",
                         "bogus"]),
    driver=st.sampled_from([None, "vfio-pci", "nvidia", "nouveau", "snd_hda_intel",
                            "nv\x1b]0;gkititle\x07", MARKUP]),
    group=st.one_of(st.none(), st.integers(0, 3)))
extra_files = st.dictionaries(
    st.sampled_from(["var/lib/kubelet/config.yaml", "etc/modprobe.d/gki.conf",
                     "etc/default/grub", "proc/sys/kernel/random/boot_id",
                     "sys/module/vfio_pci/parameters/ids"]),
    st.one_of(st.just(make_trees.kubelet_config()),
              st.builds(lambda f: f"featureGates: {f}\n", FRAGMENTS),
              st.sampled_from(HOSTILE),
              st.just(make_trees.grub_debian("quiet splash", MARKUP))),
    max_size=3)


@dataclass
class HostSpec:
    """A drawn host, written by make_trees (so its links agree with each other)."""

    host: make_trees.Host
    notes: list[str] = field(default_factory=list)

    def write(self, base: Path) -> Path:
        return make_trees.write(self.host, base)


host_specs = st.builds(
    lambda hostname, osr, cmdline, cpu, devs, modules, iommu, kvm, files: HostSpec(
        make_trees.Host("tree", hostname, osr, "6.8.0-gki", cmdline, cpu, devs, modules, iommu,
                        kvm, files)),
    hostile_names, os_releases, cmdlines, cpuinfos,
    st.lists(devices, max_size=3, unique_by=lambda d: d.bdf),
    st.one_of(st.none(), st.sampled_from([make_trees.M_KVM_INTEL + make_trees.M_VFIO,
                                          make_trees.M_NVIDIA, []])),
    st.booleans(), st.booleans(), extra_files)
