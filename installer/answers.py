"""The answers file: every choice the wizard makes, as one versioned, validated document.

The same model is filled by the wizard and read by headless runs, so a saved wizard
session replays to the same plan. Secrets are only ever referenced (an environment
variable or an interactive prompt), never stored: the validator refuses inline ones.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from installer.errors import Problem, UserError
from installer.yamlsrc import Location, dotted, load_yaml, parse_yaml

if TYPE_CHECKING:
    from installer.facts import NodeFacts

API_VERSION = "gpu-kata-installer.io/v1alpha1"
KIND = "Answers"

DEFAULT_KATA_CHART = "oci://ghcr.io/kata-containers/kata-deploy-charts/kata-deploy"
DEFAULT_OPERATOR_REPO = "https://helm.ngc.nvidia.com/nvidia"
DEFAULT_SAMPLE_IMAGE = "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04"
MIN_KATA_DEPLOY = (3, 29, 0)

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NODE_NAME = re.compile(rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHECK = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_K8S_NAME = re.compile(rf"^{_DNS_LABEL}$")
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)([-+][0-9A-Za-z.-]+)?$")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_SECRET_KEY = re.compile(r"(password|passphrase|secret|token)$", re.IGNORECASE)


def _node_name(v: str) -> str:
    if not v:
        raise ValueError("node name is empty")
    if len(v) > 253 or not _NODE_NAME.match(v):
        raise ValueError(
            f"'{v}' is not a Kubernetes node name (lowercase letters, digits, '-' and '.')"
        )
    return v


def _address(v: str) -> str:
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if not v or len(v) > 253 or not _HOSTNAME.match(v):
        raise ValueError(f"'{v}' is neither an IP address nor a host name")
    return v


def _user(v: str) -> str:
    if not _USER.match(v):
        raise ValueError(f"'{v}' is not a user name (lowercase letters, digits, '_', '-', '.')")
    return v


def _env(v: str) -> str:
    if not _ENV.match(v):
        raise ValueError(f"'{v}' is not an environment variable name")
    return v


def _path(v: str) -> str:
    if not v or any(c in v for c in "\0\n\r"):
        raise ValueError("a path must be non-empty and on one line")
    return v


def _jump(v: str) -> str:
    user, _, hostport = v.rpartition("@")
    host, _, port = hostport.partition(":")
    if user:
        _user(user)
    _address(host)
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"'{port}' is not a port number")
    return v


def _k8s_name(v: str) -> str:
    if not _K8S_NAME.match(v) or len(v) > 63:
        raise ValueError(f"'{v}' is not a valid Kubernetes name (lowercase letters, digits, '-')")
    return v


def _quantity(v: str) -> str:
    if not _QUANTITY.match(v):
        raise ValueError(f"'{v}' is not a Kubernetes quantity such as 16Gi")
    return v


def _check_name(v: str) -> str:
    if not _CHECK.match(v):
        raise ValueError(f"'{v}' is not a check name (kebab-case, as `check --local` lists them)")
    return v


NodeName = Annotated[str, AfterValidator(_node_name)]
HostAddress = Annotated[str, AfterValidator(_address)]
UserName = Annotated[str, AfterValidator(_user)]
EnvName = Annotated[str, AfterValidator(_env)]
LocalPath = Annotated[str, AfterValidator(_path)]
JumpHost = Annotated[str, AfterValidator(_jump)]
K8sName = Annotated[str, AfterValidator(_k8s_name)]
Quantity = Annotated[str, AfterValidator(_quantity)]
CheckName = Annotated[str, AfterValidator(_check_name)]
Port = Annotated[int, Field(ge=1, le=65535)]
Policy = Literal["apply", "ask", "skip"]
Choice = Literal["kata", "traditional", "leave"]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        strict=True,
    )


class Cluster(_Model):
    """Which cluster to act on; unset means $KUBECONFIG / ~/.kube/config and its current context."""

    kubeconfig: LocalPath | None = None
    context: str | None = None


class Sudo(_Model):
    """How to become root on the hosts. A password is referenced, never written here."""

    mode: Literal["auto", "none", "passwordless", "password"] = "auto"
    password_env: EnvName | None = None
    password_prompt: bool = False


class SSH(_Model):
    user: UserName = "root"
    port: Port = 22
    identity_file: LocalPath | None = None
    use_agent: bool = True
    passphrase_env: EnvName | None = None
    passphrase_prompt: bool = False
    jump_host: JumpHost | None = None
    known_hosts: LocalPath = "~/.ssh/known_hosts"
    host_key_policy: Literal["strict", "accept-new"] = "strict"
    config_file: LocalPath | None = "~/.ssh/config"
    connect_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    command_timeout: Annotated[float, Field(gt=0, le=7200)] = 300.0
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 50
    sudo: Sudo = Sudo()


class NodeChoice(_Model):
    """One node's choice, with optional SSH overrides for that host."""

    name: NodeName
    choice: Choice
    address: HostAddress | None = None
    user: UserName | None = None
    port: Port | None = None


class Nodes(_Model):
    default: Literal["kata", "traditional"] = "traditional"
    items: list[NodeChoice] = []

    @model_validator(mode="after")
    def _unique(self) -> Nodes:
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

    def choice_for(self, name: str) -> Choice | None:
        return next((n.choice for n in self.items if n.name == name), None)

    def kata_nodes(self, cluster_nodes: Iterable[NodeFacts]) -> list[str]:
        """Nodes that will run Kata GPU workloads: chosen explicitly, or by the cluster
        default. Here, not in the planner: the Nodes screen asks for every row, and the
        planner's import (40-90 ms of CPU) was on the way to it."""
        names = [n.name for n in self.items if n.choice == "kata"]
        if self.default == "kata":
            listed = {n.name for n in self.items}
            names += [n.name for n in cluster_nodes
                      if n.gpu_present and n.name not in listed and n.workload is None]
        return names


class HostFixes(_Model):
    """Per-fix consent policy: apply without asking, ask first, or never touch the host."""

    iommu: Policy = "ask"
    nouveau_blacklist: Policy = "ask"
    vfio_bind: Policy = "ask"
    kubelet_feature_gate: Policy = "ask"
    reboot: Policy = "ask"


class ChartSource(_Model):
    """Exactly one of: an OCI reference, a repository URL with a chart name, a local path."""

    oci: str | None = None
    repo: str | None = None
    name: str | None = None
    path: LocalPath | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ChartSource:
        forms = [f for f in ("oci", "repo", "path") if getattr(self, f)]
        if len(forms) != 1:
            raise ValueError("give exactly one of `oci`, `repo` (with `name`) or `path`")
        if self.oci and not self.oci.startswith("oci://"):
            raise ValueError(f"`oci` must start with oci:// (got '{self.oci}')")
        if self.repo and not re.match(r"^https?://[^\s]+$", self.repo):
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


class _Chart(_Model):
    version: str | None = None
    values: dict[str, Any] = {}
    timeout: Annotated[str, Field(pattern=r"^\d+[smh]$")] = "10m"

    def _check_version(self, chart: str, leading_v: bool) -> None:
        if self.version is None:
            if not self.chart.is_local:
                raise ValueError(
                    f"`version` is required for a remote {chart} chart "
                    f"(for example {'v26.3.1' if leading_v else '3.29.0'})"
                )
            return
        m = _SEMVER.match(self.version)
        if not m:
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
    namespace: K8sName = "kata-system"
    release: K8sName = "kata-deploy"

    @model_validator(mode="after")
    def _version(self) -> KataDeploy:
        self._check_version("kata-deploy", leading_v=False)
        if self.version and not self.chart.is_local and self.version_tuple < MIN_KATA_DEPLOY:
            raise ValueError(f"kata-deploy {self.version} is too old; use 3.29.0 or newer")
        return self

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        m = _SEMVER.match(self.version or "")
        return (int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)


class GpuOperator(_Chart):
    chart: ChartSource = ChartSource(repo=DEFAULT_OPERATOR_REPO, name="gpu-operator")
    namespace: K8sName = "gpu-operator"
    release: K8sName = "gpu-operator"
    resource_naming: Literal["pgpu", "per-model"] = "pgpu"
    nvswitch_naming: Literal["nvswitch", "per-model"] = "nvswitch"
    cc_mode: Literal["leave", "off"] = "leave"

    @model_validator(mode="after")
    def _version(self) -> GpuOperator:
        self._check_version("gpu-operator", leading_v=True)
        km = self.values.get("kataManager")
        if isinstance(km, dict) and km.get("enabled") is True:
            raise ValueError(
                "values.kataManager.enabled: the kata manager is deprecated and conflicts "
                "with kata-deploy; remove it"
            )
        return self


class Sample(_Model):
    run: bool = True
    image: str = DEFAULT_SAMPLE_IMAGE
    memory: Quantity = "16Gi"
    timeout_seconds: Annotated[int, Field(ge=30, le=86400)] = 900


class Checks(_Model):
    ignore: list[CheckName] = []


class Answers(_Model):
    """Everything the installer needs to know; see README "Answers file"."""

    api_version: Literal["gpu-kata-installer.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Answers"]
    cluster: Cluster = Cluster()
    ssh: SSH = SSH()
    nodes: Nodes = Nodes()
    host_fixes: HostFixes = HostFixes()
    kata_deploy: KataDeploy
    gpu_operator: GpuOperator
    sample: Sample = Sample()
    checks: Checks = Checks()


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
                    line=_line_for((*path, key), lines),
                ))
            else:
                found += _secret_problems(value, lines, (*path, key))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found += _secret_problems(item, lines, (*path, i))
    return found


def _line_for(loc: Location, lines: dict[Location, int]) -> int | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _problem(err: dict[str, Any], lines: dict[Location, int]) -> Problem:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = err["type"]
    msg = err["msg"].removeprefix("Value error, ")
    fix = ""
    if kind == "extra_forbidden":
        msg = f"unknown key '{loc[-1]}'"
        fix = "remove it or check its spelling against `gpu-kata-installer answers schema`"
    elif kind == "missing":
        msg = f"required key '{loc[-1]}' is missing"
        fix = f"add `{loc[-1]}:`; `gpu-kata-installer answers init` shows a complete file"
    elif kind == "literal_error":
        fix = "use one of the values listed"
    elif kind.endswith("_type"):
        fix = "check the value's type (quote strings, no quotes for numbers and booleans)"
    return Problem(dotted(loc), msg, fix, line=_line_for(loc, lines))


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
        answers = Answers.model_validate(data)
    except ValidationError as exc:
        reported = {p.where for p in problems}
        problems += [q for q in (_problem(e, lines) for e in exc.errors(include_url=False))
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


def _without_default_nulls(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """Drop unset optional keys, but keep an explicit null whose default is not null
    (`ssh.configFile: null` means "no ssh_config"; dropped, it would read ~/.ssh/config)."""
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        key = info.alias or name
        value = getattr(model, name)
        if value is None and info.default is None:
            continue
        if isinstance(value, BaseModel):
            out[key] = _without_default_nulls(value, data[key])
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            out[key] = [_without_default_nulls(v, d) for v, d in zip(value, data[key],
                                                                      strict=True)]
        else:
            out[key] = data[key]
    return out


def dump_answers(answers: Answers) -> str:
    """Serialize for saving from the wizard; the result loads back to an equal Answers."""
    data = _without_default_nulls(answers, answers.model_dump(mode="json", by_alias=True))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def json_schema() -> dict[str, Any]:
    return Answers.model_json_schema(by_alias=True)
