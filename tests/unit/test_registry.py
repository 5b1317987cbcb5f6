"""A private registry in the answers: the values that point each chart's images at it, per
chart version (the keys each chart has at that version), and how references are moved."""

from __future__ import annotations

import pytest

from installer.answers.model import Images, parse_answers
from installer.answers.versions import GPU_OPERATOR_VERSIONS, KATA_DEPLOY_VERSIONS
from installer.charts.registry import (
    GPU_OPERATOR_REPOSITORIES,
    gpu_operator_image_values,
    kata_deploy_image_values,
    mirror_of,
    registry_host,
)
from installer.charts.values import gpu_operator_values, kata_deploy_values
from installer.cluster.facts import Facts
from installer.engine.plan import build_plan
from installer.engine.steps.sample import manifest
from tests.unit.test_answers import BASE

MIRROR = Images(registry="registry.example.com:5000/mirror", pull_secrets=["pull-a"])


@pytest.mark.parametrize(("reference", "mirrored"), [
    ("nvcr.io/nvidia/gpu-operator:v26.7.0",
     "registry.example.com:5000/mirror/nvidia/gpu-operator:v26.7.0"),
    ("nvcr.io/nvidia/cloud-native", "registry.example.com:5000/mirror/nvidia/cloud-native"),
    ("quay.io/kata-containers/kata-deploy@sha256:" + "ab" * 32,
     "registry.example.com:5000/mirror/kata-containers/kata-deploy@sha256:" + "ab" * 32),
    ("localhost:5000/x/y:1", "registry.example.com:5000/mirror/x/y:1"),
    # Docker Hub, as a container runtime reads a name with no registry host in it
    ("busybox:1.36", "registry.example.com:5000/mirror/library/busybox:1.36"),
    ("bitnami/kubectl:1.30", "registry.example.com:5000/mirror/bitnami/kubectl:1.30"),
    ("nvcr.io", "registry.example.com:5000/mirror"),
    # already under the registry (an override the operator pointed there): not moved twice
    ("registry.example.com:5000/mirror/nvidia/driver:580",
     "registry.example.com:5000/mirror/nvidia/driver:580"),
])
def test_a_mirrored_reference_keeps_its_path_and_tag_and_drops_only_the_host(reference,
                                                                              mirrored):
    assert mirror_of(reference, MIRROR.registry) == mirrored


def test_the_registry_host_is_the_first_part_only_with_a_dot_a_port_or_localhost():
    assert registry_host("nvcr.io/nvidia/x") == ("nvcr.io", "nvidia/x")
    assert registry_host("localhost/x") == ("localhost", "x")
    assert registry_host("nvidia/x") == ("docker.io", "nvidia/x")


def test_no_registry_and_no_secrets_change_no_value_of_either_chart():
    for version in KATA_DEPLOY_VERSIONS:
        assert kata_deploy_image_values(version, Images()) == {}
    for version in GPU_OPERATOR_VERSIONS:
        assert gpu_operator_image_values(version, Images()) == {}


@pytest.mark.parametrize("version", KATA_DEPLOY_VERSIONS)
def test_kata_deploy_images_move_by_the_keys_its_chart_has_at_that_version(version):
    """values.yaml at 3.29.0 - 4.1.0: image and kubectlImage everywhere; monitor and the
    job-mode dispatcher from 3.32.0; the vendored NFD sub-chart in 4.1.0."""
    values = kata_deploy_image_values(version, MIRROR)
    r = MIRROR.registry
    assert values["image"] == {"reference": f"{r}/kata-containers/kata-deploy"}
    assert values["kubectlImage"] == {"reference": f"{r}/kata-containers/kubectl"}
    assert values["imagePullSecrets"] == [{"name": "pull-a"}]  # a pod spec's list
    from_3_32 = version not in ("3.29.0", "3.30.0", "3.31.0")
    assert ("monitor" in values) == from_3_32 and ("job" in values) == from_3_32
    if from_3_32:
        assert values["monitor"]["image"]["reference"] == f"{r}/kata-containers/kata-monitor"
        assert values["job"]["dispatcherImage"]["reference"] == \
            f"{r}/kata-containers/kata-deploy-job-dispatcher"
    assert ("node-feature-discovery" in values) == (version == "4.1.0")
    # the tags stay the chart's (its appVersion, kubectl's `latest`)
    assert all("tag" not in v for v in values.values() if isinstance(v, dict))


@pytest.mark.parametrize("version", GPU_OPERATOR_VERSIONS)
def test_every_gpu_operator_component_moves_with_its_secrets(version):
    values = gpu_operator_image_values(version, MIRROR)
    r = MIRROR.registry
    assert values["operator"] == {"repository": f"{r}/nvidia", "imagePullSecrets": ["pull-a"]}
    assert values["kataSandboxDevicePlugin"]["repository"] == f"{r}/nvidia/cloud-native"
    assert values["vfioManager"]["driverManager"] == {"repository": f"{r}/nvidia/cloud-native"}
    assert values["driver"]["manager"] == {"repository": f"{r}/nvidia/cloud-native"}
    assert values["toolkit"]["repository"] == f"{r}/nvidia/k8s"
    assert values["ccManager"]["imagePullSecrets"] == ["pull-a"]  # the CRD's []string
    assert values["node-feature-discovery"] == {
        "image": {"repository": f"{r}/nfd/node-feature-discovery"},
        "imagePullSecrets": [{"name": "pull-a"}]}
    # no public vGPU manager image: its repository stays the operator's to set
    assert "repository" not in values["vgpuManager"]
    assert ("draDriver" in values) == (version == "v26.7.0")
    moved = {path for path, _, _ in GPU_OPERATOR_REPOSITORIES}
    assert len(moved) >= 20


def test_secrets_alone_keep_the_charts_own_registries():
    values = gpu_operator_image_values("v26.7.0", Images(pull_secrets=["nvcr"]))
    assert values["devicePlugin"] == {"imagePullSecrets": ["nvcr"]}
    assert "repository" not in values["operator"]
    assert kata_deploy_image_values("3.29.0", Images(pull_secrets=["nvcr"])) == {
        "imagePullSecrets": [{"name": "nvcr"}]}


REGISTRY = """\
images:
  registry: registry.example.com/mirror
  pullSecrets: [pull-a]
"""


def test_the_answers_registry_reaches_both_charts_values_and_extra_values_still_win():
    answers = parse_answers(BASE.replace(
        "gpuOperator: {version: v26.3.1}",
        "gpuOperator: {version: v26.3.1, values: {driver: {repository: my.io/drivers}}}")
        + REGISTRY)
    op = gpu_operator_values(answers)
    assert op["validator"]["repository"] == "registry.example.com/mirror/nvidia"
    assert op["driver"]["repository"] == "my.io/drivers"  # the operator's own value
    assert op["sandboxWorkloads"] == {"enabled": True, "mode": "kata"}  # the rest unchanged
    kd = kata_deploy_values(answers.kata_deploy, images=answers.images)
    assert kd["image"]["reference"] == "registry.example.com/mirror/kata-containers/kata-deploy"
    assert kd["node-feature-discovery"] == {"enabled": False}


def test_without_images_the_values_are_what_they_were():
    answers = parse_answers(BASE)
    assert "imagePullSecrets" not in kata_deploy_values(answers.kata_deploy)
    assert "repository" not in gpu_operator_values(answers).get("validator", {})


def test_the_plan_pulls_the_sample_from_the_mirror_with_the_secrets():
    plan = build_plan(parse_answers(BASE + REGISTRY), Facts(cluster=None))
    step = next(s for s in plan.steps if s.id == "sample/cuda-vectoradd")
    assert step.params.image.startswith("registry.example.com/mirror/nvidia/k8s/cuda-sample:")
    pod = manifest(step.params, "nvidia.com/pgpu")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "pull-a"}]
    helm = {s.id: s.params.values for s in plan.steps if s.action == "helm"}
    assert helm["install/kata-deploy"]["imagePullSecrets"] == [{"name": "pull-a"}]
    plain = build_plan(parse_answers(BASE), Facts(cluster=None))
    step = next(s for s in plain.steps if s.id == "sample/cuda-vectoradd")
    assert step.params.pull_secrets is None
    (shown,) = (d for d in plain.to_dict()["steps"] if d["id"] == "sample/cuda-vectoradd")
    assert "pullSecrets" not in shown["params"]
    assert "imagePullSecrets" not in manifest(step.params, "nvidia.com/pgpu")["spec"]
