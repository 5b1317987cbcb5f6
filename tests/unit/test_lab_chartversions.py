"""The lab's stand-in chart values per supported version (tests/lab/chartversions.py)."""

from __future__ import annotations

import yaml

from installer.answers.versions import GPU_OPERATOR_VERSIONS, KATA_DEPLOY_VERSIONS
from tests.lab import chartversions as cv


def test_the_base_values_are_3_29_0s_shims_exactly():
    """The hand-written base values and the per-version table cannot drift apart."""
    base = yaml.safe_load((cv.CHARTS_DIR / "kata-deploy" / "values.yaml").read_text())
    assert base["shims"] == cv.kata_deploy_shims("3.29.0")


def test_shims_come_and_go_at_the_tags_that_changed_them():
    at = {v: set(cv.kata_deploy_shims(v)) for v in KATA_DEPLOY_VERSIONS}
    assert "cloud-hypervisor" in at["3.29.0"] and "clh-runtime-rs" not in at["3.29.0"]
    assert "clh-runtime-rs" in at["3.30.0"] and "cloud-hypervisor" not in at["3.30.0"]
    assert "qemu-nvidia-gpu-runtime-rs" in at["3.31.0"] - at["3.30.0"]
    assert "qemu-nvidia-cpu" in at["4.0.0"] - at["3.32.0"]
    assert "openvmm-azure-runtime-rs" in at["4.1.0"] - at["4.0.0"]
    assert all("qemu-nvidia-gpu" in shims for shims in at.values())


def test_keys_appear_at_their_tags():
    values = {v: cv.chart_values("kata-deploy", v) for v in KATA_DEPLOY_VERSIONS}
    assert "deploymentMode" not in values["3.31.0"] and "health" in values["3.31.0"]
    assert values["3.32.0"]["deploymentMode"] == "daemonset"
    assert "nodeSelector" in values["4.0.0"]["job"] and "nodeSelector" not in values["4.1.0"]["job"]
    assert values["4.0.0"]["defaultShim"]["amd64"] == "qemu-runtime-rs"
    assert values["3.32.0"]["defaultShim"]["amd64"] == "qemu"
    assert all(v["nodeSelector"] == {} and v["tolerations"] == [] for v in values.values())
    assert all(v["snapshotter"]["setup"] == ["nydus"] for v in values.values())


def test_gpu_operator_images_follow_each_tag():
    values = {v: cv.chart_values("gpu-operator", v) for v in GPU_OPERATOR_VERSIONS}
    assert [values[v]["vfioManager"]["driverManager"]["version"] for v in GPU_OPERATOR_VERSIONS] \
        == ["v0.10.0", "v0.10.0", "v0.11.0", "v0.11.0", "v0.12.0"]
    assert values["v26.7.0"]["kataSandboxDevicePlugin"]["version"] == "v0.0.5"
    assert "hostNetwork" not in values["v26.3.0"]["vfioManager"]
    assert values["v26.3.1"]["vfioManager"]["hostNetwork"] is False
    assert values["v26.7.0"]["clusterPolicy"] == {"deployCR": True}
    assert "clusterPolicy" not in values["v26.3.3"]
