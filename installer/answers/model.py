"""The answers file: every choice the wizard makes, as one versioned, validated document.

The same model is filled by the wizard and read by headless runs, so a saved wizard
session replays to the same plan. Secrets are only ever referenced (an environment
variable or an interactive prompt), never stored: the validator refuses inline ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Self

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from installer.answers.checknames import IGNORABLE
from installer.answers.strictmodel import Error, Invalid, StrictModel
from installer.answers.strictmodel import json_schema as _json_schema
from installer.answers.versions import (
    DEFAULT_GPU_OPERATOR,
    DEFAULT_KATA_DEPLOY,
    MIN_KATA_DEPLOY,
    fixed_in,
    parse,
)
from installer.answers.yamlsrc import Location, dotted, line_for, load_yaml, parse_yaml
from installer.errors import Problem, UserError
from remote.targets import ip_literal


class _DiscoveredNode(Protocol):
    """What `NodeChoices.kata_nodes` reads of a discovered node (installer.cluster.facts.NodeFacts):
    a protocol, so the answers need not import the facts that import them."""

    @property
    def name(self) -> str: ...
    @property
    def gpu_present(self) -> bool: ...
    @property
    def workload(self) -> str | None: ...


class _DiscoveredCluster(Protocol):
    @property
    def nodes(self) -> Sequence[_DiscoveredNode]: ...

API_VERSION = "gpu-kata-installer.io/v1alpha1"
KIND = "Answers"

DEFAULT_KATA_CHART = "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy"
DEFAULT_OPERATOR_REPO = "https://helm.ngc.nvidia.com/nvidia"
DEFAULT_SAMPLE_IMAGE = "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04"
# Pod mode's host-access pod: a POSIX shell and chroot are all it needs (the probe and the
# fixes run in the host's own shell, chrooted into the host root).
DEFAULT_POD_IMAGE = "docker.io/library/busybox:1.37"
HOST_ACCESS_NAMESPACE = "gpu-kata-installer"
AccessMode = Literal["ssh", "pod"]
# The charts' default namespaces: what the cluster views read when no answers name others.
KATA_NAMESPACE = "kata-system"
OPERATOR_NAMESPACE = "gpu-operator"
# The sample pod the install runs and the uninstall removes (domain.md section 4).
SAMPLE_POD = "cuda-vectoradd-kata"

# Each is matched against the whole string (fullmatch: `$` would accept a final newline) and
# is ASCII (`\d` would accept any Unicode digit), as Kubernetes and SSH read these names.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NODE_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*", re.ASCII)
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_HOST_LABEL}(\.{_HOST_LABEL})*", re.ASCII)
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}", re.ASCII)
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_K8S_NAME = re.compile(_DNS_LABEL, re.ASCII)
_QUANTITY = re.compile(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?", re.ASCII)
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_HTTP_URL = re.compile(r"https?://\S+", re.ASCII)
# A secret's key even with a final newline (quoted keys can have one): refusing is the safe side.
_SECRET_KEY = re.compile(r"(password|passphrase|secret|token)\n?\Z", re.IGNORECASE)


def _node_name(v: str) -> None:
    if not v:
        raise ValueError("node name is empty")
    if len(v) > 253 or not _NODE_NAME.fullmatch(v):
        raise ValueError(
            f"{v!r} is not a Kubernetes node name (lowercase letters, digits, '-' and '.')"
        )


def _address(v: str) -> None:
    if ip_literal(v) is None and (not v or len(v) > 253 or not _HOSTNAME.fullmatch(v)):
        raise ValueError(f"{v!r} is neither an IP address nor a host name")


def _user(v: str) -> None:
    if not _USER.fullmatch(v):
        raise ValueError(f"{v!r} is not a user name (lowercase letters, digits, '_', '-', '.')")


def _env(v: str) -> None:
    if not _ENV.fullmatch(v):
        raise ValueError(f"{v!r} is not an environment variable name")


def _path(v: str) -> None:
    if not v or any(c in v for c in "\0\n\r"):
        raise ValueError("a path must be non-empty and on one line")


def _jump(v: str) -> None:
    user, _, hostport = v.rpartition("@")
    host, _, port = hostport.partition(":")
    if user:
        _user(user)
    _address(host)
    if port and not (_PORT.fullmatch(port) and 0 < int(port) < 65536):
        raise ValueError(f"{port!r} is not a port number")


def _k8s_name(v: str) -> None:
    if not _K8S_NAME.fullmatch(v) or len(v) > 63:
        raise ValueError(f"{v!r} is not a valid Kubernetes name (lowercase letters, digits, '-')")


# A registry (and optional path) images are mirrored under, as an image reference starts:
# host[:port] then lowercase path components (the distribution reference grammar), with no
# scheme, tag or digest - the image's own path and tag are appended to it.
_REGISTRY = re.compile(rf"(?P<host>{_HOST_LABEL}(\.{_HOST_LABEL})*)(?P<port>:[0-9]{{1,5}})?"
                       r"(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*", re.ASCII)
_SECRET_NAME = _NODE_NAME  # a Secret's name is a DNS subdomain, as a node's is


def _registry(v: str) -> None:
    if "://" in v:
        raise ValueError(f"{v!r}: write the registry without a scheme, e.g. "
                         "registry.example.com/mirror")
    m = _REGISTRY.fullmatch(v)
    # As container runtimes read a reference: its first part is a registry only with a dot
    # or a port in it, or as `localhost`; anything else would be read as a Docker Hub path.
    if (len(v) > 200 or m is None
            or not ("." in m["host"] or m["port"] or m["host"] == "localhost")):
        raise ValueError(f"{v!r} is not a registry such as registry.example.com:5000/mirror "
                         "(a host with a dot or a port, or localhost, then lowercase path "
                         "parts; no tag, no trailing /)")


def _secret_name(v: str) -> None:
    if len(v) > 253 or not _SECRET_NAME.fullmatch(v):
        raise ValueError(f"{v!r} is not a Secret name (lowercase letters, digits, '-' and '.')")


def _quantity(v: str) -> None:
    if not _QUANTITY.fullmatch(v):
        raise ValueError(f"{v!r} is not a Kubernetes quantity such as 16Gi")


def rule(check: Callable[[str], None]) -> AfterValidator:
    """A check that raises ValueError with the message to show, as a pydantic validator (the
    checks return nothing: the value is kept as given)."""
    return AfterValidator(lambda v: check(v) or v)


NodeName = Annotated[str, rule(_node_name)]
HostAddress = Annotated[str, rule(_address)]
UserName = Annotated[str, rule(_user)]
EnvName = Annotated[str, rule(_env)]
LocalPath = Annotated[str, rule(_path)]
JumpHost = Annotated[str, rule(_jump)]
K8sName = Annotated[str, rule(_k8s_name)]
Quantity = Annotated[str, rule(_quantity)]
Registry = Annotated[str, rule(_registry)]
SecretName = Annotated[str, rule(_secret_name)]
CheckName = Literal[IGNORABLE]  # the check names, so the schema lists them too
Port = Annotated[int, Field(ge=1, le=65535)]
Policy = Literal["apply", "ask", "skip"]
Choice = Literal["kata", "traditional", "leave"]


class Cluster(StrictModel):
    """Which cluster to act on; unset means $KUBECONFIG / ~/.kube/config and its current context."""

    kubeconfig: LocalPath | None = None
    context: str | None = None


class Sudo(StrictModel):
    """How to become root on the hosts. A password is referenced, never written here."""

    mode: Literal["auto", "none", "passwordless", "password"] = "auto"
    password_env: EnvName | None = None
    password_prompt: bool = False


DEFAULT_SSH_CONFIG = "~/.ssh/config"  # OpenSSH's own: used when it exists, like ssh does


class SSH(StrictModel):
    user: UserName = "root"
    port: Port = 22
    identity_file: LocalPath | None = None
    use_agent: bool = True
    passphrase_env: EnvName | None = None
    passphrase_prompt: bool = False
    jump_host: JumpHost | None = None
    known_hosts: LocalPath = "~/.ssh/known_hosts"
    host_key_policy: Literal["strict", "accept-new"] = "strict"
    config_file: LocalPath | None = DEFAULT_SSH_CONFIG
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    command_timeout: Annotated[float, Field(gt=0, le=7200)] = 300.0
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 50
    sudo: Sudo = Sudo()


class NodeChoice(StrictModel):
    """One node's choice, with optional SSH overrides for that host."""

    name: NodeName
    choice: Choice
    address: HostAddress | None = None
    user: UserName | None = None
    port: Port | None = None
    host_access: AccessMode | None = None  # this host's way in; the top level's when unset


class Nodes(StrictModel):
    default: Literal["kata", "traditional"] = "traditional"
    items: list[NodeChoice] = []

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        seen: dict[str, str] = {}
        for i, item in enumerate(self.items):
            if item.name in seen:
                if seen[item.name] != item.choice:
                    raise ValueError(
                        f"items[{i}]: node '{item.name}' is given two choices "
                        f"('{seen[item.name]}' and '{item.choice}'); keep one"
                    )
                raise ValueError(f"items[{i}]: node '{item.name}' is listed twice; keep one entry")
            seen[item.name] = item.choice
        return self

    def access_for(self, name: str, default: AccessMode) -> AccessMode:
        """How `name` is reached: its own hostAccess, else the answers' mode."""
        return next((n.host_access for n in self.items if n.name == name and n.host_access),
                    default)

    def choice_for(self, name: str) -> Choice | None:
        return next((n.choice for n in self.items if n.name == name), None)

    def kata_nodes(self, cluster: _DiscoveredCluster | None) -> list[str]:
        """Nodes that will run Kata GPU workloads: chosen explicitly, or by the cluster
        default (its GPU nodes, when the cluster is known). Here, not in the planner: the
        Nodes screen asks for every row, and importing the planner is expensive on the way
        to it (BENCHMARKS.md section 4)."""
        names = [n.name for n in self.items if n.choice == "kata"]
        if self.default == "kata" and cluster is not None:
            listed = {n.name for n in self.items}
            names += [n.name for n in cluster.nodes
                      if n.gpu_present and n.name not in listed and n.workload is None]
        return names


class HostAccess(StrictModel):
    """How the installer reaches the GPU hosts for checks, fixes and verification: over SSH
    (`ssh`), or through the cluster (`pod`: a short-lived privileged pod per node, run
    through the API server's pods/exec, for hosts nobody may SSH to). `hostAccess: pod` is
    short for `hostAccess: {mode: pod}`; `nodes.items[].hostAccess` overrides the mode per
    node."""

    mode: AccessMode = "ssh"
    pod_image: str = DEFAULT_POD_IMAGE  # mirrored under images.registry when that is set
    namespace: K8sName = HOST_ACCESS_NAMESPACE
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 20
    pod_start_seconds: Annotated[int, Field(ge=10, le=3600)] = 120


def _access_shorthand(v: Any) -> Any:
    return {"mode": v} if isinstance(v, str) else v


HostAccessAnswer = Annotated[HostAccess, BeforeValidator(
    _access_shorthand, json_schema_input_type=HostAccess | AccessMode)]


class HostFixes(StrictModel):
    """Per-fix consent policy: apply without asking, ask first, or never touch the host."""

    iommu: Policy = "ask"
    nouveau_blacklist: Policy = "ask"
    vfio_bind: Policy = "ask"
    kubelet_feature_gate: Policy = "ask"
    reboot: Policy = "ask"


class ChartSource(StrictModel):
    """Exactly one of: an OCI reference, a repository URL with a chart name, a local path."""

    oci: str | None = None
    repo: str | None = None
    name: str | None = None
    path: LocalPath | None = None

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        forms = [f for f in ("oci", "repo", "path") if getattr(self, f)]
        if len(forms) != 1:
            raise ValueError("give exactly one of `oci`, `repo` (with `name`) or `path`")
        if self.oci and not self.oci.startswith("oci://"):
            raise ValueError(f"`oci` must start with oci:// (got '{self.oci}')")
        if self.repo and not _HTTP_URL.fullmatch(self.repo):
            raise ValueError(f"`repo` must be an http(s) URL (got '{self.repo}')")
        if self.repo and not self.name:
            raise ValueError("`repo` needs `name`, the chart's name in that repository")
        if self.name and not self.repo:
            raise ValueError("`name` only goes with `repo`")
        return self

    @property
    def is_local(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        if self.oci:
            return self.oci
        if self.repo:
            return f"{self.repo} {self.name}"
        return str(self.path)


class _Chart(StrictModel):
    version: str | None = None
    values: dict[str, Any] = {}
    timeout: Annotated[str, Field(pattern=r"^[0-9]+[smh]$")] = "10m"

    def _check_version(self, chart: str, leading_v: bool) -> None:
        if self.version is None:
            if not self.chart.is_local:
                raise ValueError(
                    f"`version` is required for a remote {chart} chart "
                    f"(for example {'v26.3.1' if leading_v else '3.29.0'})"
                )
            return
        # SemVer 2, an optional leading v (installer.answers.versions)
        if parse(self.version) is None:
            raise ValueError(f"`version` '{self.version}' is not a chart version like 1.2.3")
        has_v = self.version.startswith("v")
        if has_v != leading_v and not self.chart.is_local:
            want = f"v{self.version}" if leading_v else self.version[1:]
            raise ValueError(
                f"{chart} chart versions are written {'with' if leading_v else 'without'} "
                f"a leading 'v': use '{want}'"
            )


class KataDeploy(_Chart):
    chart: ChartSource = ChartSource(oci=DEFAULT_KATA_CHART)
    version: str | None = DEFAULT_KATA_DEPLOY
    namespace: K8sName = KATA_NAMESPACE
    release: K8sName = "kata-deploy"

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        self._check_version("kata-deploy", leading_v=False)
        found = parse(self.version)
        if found and not self.chart.is_local and not fixed_in(found, MIN_KATA_DEPLOY):
            raise ValueError(f"kata-deploy {self.version} is too old; use {MIN_KATA_DEPLOY} "
                             "or newer")
        return self


class GpuOperator(_Chart):
    chart: ChartSource = ChartSource(repo=DEFAULT_OPERATOR_REPO, name="gpu-operator")
    version: str | None = DEFAULT_GPU_OPERATOR
    namespace: K8sName = OPERATOR_NAMESPACE
    release: K8sName = "gpu-operator"
    resource_naming: Literal["pgpu", "per-model"] = "pgpu"
    nvswitch_naming: Literal["nvswitch", "per-model"] = "nvswitch"
    cc_mode: Literal["leave", "off"] = "leave"

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        self._check_version("gpu-operator", leading_v=True)
        km = self.values.get("kataManager")
        if isinstance(km, dict) and km.get("enabled") is True:
            raise ValueError(
                "values.kataManager.enabled: the kata manager is deprecated and conflicts "
                "with kata-deploy; remove it"
            )
        return self


class Sample(StrictModel):
    run: bool = True
    image: str = DEFAULT_SAMPLE_IMAGE
    memory: Quantity = "16Gi"
    timeout_seconds: Annotated[int, Field(ge=30, le=86400)] = 900


class Images(StrictModel):
    """Where the images come from. `registry` points both charts' images (and the sample's)
    at a mirror that holds them under the same path and tag; `pullSecrets` names Secrets of
    type kubernetes.io/dockerconfigjson that pods pull with - created beforehand, by the
    operator, in each chart's namespace (and `default` for the sample)."""

    registry: Registry | None = None
    pull_secrets: list[SecretName] = []

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        if len(set(self.pull_secrets)) != len(self.pull_secrets):
            raise ValueError("pullSecrets names a Secret twice; keep one")
        return self


class Checks(StrictModel):
    ignore: list[CheckName] = []


class Rollout(StrictModel):
    """How many nodes a change takes out of service at once (host fixes with their reboot,
    an upgrade, a change of role), and how long draining one may take. One node at a time
    by default: a cluster's GPU capacity drops by one node's, never more, unless the
    operator says so - as kubectl's and kata's own rolling updates default to."""

    max_unavailable: Annotated[int, Field(ge=1, le=1000)] = 1
    drain_timeout_seconds: Annotated[int, Field(ge=30, le=86400)] = 600
    # The pod an upgrade runs on each node of a wave before uncordoning it: the sample by
    # default; an image (and command) of the operator's own GPU test instead, which passes
    # when it exits 0. It runs as the sample does: in a Kata VM, one GPU, sample.memory.
    verify_image: str | None = None
    verify_command: list[str] | None = None

    @model_validator(mode="after")
    def _invariant(self) -> Self:
        if self.verify_command is not None and not self.verify_image:
            raise ValueError("verifyCommand needs verifyImage: the sample's own command "
                             "is its image's")
        if self.verify_command is not None and not self.verify_command:
            raise ValueError("verifyCommand is empty: give the command, or leave it out "
                             "for the image's own")
        return self


class Uninstall(StrictModel):
    """What uninstall does beyond the charts and labels: revert the host fixes it made."""

    revert_hosts: bool = False


class Answers(StrictModel):
    """Everything the installer needs to know; see README "Answers file"."""

    api_version: Literal["gpu-kata-installer.io/v1alpha1"]
    kind: Literal["Answers"]
    cluster: Cluster = Cluster()
    ssh: SSH = SSH()
    host_access: HostAccessAnswer = HostAccess()
    nodes: Nodes = Nodes()
    host_fixes: HostFixes = HostFixes()
    kata_deploy: KataDeploy
    gpu_operator: GpuOperator
    sample: Sample = Sample()
    images: Images = Images()
    checks: Checks = Checks()
    rollout: Rollout = Rollout()
    uninstall: Uninstall = Uninstall()


def _secret_problems(data: Any, lines: dict[Location, int], path: Location = ()) -> list[Problem]:
    """Find secrets written inline, wherever they are - the model would only say "unknown key"."""
    found: list[Problem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and _SECRET_KEY.search(key) and not isinstance(value, dict):
                found.append(Problem(
                    dotted((*path, key)),
                    "a secret is written inline; answers files never hold secrets",
                    f"remove it and reference it instead, e.g. `{key}Env: SUDO_PASSWORD` "
                    f"(an environment variable) or `{key}Prompt: true`",
                    line=line_for((*path, key), lines),
                ))
            else:
                found += _secret_problems(value, lines, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found += _secret_problems(item, lines, (*path, i))
    return found


def _problem(err: Error, lines: dict[Location, int]) -> Problem:
    line = line_for(err.loc, lines)
    if err.kind == "choice" and err.loc[:2] == ("checks", "ignore"):
        return Problem(dotted(err.loc), "not a check name",
                       f"use one of: {', '.join(IGNORABLE)} (`all` ignores every check)",
                       line=line)
    fix = {
        "unknown": "remove it or check its spelling against `gpu-kata-installer answers schema`",
        "missing": f"add `{err.loc[-1]}:`; `gpu-kata-installer answers init` shows a complete file",
        "choice": "use one of the values listed",
        "type": "check the value's type (quote strings, no quotes for numbers and booleans)",
    }.get(err.kind, "")
    return Problem(dotted(err.loc), err.message, fix, line=line)


def validate_answers(data: Any, lines: dict[Location, int] | None = None,
                     source: str = "answers") -> Answers:
    """Validate raw data into Answers, or raise UserError listing every problem found."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise UserError(f"{source}: invalid answers file", [Problem(
            "(document)", "the document must be a mapping of keys to values",
            "start from `gpu-kata-installer answers init`", line=1)])
    problems = _secret_problems(data, lines)
    try:
        answers = Answers.from_data(data)
    except Invalid as exc:
        reported = {p.where for p in problems}
        problems += [q for q in (_problem(e, lines) for e in exc.errors)
                     if q.where not in reported]
        answers = None
    if problems:
        raise UserError(f"{source}: invalid answers file", problems)
    assert answers is not None
    return answers


def load_answers(path: Path) -> Answers:
    data, lines = load_yaml(path)
    return validate_answers(data, lines, str(path))


def parse_answers(text: str, source: str = "answers") -> Answers:
    data, lines = parse_yaml(text, source)
    return validate_answers(data, lines, source)


def dump_answers(answers: Answers) -> str:
    """Serialize for saving from the wizard; the result loads back to an equal Answers.
    Unset optional keys are left out, but an explicit null whose default is not null stays
    (`ssh.configFile: null` means "no ssh_config"; dropped, it would read ~/.ssh/config)."""
    data = answers.to_data(omit_default_nulls=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def json_schema() -> dict[str, Any]:
    return _json_schema(Answers)
