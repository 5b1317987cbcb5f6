"""`gpu-kata-installer images`: every image the install will pull, for mirroring.

Both charts are rendered by the real `helm template`, from the same source, version,
namespace and values the install plan uses, and the images are read from what helm rendered:

- every container, init container and ephemeral container of every pod template (the charts'
  Deployments, DaemonSets, Jobs - helm hooks included - Pods, CronJobs, and the per-node Job
  templates kata-deploy's job mode keeps in a ConfigMap);
- the GPU Operator's operands, which are no pod templates in the chart: the operator builds
  their DaemonSets from image coordinates in the ClusterPolicy, so those are read from the
  rendered ClusterPolicy with the operator's own rule for joining them, for the operands that
  will run on the nodes this install sets up (the Kata stack on the Kata nodes, the container
  stack where any GPU node is left to containers);
- the CUDA sample's image, when the run ends with it.

The collection is pure (rendered text in, `Pull`s out) so the unit tests feed it small
manifests; `run_images` is the command around it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from installer.answers.model import Answers, ChartSource, Images
from installer.charts.registry import under_registry
from installer.errors import Problem, UserError
from remote.yamlload import YAMLRefused, safe_load_all

if TYPE_CHECKING:
    from installer.charts.helm import Helm


@dataclass(frozen=True)
class Pull:
    """One place that pulls an image: the chart (or `sample`), where in its rendered objects
    (or which ClusterPolicy component, and the operand that uses it), and the image."""

    chart: str
    where: str
    image: str
    # False for a pod template that names no imagePullSecrets: with `images.pullSecrets`
    # set, it still pulls without credentials (kata-deploy's kubectl Jobs take none).
    with_secrets: bool = True


# Where each kind keeps its pod spec (the workload kinds helm charts render).
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = (("initContainers", "init container"), ("containers", "container"),
                   ("ephemeralContainers", "ephemeral container"))


def parse_manifests(text: str, source: str) -> list[dict[str, Any]]:
    """helm's rendered output as objects (through the bounded loader every YAML goes
    through); a document that is no object (an empty one between `---`) is skipped."""
    try:
        docs = safe_load_all(text)
    except (yaml.YAMLError, YAMLRefused) as exc:
        raise UserError(f"{source}: helm's rendered manifests could not be read", [Problem(
            source, str(exc).splitlines()[0],
            "render it by hand (`helm template ...`) to see what the chart produced")]) from None
    return [d for d in docs if isinstance(d, dict)]


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{_dig(obj, ('metadata', 'name')) or '?'}"


def pod_template_pulls(chart: str, docs: Iterable[dict[str, Any]]) -> list[Pull]:
    """Every container image of every pod template in `docs`, in document order."""
    out: list[Pull] = []
    for obj in docs:
        out += _object_pulls(chart, obj, "")
        if obj.get("kind") == "ConfigMap":
            out += _embedded_pulls(chart, obj)
    return out


def _object_pulls(chart: str, obj: dict[str, Any], prefix: str) -> list[Pull]:
    path = POD_SPEC_PATHS.get(str(obj.get("kind")))
    spec = _dig(obj, path) if path else None
    if not isinstance(spec, dict):
        return []
    hook = _dig(obj, ("metadata", "annotations", "helm.sh/hook"))
    label = f"{prefix}{_name(obj)}" + (f" (helm hook {hook})" if hook else "")
    secrets = bool(spec.get("imagePullSecrets"))
    out = []
    for key, what in CONTAINER_LISTS:
        for c in spec.get(key) or ():
            if isinstance(c, dict) and isinstance(c.get("image"), str) and c["image"]:
                out.append(Pull(chart, f"{label} {what} {c.get('name', '?')}", c["image"],
                                secrets))
    return out


def _embedded_pulls(chart: str, configmap: dict[str, Any]) -> list[Pull]:
    """Pod templates a ConfigMap carries as YAML text, for a controller that creates them
    later: kata-deploy's job mode keeps its per-node install and cleanup Jobs so
    (templates/kata-deploy-job-templates.yaml, 3.32.0 - 4.1.0), and its dispatcher creates
    one Job per node from them."""
    out: list[Pull] = []
    for key, text in sorted((_dig(configmap, ("data",)) or {}).items()):
        if not isinstance(text, str) or "image" not in text:
            continue
        try:
            docs = safe_load_all(text)
        except (yaml.YAMLError, YAMLRefused):
            continue  # plain configuration, not a manifest
        for doc in docs:
            if isinstance(doc, dict):
                out += _object_pulls(chart, doc, f"{_name(configmap)} key {key}: ")
    return out


# --- The GPU Operator's operands, from the ClusterPolicy -------------------------------------

# The environment variable the operator falls back to for each component when the
# ClusterPolicy gives no coordinates (api/nvidia/v1/clusterpolicy_types.go `ImagePath`,
# v26.3.0 - v26.7.0); the chart sets some of them on the operator's container.
FALLBACK_ENV = {
    "driver": "DRIVER_IMAGE", "driver.manager": "DRIVER_MANAGER_IMAGE",
    "toolkit": "CONTAINER_TOOLKIT_IMAGE", "devicePlugin": "DEVICE_PLUGIN_IMAGE",
    "dcgm": "DCGM_IMAGE", "dcgmExporter": "DCGM_EXPORTER_IMAGE", "gfd": "GFD_IMAGE",
    "migManager": "MIG_MANAGER_IMAGE", "nodeStatusExporter": "VALIDATOR_IMAGE",
    "validator": "VALIDATOR_IMAGE", "gds": "GDS_IMAGE", "gdrcopy": "GDRCOPY_IMAGE",
    "vfioManager": "VFIO_MANAGER_IMAGE", "vfioManager.driverManager": "DRIVER_MANAGER_IMAGE",
    "sandboxDevicePlugin": "SANDBOX_DEVICE_PLUGIN_IMAGE",
    "kataSandboxDevicePlugin": "KATA_SANDBOX_DEVICE_PLUGIN_IMAGE",
    "ccManager": "CC_MANAGER_IMAGE",
}


def image_path(coordinates: dict[str, Any]) -> str | None:
    """The operator's rule for one component's image (api/nvidia/v1/clusterpolicy_types.go
    `imagePath`, v26.7.0; v26.3.x the same for complete coordinates): `image` alone when
    neither repository nor version is set (a full reference, e.g. from kbld); else
    `repository/image@version` for a `sha256:` digest and `repository/image:version`
    otherwise. None when there are none (the operator then reads its environment); raises
    ValueError for coordinates the operator refuses (some but not all three set)."""
    repository, image, version = (str(coordinates.get(k) or "")
                                  for k in ("repository", "image", "version"))
    if not repository and not version:
        return image or None
    if not (repository and image and version):
        raise ValueError(f"repository, image and version must all be set (repository="
                         f"{repository!r}, image={image!r}, version={version!r})")
    return f"{repository}/{image}{'@' if version.startswith('sha256:') else ':'}{version}"


def _enabled(spec: dict[str, Any], component: str, default: bool) -> bool:
    """A component's `enabled`, with the operator's default when unset (its `IsEnabled`
    methods, api/nvidia/v1/clusterpolicy_types.go v26.7.0: driver, toolkit, devicePlugin,
    dcgm, dcgmExporter, gfd and migManager default on; the rest off)."""
    value = _dig(spec, (*component.split("."), "enabled"))
    return default if value is None else value is True


@dataclass(frozen=True)
class Operand:
    """One operand state of the operator: when it runs, and whose coordinates its pods pull."""

    what: str  # the operand as the operator deploys it
    components: tuple[str, ...]  # the ClusterPolicy components its containers take images from
    runs: Callable[[dict[str, Any]], bool]  # its state is enabled (controllers/state_manager.go)


def _on(component: str, default: bool) -> Callable[[dict[str, Any]], bool]:
    return lambda spec: _enabled(spec, component, default)


def _mode(spec: dict[str, Any]) -> str:
    return str(_dig(spec, ("sandboxWorkloads", "mode")) or "kubevirt")


# Operands on nodes whose workload is `container` (controllers/state_manager.go
# `gpuStateLabels` and `isStateEnabled`, v26.3.0 - v26.7.0; images from each
# assets/state-*/ DaemonSet and controllers/object_controls.go: every `*-validation` init
# container runs the validator image). The MPS control daemon (MPS-capable nodes) runs the
# devicePlugin image too, the mig-manager only on MIG-capable nodes, and gpu-feature-
# discovery's config-manager containers - kept only with a custom plugin config
# (`handleDevicePluginConfig`) - the devicePlugin image.
CONTAINER_OPERANDS: tuple[Operand, ...] = (
    Operand("nvidia-driver-daemonset", ("driver", "driver.manager"),
            lambda s: _enabled(s, "driver", True)
            and _dig(s, ("driver", "useNvidiaDriverCRD")) is not True),
    Operand("nvidia-driver-daemonset GDS container", ("gds",),
            lambda s: _enabled(s, "driver", True) and _enabled(s, "gds", False)),
    Operand("nvidia-driver-daemonset GDRCopy container", ("gdrcopy",),
            lambda s: _enabled(s, "driver", True) and _enabled(s, "gdrcopy", False)),
    Operand("nvidia-container-toolkit-daemonset", ("toolkit", "validator"),
            _on("toolkit", True)),
    Operand("nvidia-device-plugin-daemonset", ("devicePlugin", "validator"),
            _on("devicePlugin", True)),
    Operand("nvidia-dcgm", ("dcgm", "validator"), _on("dcgm", True)),
    Operand("nvidia-dcgm-exporter", ("dcgmExporter", "validator"), _on("dcgmExporter", True)),
    Operand("gpu-feature-discovery", ("gfd", "validator"), _on("gfd", True)),
    Operand("gpu-feature-discovery config-manager", ("devicePlugin",),
            lambda s: _enabled(s, "gfd", True)
            and bool(_dig(s, ("devicePlugin", "config", "name")))),
    Operand("nvidia-mig-manager", ("migManager", "validator"),
            _on("migManager", True)),
    Operand("nvidia-node-status-exporter", ("nodeStatusExporter",),
            _on("nodeStatusExporter", False)),
    Operand("nvidia-operator-validator", ("validator",), lambda s: True),
)
# Operands on `vm-passthrough` nodes, with sandbox workloads enabled (same sources): the
# Kata device plugin and the cc-manager in `kata` mode, the KubeVirt device plugin in
# `kubevirt` mode. The kata-manager is not deployed (v26.7.0 never; v26.3.x only when
# `kataManager.enabled`, which the answers refuse).
PASSTHROUGH_OPERANDS: tuple[Operand, ...] = (
    Operand("nvidia-sandbox-validator", ("validator",), lambda s: True),
    Operand("nvidia-vfio-manager", ("vfioManager", "vfioManager.driverManager"),
            _on("vfioManager", False)),
    Operand("nvidia-kata-sandbox-device-plugin-daemonset",
            ("kataSandboxDevicePlugin", "validator"),
            lambda s: _mode(s) == "kata" and _enabled(s, "kataSandboxDevicePlugin", False)),
    Operand("nvidia-cc-manager", ("ccManager",),
            lambda s: _mode(s) == "kata" and _enabled(s, "ccManager", False)),
    Operand("nvidia-sandbox-device-plugin-daemonset", ("sandboxDevicePlugin", "validator"),
            lambda s: _mode(s) == "kubevirt" and _enabled(s, "sandboxDevicePlugin", False)),
)


@dataclass(frozen=True)
class Stacks:
    """Which operand stacks will run, and why (for the operator to check)."""

    container: str | None  # the reason the container stack runs, None when it does not
    passthrough: str | None


def stacks(answers: Answers, spec: dict[str, Any]) -> Stacks:
    """Which workloads the GPU nodes will have, from the answers' choices and the rendered
    ClusterPolicy (the operator's `getWorkloadConfig`, controllers/state_manager.go: without
    sandbox workloads every GPU node is `container`; with them, a node's
    nvidia.com/gpu.workload.config label, else `sandboxWorkloads.defaultWorkload`). Without
    a cluster, GPU nodes the answers do not list may exist: they get the default."""
    if _dig(spec, ("sandboxWorkloads", "enabled")) is not True:
        return Stacks("sandboxWorkloads.enabled is not true: every GPU node runs containers",
                      None)
    default = str(_dig(spec, ("sandboxWorkloads", "defaultWorkload")) or "container")
    items = answers.nodes.items
    kata = [i.name for i in items if i.choice == "kata"]
    traditional = [i.name for i in items if i.choice == "traditional"]
    left = [i.name for i in items if i.choice == "leave"]
    why_kata = []
    if kata:
        why_kata.append(f"nodes chosen kata: {', '.join(kata)}")
    if default == "vm-passthrough":
        why_kata.append("GPU nodes not listed in nodes.items default to vm-passthrough "
                        "(nodes.default: kata)")
    why_container = []
    if traditional:
        why_container.append(f"nodes chosen traditional: {', '.join(traditional)}")
    if default == "container":
        why_container.append("GPU nodes not listed in nodes.items default to containers "
                             "(nodes.default: traditional; with every GPU node listed as "
                             "kata, `nodes.default: kata` leaves these out)")
    if left:
        why_container.append(f"nodes left as they are keep their own workload label: "
                             f"{', '.join(left)}")
    return Stacks("; ".join(why_container) or None, "; ".join(why_kata) or None)


def operator_env(docs: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The operator container's environment (its image fallbacks), from the rendered
    Deployment that runs `gpu-operator`."""
    for obj in docs:
        if obj.get("kind") != "Deployment":
            continue
        for c in _dig(obj, POD_SPEC_PATHS["Deployment"] + ("containers",)) or ():
            if isinstance(c, dict) and "gpu-operator" in str(c.get("command") or c.get("name")):
                return {str(e.get("name")): str(e["value"]) for e in c.get("env") or ()
                        if isinstance(e, dict) and isinstance(e.get("value"), str)}
    return {}


def operand_pulls(chart: str, docs: list[dict[str, Any]], answers: Answers,
                  ) -> tuple[list[Pull], list[str]]:
    """The images the GPU Operator will deploy, from the rendered ClusterPolicy (and
    NVIDIADriver objects, which replace the ClusterPolicy's driver when
    `driver.nvidiaDriverCRD.enabled`); with notes on which stacks were counted and why."""
    policies = [d for d in docs if d.get("kind") == "ClusterPolicy"]
    if not policies:
        return [], ["the GPU Operator chart rendered no ClusterPolicy (clusterPolicy.deployCR "
                    "is false?): the operator deploys no operands from it"]
    spec = policies[0].get("spec") or {}
    env = operator_env(docs)
    found = stacks(answers, spec)
    notes = []
    counted: list[tuple[str, Operand]] = []
    for stack, reason, operands in (("Kata nodes", found.passthrough, PASSTHROUGH_OPERANDS),
                                    ("container nodes", found.container, CONTAINER_OPERANDS)):
        if reason:
            notes.append(f"GPU Operator operands for {stack}: counted ({reason})")
            counted += [(stack, op) for op in operands if op.runs(spec)]
        else:
            notes.append(f"GPU Operator operands for {stack}: not counted (no node will "
                         "have that workload)")
    users: dict[tuple[str, str], list[str]] = {}  # (component, stack) -> its operands
    for stack, op in counted:
        for component in op.components:
            users.setdefault((component, stack), []).append(op.what)
    out: list[Pull] = []
    for (component, stack), operands in users.items():
        try:
            image = (image_path(_dig(spec, component.split(".")) or {})
                     or env.get(FALLBACK_ENV.get(component, "")))
        except ValueError as exc:
            notes.append(f"ClusterPolicy spec.{component}: {exc}; the operator refuses it and "
                         f"deploys none of {', '.join(operands)}")
            continue
        if image:
            out.append(Pull(chart, f"ClusterPolicy spec.{component} ({stack}: "
                                   f"{', '.join(operands)})", image))
        else:
            notes.append(f"ClusterPolicy spec.{component} has no image, and the operator no "
                         f"fallback: it cannot deploy {', '.join(operands)}")
    if found.container and _dig(spec, ("driver", "useNvidiaDriverCRD")) is True:
        for d in docs:
            if d.get("kind") == "NVIDIADriver":
                for part, label in (((), "driver"), (("manager",), "driver manager")):
                    image = image_path(_dig(d, ("spec", *part)) or {})
                    if image:
                        out.append(Pull(chart, f"{_name(d)} {label} (container nodes)", image))
    return out, notes


# --- The command --------------------------------------------------------------------------

@dataclass(frozen=True)
class Listed:
    """One line of the list: an image, where the mirror holds it (with a registry), and
    every place that pulls it."""

    image: str
    mirror: str | None
    pulls: tuple[Pull, ...]

    @property
    def charts(self) -> str:
        return ", ".join(dict.fromkeys(p.chart for p in self.pulls))

    @property
    def source(self) -> str:
        return "; ".join(p.where for p in self.pulls)

    def to_json(self) -> dict[str, Any]:
        out = {"image": self.image, "chart": self.charts, "source": self.source}
        return {**out, "mirror": self.mirror} if self.mirror else out

    def line(self) -> str:
        pair = f"{self.image} -> {self.mirror}" if self.mirror else self.image
        return f"{pair}  {self.charts}: {self.source}"


def listing(pulls: list[Pull], upstream: list[Pull] | None = None) -> list[Listed]:
    """One entry per image (per image and mirror, with a registry), sorted. `upstream` are
    the same places rendered without the registry: each pulled image is paired with the
    upstream image the same place pulls, which is what goes into the mirror."""
    source = {(p.chart, p.where): p.image for p in upstream or ()}
    grouped: dict[tuple[str, str | None], list[Pull]] = {}
    for p in pulls:
        if upstream is None:
            key: tuple[str, str | None] = (p.image, None)
        else:
            key = (source.get((p.chart, p.where), p.image), p.image)
        grouped.setdefault(key, [])
        if p not in grouped[key]:
            grouped[key].append(p)
    return [Listed(image, mirror, tuple(ps)) for (image, mirror), ps in sorted(grouped.items())]


def registry_notes(pulls: list[Pull], images: Images) -> list[str]:
    """With a registry: the images that would still be pulled from elsewhere; with pull
    secrets: the pods that pull without them."""
    out = []
    if images.registry:
        out += [f"not pulled from {images.registry}: {p.image} ({p.chart}: {p.where}); point "
                "it at the mirror in that chart's values" for p in pulls
                if not under_registry(p.image, images.registry)]
    if images.pull_secrets:
        out += [f"{p.chart}: {p.where} pulls {p.image} without a pull secret (the chart gives "
                "it none): the registry must serve it without credentials, or the nodes' "
                "container runtime must hold them" for p in pulls if not p.with_secrets]
    return out


def without_registry(answers: Answers) -> Answers:
    """The same answers, pulling from the charts' own registries."""
    return answers.model_copy(update={"images": Images(pull_secrets=answers.images.pull_secrets)})


@dataclass(frozen=True)
class ChartRender:
    """One chart to render: its name in the listing, where it is set in the answers, and
    what `helm template` takes."""

    chart: str
    section: str
    release: str
    source: ChartSource
    version: str | None
    namespace: str
    values: dict[str, Any]


def chart_renders(answers: Answers) -> list[ChartRender]:
    """Both charts with the values the install plan gives them (kata-deploy's before the
    Kata nodes' taints and distribution are known: those change no image)."""
    from installer.charts.values import gpu_operator_values, planned_kata_deploy_values

    kd, op = answers.kata_deploy, answers.gpu_operator
    return [
        ChartRender("kata-deploy", "kataDeploy", kd.release, kd.chart, kd.version, kd.namespace,
                    planned_kata_deploy_values(kd, [], answers.images)),
        ChartRender("gpu-operator", "gpuOperator", op.release, op.chart, op.version,
                    op.namespace, gpu_operator_values(answers)),
    ]


def sample_pulls(answers: Answers) -> list[Pull]:
    from installer.engine.plan import sample_image

    if not answers.sample.run:
        return []
    return [Pull("sample", "sample.image (the CUDA vector-add check, in namespace default)",
                 sample_image(answers))]


async def render(helm: Helm, r: ChartRender) -> list[dict[str, Any]]:
    """`helm template` of one chart; a failure is bad input (exit 2) naming the fix."""
    from installer.charts.helm import install_failure, run_with_values
    from installer.engine.plan import helm_template_args

    args = helm_template_args(r.release, r.source, r.version, r.namespace, "<values.yaml>")
    code, out, err = await run_with_values(helm, args, r.values)
    if code != 0:
        failed = install_failure(code, out, err, r.section, r.namespace)
        raise UserError(f"helm could not render the {r.chart} chart", [Problem(
            r.section, f"{failed} ({failed.cause})", failed.fix)])
    return parse_manifests(out, f"helm template {r.chart}")


async def collect(answers: Answers, helm: Helm) -> tuple[list[Pull], list[Pull] | None,
                                                        list[str]]:
    """(what the install pulls, the same places without the registry or None, notes)."""

    async def pulls_of(a: Answers) -> tuple[list[Pull], list[str]]:
        renders = chart_renders(a)
        rendered = await asyncio.gather(*(render(helm, r) for r in renders))
        out: list[Pull] = []
        notes: list[str] = []
        for r, docs in zip(renders, rendered, strict=True):
            out += pod_template_pulls(r.chart, docs)
            if r.chart == "gpu-operator":
                operands, said = operand_pulls(r.chart, docs, a)
                out += operands
                notes += said
        return out + sample_pulls(a), notes

    pulls, notes = await pulls_of(answers)
    notes = list(dict.fromkeys(notes + registry_notes(pulls, answers.images)))
    if not answers.images.registry:
        return pulls, None, notes
    upstream, _ = await pulls_of(without_registry(answers))
    return pulls, upstream, notes


def run_images(answers_path: Path, as_json: bool) -> int:
    """The command: the list on stdout (lines, or one JSON document), notes on stderr."""
    from installer.answers.model import load_answers
    from installer.charts.helm import find_helm, helm_version
    from installer.textsafe import display

    answers = load_answers(answers_path)
    helm = find_helm(None, None)  # `helm template` needs no cluster

    async def run() -> tuple[str, list[Pull], list[Pull] | None, list[str]]:
        version = await helm_version(helm)
        return (version, *await collect(answers, helm))

    version, pulls, upstream, notes = asyncio.run(run())
    listed = listing(pulls, upstream)
    kd, op = answers.kata_deploy, answers.gpu_operator
    header = (f"kata-deploy {kd.version or ''} ({kd.chart.describe()}) and gpu-operator "
              f"{op.version or ''} ({op.chart.describe()}), rendered with helm {version}")
    if as_json:
        print(json.dumps({"rendered": header, "images": [e.to_json() for e in listed],
                          "notes": notes}, indent=2))
        return 0
    for note in [header, *notes]:
        print(f"# {display(note)}", file=sys.stderr)
    for entry in listed:
        print(display(entry.line()))
    return 0
