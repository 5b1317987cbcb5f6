"""The stand-in charts with the real helm (no cluster): lint, value keys, rendered objects."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from installer.answers.model import KataDeploy
from installer.answers.versions import GPU_OPERATOR_VERSIONS, KATA_DEPLOY_VERSIONS, parse
from installer.charts.values import kata_deploy_values
from tests.lab import chartversions, guide
from tests.lab.binaries import LAB_DIR, _run_script

CHARTS = LAB_DIR / "charts"


@pytest.fixture(scope="module")
def helm() -> str:
    return str(_run_script("tools.sh", None) / "helm")


@pytest.mark.parametrize(("binary", "major"), [("helm", "v4."), ("helm3", "v3.")])
async def test_the_installer_drives_both_helm_majors_the_lab_ships(binary, major):
    """Operators run helm 3 or 4; the installer reads the version before any change."""
    from installer.charts.helm import Helm, helm_version

    path = _run_script("tools.sh", None) / binary
    assert (await helm_version(Helm(str(path), "/dev/null", None))).startswith(major)


def render(helm: str, chart: str, *args: str, namespace: str = "default") -> list[dict]:
    out = subprocess.run(
        [helm, "template", chart, str(CHARTS / chart), "-n", namespace, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def named(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("chart", ["kata-deploy", "gpu-operator"])
def test_charts_lint(helm, chart):
    r = subprocess.run([helm, "lint", str(CHARTS / chart)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    warnings = [line for line in r.stdout.splitlines() if "[WARNING]" in line or "[ERROR]" in line]
    # the real gpu-operator chart's version carries a leading "v" too; helm warns about it
    assert all("is not a valid SemVerV2" in w for w in warnings), warnings


def test_kata_deploy_defaults_create_the_full_runtimeclass_set(helm):
    docs = render(helm, "kata-deploy")
    rcs = named(docs, "RuntimeClass")
    assert len(rcs) >= 15 and "kata-qemu" in rcs and "kata" not in rcs
    ds = named(docs, "DaemonSet")["kata-deploy"]
    assert ds["spec"]["template"]["metadata"]["labels"] == {"name": "kata-deploy"}
    assert ds["spec"]["template"]["spec"]["containers"][0]["name"] == "kube-kata"


def test_kata_deploy_guide_values(helm):
    docs = render(
        helm, "kata-deploy", *guide.set_args(guide.KATA_DEPLOY_SET), namespace="kata-system"
    )
    rcs = named(docs, "RuntimeClass")
    assert list(rcs) == ["kata-qemu-nvidia-gpu"]
    rc = rcs["kata-qemu-nvidia-gpu"]
    assert rc["handler"] == "kata-qemu-nvidia-gpu"
    assert rc["overhead"]["podFixed"] == {"memory": "10240Mi", "cpu": "1.0"}
    assert rc["scheduling"]["nodeSelector"] == {
        "katacontainers.io/kata-runtime": "true",
        "nvidia.com/cc.ready.state": "false",
    }
    assert "kata-system-node-feature-discovery-worker" not in named(docs, "DaemonSet")
    env = {
        e["name"]: e.get("value")
        for e in named(docs, "DaemonSet")["kata-deploy"]["spec"]["template"]["spec"]["containers"][
            0
        ]["env"]
    }
    assert env["SHIMS_X86_64"] == "qemu-nvidia-gpu"
    assert env["DEFAULT_SHIM_X86_64"] == "qemu-nvidia-gpu"


def test_kata_deploy_nfd_switch_is_the_real_key(helm):
    on = render(helm, "kata-deploy", "--set", "node-feature-discovery.enabled=true")
    assert "kata-deploy-node-feature-discovery-worker" in named(on, "DaemonSet")
    guide_key = render(helm, "kata-deploy", "--set", "nfd.enabled=true")  # ignored, as real
    assert "kata-deploy-node-feature-discovery-worker" not in named(guide_key, "DaemonSet")


def test_gpu_operator_guide_values(helm):
    docs = render(
        helm,
        "gpu-operator",
        *guide.set_args(guide.GPU_OPERATOR_SET),
        "--set",
        "kataSandboxDevicePlugin.env[0].name=P_GPU_ALIAS",
        "--set-string",
        "kataSandboxDevicePlugin.env[0].value=",
        "--set",
        "somethingUnknown.enabled=true",
        namespace="gpu-operator",
    )
    cp = named(docs, "ClusterPolicy")["cluster-policy"]
    spec = cp["spec"]
    assert spec["sandboxWorkloads"] == {
        "enabled": True,
        "defaultWorkload": "vm-passthrough",
        "mode": "kata",
    }
    assert spec["kataSandboxDevicePlugin"]["env"] == [{"name": "P_GPU_ALIAS", "value": ""}]
    assert spec["ccManager"]["defaultMode"] == "on" and spec["vfioManager"]["enabled"] is True
    assert spec["kataManager"]["enabled"] is False
    deploys = named(docs, "Deployment")
    assert (
        deploys["gpu-operator"]["spec"]["template"]["metadata"]["labels"]["app"] == "gpu-operator"
    )
    assert {
        "gpu-operator-node-feature-discovery-master",
        "gpu-operator-node-feature-discovery-gc",
    } <= set(deploys)
    assert "gpu-operator-node-feature-discovery-worker" in named(docs, "DaemonSet")
    assert "nvidia-nfd-nodefeaturerules" in named(docs, "NodeFeatureRule")


def test_gpu_operator_crd_has_status_subresource():
    crd = yaml.safe_load((CHARTS / "gpu-operator/crds/nvidia.com_clusterpolicies.yaml").read_text())
    assert crd["metadata"]["name"] == "clusterpolicies.nvidia.com"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_gpu_operator_defaults_match_the_real_chart(helm):
    values = yaml.safe_load(Path(CHARTS / "gpu-operator/values.yaml").read_text())
    assert values["sandboxWorkloads"] == {
        "enabled": False,
        "defaultWorkload": "container",
        "mode": "kubevirt",
    }
    assert values["kataManager"]["enabled"] is False
    assert values["nfd"] == {"enabled": True, "nodefeaturerules": False}
    assert values["ccManager"]["defaultMode"] == "on"
    docs = render(helm, "gpu-operator", "--set", "nfd.enabled=false")
    assert not [d for d in named(docs, "DaemonSet") if "node-feature-discovery" in d]


def test_kata_deploy_defaults_set_up_nydus_and_the_installers_values_select_kata_nodes_only(
        helm, tmp_path):
    """The real chart's defaults (3.29.0 - 4.1.0): nydus set up on the host, no selector.
    The installer's values, rendered by the real helm: neither."""
    def kata_deploy(docs: list[dict]) -> dict:
        return named(docs, "DaemonSet")["kata-deploy"]["spec"]["template"]["spec"]

    default = kata_deploy(render(helm, "kata-deploy"))
    env = {e["name"]: e.get("value") for e in default["containers"][0]["env"]}
    assert env["EXPERIMENTAL_SETUP_SNAPSHOTTER"] == "nydus"
    assert "nodeSelector" not in default and "tolerations" not in default

    from installer.answers.model import load_answers
    from installer.charts.values import kata_deploy_values

    answers = load_answers(Path(__file__).resolve().parents[2] / "installer" / "examples"
                           / "answers.yaml")
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(kata_deploy_values(answers.kata_deploy)))
    ours = kata_deploy(render(helm, "kata-deploy", "--values", str(values)))
    env = {e["name"]: e.get("value") for e in ours["containers"][0]["env"]}
    assert "EXPERIMENTAL_SETUP_SNAPSHOTTER" not in env
    assert ours["nodeSelector"] == {"nvidia.com/gpu.workload.config": "vm-passthrough"}


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, dict[str, str]]:
    return chartversions.write_all(tmp_path_factory.mktemp("charts"))


def render_path(helm: str, chart: str, *args: str) -> list[dict]:
    out = subprocess.run([helm, "template", "x", chart, "-n", "kata-system", *args],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize("version", KATA_DEPLOY_VERSIONS)
def test_kata_deploy_at_each_version_renders_what_that_tag_renders(helm, versions, version,
                                                                   tmp_path):
    """The installer's values for that version through the real helm: the DaemonSet and the
    GPU RuntimeClass as the real chart of that tag shapes them."""
    chart = versions["kata-deploy"][version]
    lint = subprocess.run([helm, "lint", chart], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(kata_deploy_values(KataDeploy(version=version))))
    docs = render_path(helm, chart, "--values", str(values))
    v = parse(version)  # compares with tuples as SemVer
    pod = named(docs, "DaemonSet")["kata-deploy"]["spec"]["template"]["spec"]
    kube_kata = pod["containers"][0]
    assert kube_kata["image"] == f"quay.io/kata-containers/kata-deploy:{version}"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.workload.config": "vm-passthrough"}
    assert ("readinessProbe" in kube_kata) == (v >= (3, 31, 0))
    assert pod.get("hostPID", False) == (v < (4, 1, 0))
    assert kube_kata["securityContext"]["privileged"] == (v < (4, 1, 0))
    env = {e["name"]: e.get("value") for e in kube_kata["env"]}
    assert "EXPERIMENTAL_SETUP_SNAPSHOTTER" not in env  # the installer's snapshotter.setup: []
    assert ("K8S_DISTRIBUTION" in env) == (v >= (4, 1, 0))
    rc = named(docs, "RuntimeClass")["kata-qemu-nvidia-gpu"]
    assert rc["overhead"]["podFixed"] == {"memory": "10240Mi", "cpu": "1.0"}
    annotations = rc["metadata"].get("annotations") or {}
    assert annotations.get("katacontainers.io/kata-version") == (
        version if v >= (3, 32, 0) else None)
    assert ("kata-deploy.katacontainers.io/default" in rc["scheduling"]["nodeSelector"]) == (
        v >= (4, 1, 0))


@pytest.mark.parametrize("version", ["3.31.0", "3.32.0"])
def test_job_mode_drops_the_daemonset_only_where_it_exists(helm, versions, version):
    docs = render_path(helm, versions["kata-deploy"][version], "--set", "deploymentMode=job")
    assert ("kata-deploy" in named(docs, "DaemonSet")) == (version == "3.31.0")


@pytest.mark.parametrize("version", GPU_OPERATOR_VERSIONS)
def test_gpu_operator_at_each_version_carries_that_tags_images(helm, versions, version):
    docs = render_path(helm, versions["gpu-operator"][version])
    spec = named(docs, "ClusterPolicy")["cluster-policy"]["spec"]
    assert spec["validator"]["version"] == version  # defaults to the chart's appVersion
    driver_manager = chartversions.IMAGE_VERSIONS[version]["vfioManager"]
    assert spec["vfioManager"]["image"] == "k8s-driver-manager"
    assert spec["vfioManager"]["driverManager"]["version"] == driver_manager
    operator = named(docs, "Deployment")["gpu-operator"]["spec"]["template"]["spec"]
    assert operator["containers"][0]["image"] == f"nvcr.io/nvidia/gpu-operator:{version}"
    if version == "v26.7.0":
        off = render_path(helm, versions["gpu-operator"][version],
                          "--set", "clusterPolicy.deployCR=false")
        assert "cluster-policy" not in named(off, "ClusterPolicy")
