"""A private registry for both charts (air-gapped installs): the values that point every
image at it, per chart and version. Pure, like installer/charts/values.py, which merges these under
the operator's own extra values (so an override still wins).

The mirror keeps each image's path and tag and drops only its registry host:
`nvcr.io/nvidia/gpu-operator:v26.7.0` is pulled as
`registry.example.com/mirror/nvidia/gpu-operator:v26.7.0`. `gpu-kata-installer images`
prints these pairs, so the operator knows what to copy where (e.g. with `skopeo copy` or
`crane copy`).

Only keys the chart has at that version are set; each table names the chart file it was
read from. The defaults are the charts' own: a value the operator overrides in
`kataDeploy.values` / `gpuOperator.values` is theirs to point at the mirror, and `images`
warns about any image that is then not under the registry.
"""

from __future__ import annotations

from typing import Any

from installer.answers.model import Images
from installer.answers.versions import chart_has

DOCKER_HUB = "docker.io"


def registry_host(reference: str) -> tuple[str, str]:
    """(registry host, the rest) of an image reference or repository, as container runtimes
    read it: the first part is a host only with a dot or a port in it, or as `localhost`;
    otherwise the image is Docker Hub's (a one-part name under `library/`). A repository
    prefix may be a host alone."""
    first, sep, rest = reference.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    if not sep and (first == "localhost" or ("." in first and ":" not in first)):
        return first, ""  # a repository that is only a host (a chart's `repository: nvcr.io`)
    return DOCKER_HUB, reference if sep else f"library/{reference}"


def mirror_of(reference: str, registry: str) -> str:
    """`reference` (an image with tag or digest, or a bare repository) under `registry`, its
    path and tag kept. One already under the registry is returned as it is, so a value the
    operator pointed at the mirror themselves is not moved twice."""
    if reference == registry or reference.startswith(f"{registry}/"):
        return reference
    _, path = registry_host(reference)
    return f"{registry}/{path}" if path else registry


def under_registry(reference: str, registry: str) -> bool:
    return reference.startswith(f"{registry}/")


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a dotted `path` in nested dicts, making the parents it needs."""
    *parents, leaf = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


# kata-deploy: values path of an image's `reference` -> the chart's default, and the first
# version that has it (tools/packaging/kata-deploy/helm-chart/kata-deploy/values.yaml at
# 3.29.0 - 4.1.0; the tag - the chart's appVersion when empty - stays the chart's).
# `kubectlImage` runs the post-delete RBAC cleanup Job (templates/kata-cleanup-rbac-job.yaml,
# all tags) and the verification Job; `monitor.image` and `job.dispatcherImage` exist from
# 3.32.0 (templates/kata-monitor.yaml, kata-deploy-install-job.yaml).
KATA_DEPLOY_REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("image", "quay.io/kata-containers/kata-deploy", "3.29.0"),
    ("kubectlImage", "quay.io/kata-containers/kubectl", "3.29.0"),
    ("monitor.image", "quay.io/kata-containers/kata-monitor", "3.32.0"),
    ("job.dispatcherImage", "quay.io/kata-containers/kata-deploy-job-dispatcher", "3.32.0"),
)
# 4.1.0 vendors the NFD chart (charts/node-feature-discovery-0.19.0.tgz, condition
# `node-feature-discovery.enabled`, which the installer keeps false): pointed at the mirror
# too, so re-enabling it in kataDeploy.values does not pull from the internet.
NFD_REPOSITORY = "registry.k8s.io/nfd/node-feature-discovery"
KATA_DEPLOY_NFD_FROM = "4.1.0"


def kata_deploy_image_values(version: str | None, images: Images) -> dict[str, Any]:
    """kata-deploy values for the registry and pull secrets in `images` ({} when unset).
    The chart takes pull secrets as a pod spec's list (`- name: x`, templates/kata-deploy.yaml
    `toYaml .Values.imagePullSecrets`); its kubectl Jobs take none (3.29.0 - 4.1.0)."""
    values: dict[str, Any] = {}
    if images.registry:
        for path, default, since in KATA_DEPLOY_REFERENCES:
            if chart_has(version, since):
                _put(values, f"{path}.reference", mirror_of(default, images.registry))
    secrets = [{"name": s} for s in images.pull_secrets]
    if secrets:
        values["imagePullSecrets"] = secrets
    if chart_has(version, KATA_DEPLOY_NFD_FROM) and (images.registry or secrets):
        values["node-feature-discovery"] = _nfd_values(images)
    return values


# GPU Operator: each component's `repository` default (deployments/gpu-operator/values.yaml,
# identical at v26.3.0 - v26.7.0 but for `draDriver`, new in v26.7.0). The chart renders
# them into the ClusterPolicy (templates/clusterpolicy.yaml), where the operator joins
# repository/image:version (api/nvidia/v1/clusterpolicy_types.go `imagePath`); `operator`
# is the chart's own Deployment and its CRD-upgrade hook Job (templates/_helpers.tpl
# `gpu-operator.fullimage`). `vgpuManager` has no public image (repository "") and
# `kataManager` none at all: left as they are.
GPU_OPERATOR_REPOSITORIES: tuple[tuple[str, str, str], ...] = (
    ("operator", "nvcr.io/nvidia", "26.3.0"),
    ("validator", "nvcr.io/nvidia", "26.3.0"),
    ("driver", "nvcr.io/nvidia", "26.3.0"),
    ("driver.manager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("toolkit", "nvcr.io/nvidia/k8s", "26.3.0"),
    ("devicePlugin", "nvcr.io/nvidia", "26.3.0"),
    ("dcgm", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("dcgmExporter", "nvcr.io/nvidia/k8s", "26.3.0"),
    ("gfd", "nvcr.io/nvidia", "26.3.0"),
    ("migManager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("nodeStatusExporter", "nvcr.io/nvidia", "26.3.0"),
    ("gds", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("gdrcopy", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("vgpuManager.driverManager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("vgpuDeviceManager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("vfioManager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("vfioManager.driverManager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("sandboxDevicePlugin", "nvcr.io/nvidia", "26.3.0"),
    ("kataSandboxDevicePlugin", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("ccManager", "nvcr.io/nvidia/cloud-native", "26.3.0"),
    ("draDriver", "nvcr.io/nvidia", "26.7.0"),
)
# Components whose `imagePullSecrets` the chart renders (a list of Secret names: the CRD's
# `[]string`; the operator Deployment's `- name: {{ . }}`), templates/clusterpolicy.yaml and
# operator.yaml at v26.3.0 - v26.7.0. The driver manager init containers have no key of their
# own: they pull with their pod's secrets (driver, vfioManager, vgpuManager).
GPU_OPERATOR_PULL_SECRETS: tuple[tuple[str, str], ...] = (
    *((c, "26.3.0") for c in (
        "operator", "validator", "driver", "toolkit", "devicePlugin", "dcgm", "dcgmExporter",
        "gfd", "migManager", "nodeStatusExporter", "gds", "gdrcopy", "vgpuManager",
        "vgpuDeviceManager", "vfioManager", "kataManager", "sandboxDevicePlugin",
        "kataSandboxDevicePlugin", "ccManager")),
    ("draDriver", "26.7.0"),
)


def gpu_operator_image_values(version: str | None, images: Images) -> dict[str, Any]:
    """GPU Operator values for the registry and pull secrets in `images` ({} when unset):
    every component's repository, the NFD sub-chart's image (its `image.repository`,
    charts/node-feature-discovery/values.yaml 0.18.3 - 0.19.0; the tag stays its appVersion)
    and every component's pull secrets."""
    values: dict[str, Any] = {}
    if images.registry:
        for path, default, since in GPU_OPERATOR_REPOSITORIES:
            if chart_has(version, since):
                _put(values, f"{path}.repository", mirror_of(default, images.registry))
    if images.pull_secrets:
        for component, since in GPU_OPERATOR_PULL_SECRETS:
            if chart_has(version, since):
                _put(values, f"{component}.imagePullSecrets", list(images.pull_secrets))
    if images.registry or images.pull_secrets:
        values["node-feature-discovery"] = _nfd_values(images)
    return values


def _nfd_values(images: Images) -> dict[str, Any]:
    """The NFD chart's image and pull secrets (a pod spec's list, `- name: x`)."""
    out: dict[str, Any] = {}
    if images.registry:
        out["image"] = {"repository": mirror_of(NFD_REPOSITORY, images.registry)}
    if images.pull_secrets:
        out["imagePullSecrets"] = [{"name": s} for s in images.pull_secrets]
    return out
