"""Each trap from the guide (domain.md section 2) pinned, with the reason in the test's name."""

from __future__ import annotations

from installer.answers.model import parse_answers
from installer.charts.values import gpu_operator_values, kata_deploy_values, value_warnings
from tests.unit.test_answers import BASE


def answers(extra: str = ""):
    return parse_answers(BASE + extra)


def test_kata_deploy_nfd_uses_the_real_subchart_key_because_the_chart_has_no_nfd_key():
    values = kata_deploy_values(answers().kata_deploy)
    assert values["node-feature-discovery"] == {"enabled": False}
    assert "nfd" not in values


def test_kata_deploy_installs_only_the_gpu_shim_because_defaults_create_15_runtime_classes():
    values = kata_deploy_values(answers().kata_deploy)
    assert values["shims"] == {"disableAll": True, "qemu-nvidia-gpu": {"enabled": True}}
    assert values["defaultShim"] == {"amd64": "qemu-nvidia-gpu"}
    assert values["runtimeClasses"] == {"createDefault": False}


def test_kata_deploy_pins_daemonset_mode_from_3_32_because_job_mode_has_no_daemonset():
    old = kata_deploy_values(answers().kata_deploy)
    new = kata_deploy_values(parse_answers(BASE.replace("3.29.0", "3.32.0")).kata_deploy)
    assert "deploymentMode" not in old
    assert new["deploymentMode"] == "daemonset"


def test_operator_mode_is_kata_because_the_kubevirt_default_writes_no_cdi_spec():
    sw = gpu_operator_values(answers())["sandboxWorkloads"]
    assert sw == {"enabled": True, "mode": "kata"}


def test_operator_never_enables_the_deprecated_kata_manager_beside_kata_deploy():
    assert gpu_operator_values(answers())["kataManager"] == {"enabled": False}


def test_operator_nfd_rules_on_because_the_guide_sets_nodefeaturerules():
    assert gpu_operator_values(answers())["nfd"] == {"enabled": True, "nodefeaturerules": True}


def test_per_model_naming_keeps_the_empty_string_because_empty_means_per_model_names():
    a = parse_answers(BASE.replace("gpuOperator: {version: v26.3.1}",
                                   "gpuOperator: {version: v26.3.1, resourceNaming: per-model, "
                                   "nvswitchNaming: per-model}"))
    env = gpu_operator_values(a)["kataSandboxDevicePlugin"]["env"]
    assert {"name": "P_GPU_ALIAS", "value": ""} in env
    assert {"name": "NVSWITCH_ALIAS", "value": ""} in env
    assert all(e["value"] == "" and e["value"] is not None for e in env)


def test_pgpu_naming_leaves_the_alias_unset_because_unset_gives_nvidia_com_pgpu():
    assert "env" not in gpu_operator_values(answers())["kataSandboxDevicePlugin"]


def test_cluster_default_kata_sets_default_workload_vm_passthrough():
    a = parse_answers(BASE + "nodes: {default: kata}\n")
    assert gpu_operator_values(a)["sandboxWorkloads"]["defaultWorkload"] == "vm-passthrough"
    assert "defaultWorkload" not in gpu_operator_values(answers())["sandboxWorkloads"]


def test_cc_mode_off_sets_cc_manager_default_mode_because_cc_mode_breaks_plain_kata_pods():
    a = parse_answers(BASE.replace("gpuOperator: {version: v26.3.1}",
                                   "gpuOperator: {version: v26.3.1, ccMode: 'off'}"))
    assert gpu_operator_values(a)["ccManager"] == {"enabled": True, "defaultMode": "off"}


def test_extra_values_merge_last_and_a_kubevirt_override_is_warned_about():
    a = parse_answers(BASE.replace(
        "gpuOperator: {version: v26.3.1}",
        "gpuOperator: {version: v26.3.1, values: {sandboxWorkloads: {mode: kubevirt}, "
        "operator: {resources: {}}}}"))
    values = gpu_operator_values(a)
    assert values["sandboxWorkloads"] == {"enabled": True, "mode": "kubevirt"}
    assert values["operator"] == {"resources": {}}
    assert any("mode='kubevirt'" in w for w in value_warnings(a))
    assert value_warnings(answers()) == []


def test_the_guides_nfd_key_on_kata_deploy_is_flagged_as_silently_ignored():
    a = parse_answers(BASE.replace(
        "kataDeploy: {version: 3.29.0}",
        "kataDeploy: {version: 3.29.0, values: {nfd: {enabled: false}}}"))
    assert any("node-feature-discovery.enabled" in w for w in value_warnings(a))
