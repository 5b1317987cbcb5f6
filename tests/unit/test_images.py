"""Reading the images out of rendered manifests and the ClusterPolicy (pure: small YAML in)."""

from __future__ import annotations

import textwrap

import pytest

from installer.answers.model import Images, parse_answers
from installer.commands.images import (
    Pull,
    image_path,
    listing,
    operand_pulls,
    parse_manifests,
    pod_template_pulls,
    registry_notes,
    stacks,
    without_registry,
)
from installer.errors import UserError
from tests.unit.test_answers import BASE

WORKLOADS = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: kata-deploy}
    spec:
      template:
        spec:
          imagePullSecrets: [{name: pull-a}]
          initContainers: [{name: prep, image: "quay.io/a/init:1"}]
          containers:
            - {name: kube-kata, image: "quay.io/kata-containers/kata-deploy:3.29.0"}
            - {name: no-image}
          ephemeralContainers: [{name: debug, image: "busybox:1.36"}]
    ---
    # an empty document between the separators, as helm leaves them
    ---
    apiVersion: batch/v1
    kind: Job
    metadata:
      name: kata-deploy-rb-cleanup
      annotations: {helm.sh/hook: post-delete}
    spec:
      template:
        spec:
          containers: [{name: rb-cleanup, image: "quay.io/kata-containers/kubectl:latest"}]
    ---
    apiVersion: batch/v1
    kind: CronJob
    metadata: {name: nightly}
    spec:
      jobTemplate:
        spec:
          template:
            spec:
              containers: [{name: c, image: "r.io/cron:2"}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: single}
    spec:
      containers: [{name: c, image: "r.io/pod:3"}]
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: kata-deploy-job-templates}
    data:
      install-job.yaml: |
        apiVersion: batch/v1
        kind: Job
        metadata: {name: kata-deploy-install-NODE}
        spec:
          template:
            spec:
              initContainers:
                - {name: host-check, image: "quay.io/kata-containers/kata-deploy:3.32.0"}
              containers: [{name: cri, image: "quay.io/kata-containers/kata-deploy:3.32.0"}]
      settings: "image: not a manifest"
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: no-pods}
    spec: {ports: [{port: 80}]}
    """)


def test_every_container_kind_of_every_pod_template_is_read_with_where_it_is():
    pulls = pod_template_pulls("kata-deploy", parse_manifests(WORKLOADS, "t"))
    assert [(p.where, p.image) for p in pulls] == [
        ("DaemonSet/kata-deploy init container prep", "quay.io/a/init:1"),
        ("DaemonSet/kata-deploy container kube-kata", "quay.io/kata-containers/kata-deploy:3.29.0"),
        ("DaemonSet/kata-deploy ephemeral container debug", "busybox:1.36"),
        ("Job/kata-deploy-rb-cleanup (helm hook post-delete) container rb-cleanup",
         "quay.io/kata-containers/kubectl:latest"),
        ("CronJob/nightly container c", "r.io/cron:2"),
        ("Pod/single container c", "r.io/pod:3"),
        ("ConfigMap/kata-deploy-job-templates key install-job.yaml: "
         "Job/kata-deploy-install-NODE init container host-check",
         "quay.io/kata-containers/kata-deploy:3.32.0"),
        ("ConfigMap/kata-deploy-job-templates key install-job.yaml: "
         "Job/kata-deploy-install-NODE container cri",
         "quay.io/kata-containers/kata-deploy:3.32.0"),
    ]
    assert all(p.chart == "kata-deploy" for p in pulls)
    # the DaemonSet names a pull secret; the hook Job names none
    assert [p.with_secrets for p in pulls[:4]] == [True, True, True, False]


def test_unreadable_rendered_output_is_bad_input_not_a_traceback():
    with pytest.raises(UserError) as info:
        parse_manifests("a: [unclosed", "helm template kata-deploy")
    assert "could not be read" in str(info.value) and "helm template" in str(info.value)


@pytest.mark.parametrize(("coordinates", "image"), [
    ({"repository": "nvcr.io/nvidia", "image": "driver", "version": "580.126.20"},
     "nvcr.io/nvidia/driver:580.126.20"),
    ({"repository": "nvcr.io/nvidia", "image": "driver", "version": "sha256:" + "0" * 64},
     "nvcr.io/nvidia/driver@sha256:" + "0" * 64),
    ({"image": "r.io/x/y@sha256:" + "1" * 64}, "r.io/x/y@sha256:" + "1" * 64),
    ({"imagePullPolicy": "IfNotPresent"}, None),
    ({"repository": "", "image": "vgpu-manager", "version": ""}, "vgpu-manager"),
])
def test_the_operators_rule_joins_repository_image_and_version(coordinates, image):
    assert image_path(coordinates) == image


def test_coordinates_the_operator_refuses_are_said_so():
    with pytest.raises(ValueError, match="must all be set"):
        image_path({"repository": "nvcr.io/nvidia", "image": "gpu-operator", "version": ""})


POLICY = textwrap.dedent("""\
    apiVersion: nvidia.com/v1
    kind: ClusterPolicy
    metadata: {name: cluster-policy}
    spec:
      sandboxWorkloads: {enabled: true, defaultWorkload: container, mode: kata}
      validator: {repository: nvcr.io/nvidia, image: gpu-operator, version: v26.3.1}
      driver:
        enabled: true
        repository: nvcr.io/nvidia
        image: driver
        version: "580.126.20"
        manager: {repository: nvcr.io/nvidia/cloud-native, image: k8s-driver-manager,
                  version: v0.10.0}
      toolkit: {enabled: true, repository: nvcr.io/nvidia/k8s, image: container-toolkit,
                version: v1.19.0}
      devicePlugin: {enabled: false, repository: nvcr.io/nvidia, image: k8s-device-plugin,
                     version: v0.19.0}
      dcgm: {enabled: false, repository: nvcr.io/nvidia/cloud-native, image: dcgm, version: "4"}
      dcgmExporter: {enabled: false}
      gfd: {enabled: false}
      migManager: {enabled: false}
      nodeStatusExporter: {enabled: false}
      vfioManager:
        enabled: true
        repository: nvcr.io/nvidia/cloud-native
        image: k8s-driver-manager
        version: v0.10.0
        driverManager: {repository: "", image: "", version: ""}
      kataSandboxDevicePlugin: {enabled: true, repository: nvcr.io/nvidia/cloud-native,
                                image: nvidia-sandbox-device-plugin, version: v0.0.3}
      sandboxDevicePlugin: {enabled: true, repository: nvcr.io/nvidia,
                            image: kubevirt-gpu-device-plugin, version: v1.5.0}
      ccManager: {enabled: false, repository: nvcr.io/nvidia/cloud-native,
                  image: k8s-cc-manager, version: v0.4.0}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: gpu-operator}
    spec:
      template:
        spec:
          containers:
            - name: gpu-operator
              image: nvcr.io/nvidia/gpu-operator:v26.3.1
              command: [gpu-operator]
              env:
                - {name: DRIVER_MANAGER_IMAGE,
                   value: "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.10.0"}
                - {name: OPERATOR_NAMESPACE, valueFrom: {fieldRef: {fieldPath: x}}}
    """)


def answers(extra: str = ""):
    return parse_answers(BASE + textwrap.dedent(extra))


def spec_of(text: str) -> dict:
    return next(d for d in parse_manifests(text, "t") if d["kind"] == "ClusterPolicy")["spec"]


def operand_images(text: str, a) -> dict[str, str]:
    pulls, _ = operand_pulls("gpu-operator", parse_manifests(text, "t"), a)
    return {p.where: p.image for p in pulls}


def test_kata_nodes_pull_the_sandbox_operands_and_container_nodes_the_container_stack():
    a = answers("nodes: {items: [{name: n1, choice: kata}, {name: n2, choice: traditional}]}\n")
    images = operand_images(POLICY, a)
    assert images == {
        "ClusterPolicy spec.validator (Kata nodes: nvidia-sandbox-validator, "
        "nvidia-kata-sandbox-device-plugin-daemonset)": "nvcr.io/nvidia/gpu-operator:v26.3.1",
        "ClusterPolicy spec.vfioManager (Kata nodes: nvidia-vfio-manager)":
            "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.10.0",
        # no coordinates: the operator's DRIVER_MANAGER_IMAGE, from its Deployment
        "ClusterPolicy spec.vfioManager.driverManager (Kata nodes: nvidia-vfio-manager)":
            "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.10.0",
        "ClusterPolicy spec.kataSandboxDevicePlugin (Kata nodes: "
        "nvidia-kata-sandbox-device-plugin-daemonset)":
            "nvcr.io/nvidia/cloud-native/nvidia-sandbox-device-plugin:v0.0.3",
        "ClusterPolicy spec.driver (container nodes: nvidia-driver-daemonset)":
            "nvcr.io/nvidia/driver:580.126.20",
        "ClusterPolicy spec.driver.manager (container nodes: nvidia-driver-daemonset)":
            "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.10.0",
        "ClusterPolicy spec.toolkit (container nodes: nvidia-container-toolkit-daemonset)":
            "nvcr.io/nvidia/k8s/container-toolkit:v1.19.0",
        "ClusterPolicy spec.validator (container nodes: nvidia-container-toolkit-daemonset, "
        "nvidia-operator-validator)": "nvcr.io/nvidia/gpu-operator:v26.3.1",
    }
    # disabled: device plugin, dcgm, cc-manager; kubevirt's plugin is not kata mode's


def test_with_every_gpu_node_on_kata_the_container_stack_is_not_pulled():
    a = answers("nodes: {default: kata, items: [{name: n1, choice: kata}]}\n")
    policy = POLICY.replace("defaultWorkload: container", "defaultWorkload: vm-passthrough")
    images = operand_images(policy, a)
    assert images and all("(Kata nodes:" in where for where in images)
    found = stacks(a, spec_of(policy))
    assert found.container is None and "nodes chosen kata: n1" in found.passthrough


def test_a_left_node_or_an_unlisted_default_counts_the_container_stack_and_says_why():
    found = stacks(answers("nodes: {items: [{name: n1, choice: kata}, {name: n3, choice: "
                           "leave}]}\n"), spec_of(POLICY))
    assert "nodes left as they are keep their own workload label: n3" in found.container
    assert "GPU nodes not listed in nodes.items default to containers" in found.container


def test_without_sandbox_workloads_every_node_runs_containers():
    policy = POLICY.replace("sandboxWorkloads: {enabled: true",
                            "sandboxWorkloads: {enabled: false")
    found = stacks(answers("nodes: {items: [{name: n1, choice: kata}]}\n"), spec_of(policy))
    assert found.passthrough is None and "every GPU node runs containers" in found.container


def test_kubevirt_mode_and_cc_manager_follow_the_operators_state_rules():
    a = answers("nodes: {default: kata}\n")
    policy = (POLICY.replace("defaultWorkload: container", "defaultWorkload: vm-passthrough")
              .replace("mode: kata", "mode: kubevirt")
              .replace("ccManager: {enabled: false", "ccManager: {enabled: true"))
    images = set(operand_images(policy, a).values())
    assert "nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.5.0" in images
    assert not any("nvidia-sandbox-device-plugin" in i or "cc-manager" in i for i in images)
    kata = policy.replace("mode: kubevirt", "mode: kata")
    images = set(operand_images(kata, a).values())
    assert "nvcr.io/nvidia/cloud-native/k8s-cc-manager:v0.4.0" in images
    assert "nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.5.0" not in images


def test_refused_coordinates_and_a_missing_policy_are_notes_not_images():
    policy = POLICY.replace("version: v26.3.1}", 'version: ""}')
    pulls, notes = operand_pulls("gpu-operator", parse_manifests(policy, "t"),
                                 answers("nodes: {default: kata}\n"))
    assert not any("spec.validator" in p.where for p in pulls)
    assert any("spec.validator: repository, image and version must all be set" in n
               for n in notes)
    pulls, notes = operand_pulls("gpu-operator", [], answers())
    assert pulls == [] and "rendered no ClusterPolicy" in notes[0]


def test_the_nvidiadriver_object_replaces_the_policys_driver_when_its_crd_is_used():
    policy = POLICY.replace("  driver:\n    enabled: true\n",
                            "  driver:\n    enabled: true\n    useNvidiaDriverCRD: true\n")
    assert policy != POLICY
    policy += textwrap.dedent("""\
        ---
        apiVersion: nvidia.com/v1alpha1
        kind: NVIDIADriver
        metadata: {name: default}
        spec:
          repository: nvcr.io/nvidia
          image: driver
          version: "595.91.07"
          manager: {repository: nvcr.io/nvidia/cloud-native, image: k8s-driver-manager,
                    version: v0.12.0}
        """)
    images = operand_images(policy, answers())
    assert images["NVIDIADriver/default driver (container nodes)"] == \
        "nvcr.io/nvidia/driver:595.91.07"
    assert "ClusterPolicy spec.driver (container nodes: nvidia-driver-daemonset)" not in images


def test_the_list_has_one_sorted_line_per_image_with_every_place_that_pulls_it():
    pulls = [Pull("gpu-operator", "b", "z.io/x:1"), Pull("kata-deploy", "a", "a.io/y:2"),
             Pull("gpu-operator", "c", "z.io/x:1"), Pull("gpu-operator", "c", "z.io/x:1")]
    listed = listing(pulls)
    assert [e.line() for e in listed] == ["a.io/y:2  kata-deploy: a",
                                          "z.io/x:1  gpu-operator: b; c"]
    assert listed[1].to_json() == {"image": "z.io/x:1", "chart": "gpu-operator",
                                   "source": "b; c"}


def test_with_a_registry_each_pulled_image_is_paired_with_the_upstream_one():
    mirror = [Pull("kata-deploy", "a", "m.io/k/y:2"), Pull("sample", "s", "m.io/s:1")]
    upstream = [Pull("kata-deploy", "a", "quay.io/k/y:2"), Pull("sample", "s", "nvcr.io/s:1")]
    listed = listing(mirror, upstream)
    assert [e.line() for e in listed] == ["nvcr.io/s:1 -> m.io/s:1  sample: s",
                                          "quay.io/k/y:2 -> m.io/k/y:2  kata-deploy: a"]
    assert listed[1].to_json()["mirror"] == "m.io/k/y:2"


def test_images_left_off_the_registry_or_pulled_without_secrets_are_named():
    images = Images(registry="m.io/mirror", pull_secrets=["p"])
    notes = registry_notes([Pull("kata-deploy", "a", "m.io/mirror/k:1"),
                            Pull("gpu-operator", "b", "nvcr.io/x:1"),
                            Pull("kata-deploy", "Job/j", "m.io/mirror/kubectl:1", False)],
                           images)
    assert notes == [
        "not pulled from m.io/mirror: nvcr.io/x:1 (gpu-operator: b); point it at the mirror "
        "in that chart's values",
        "kata-deploy: Job/j pulls m.io/mirror/kubectl:1 without a pull secret (the chart "
        "gives it none): the registry must serve it without credentials, or the nodes' "
        "container runtime must hold them"]
    assert registry_notes([Pull("a", "b", "nvcr.io/x:1", False)], Images()) == []


def test_the_upstream_render_keeps_everything_but_the_registry():
    a = answers("images: {registry: m.io/mirror, pullSecrets: [p]}\n")
    plain = without_registry(a)
    assert plain.images == Images(pull_secrets=["p"])
    assert plain.kata_deploy == a.kata_deploy and plain.nodes == a.nodes
