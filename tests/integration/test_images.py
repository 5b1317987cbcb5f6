"""`gpu-kata-installer images` with the real helm on the lab's stand-in charts (no cluster).

What is expected is read from the stand-in charts' own values (the real charts' defaults), so
the test checks the rendering and the operator's rules, not a copy of their output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installer.answers.model import parse_answers
from installer.charts.values import gpu_operator_values, kata_deploy_values
from tests.lab.binaries import LAB_DIR, _run_script

ROOT = Path(__file__).resolve().parents[2]
CHARTS = LAB_DIR / "charts"
MIRROR = "registry.example.com:5000/mirror"


@pytest.fixture(scope="module")
def tools() -> Path:
    return _run_script("tools.sh", None)


def chart_values(chart: str) -> tuple[dict, str]:
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    app = yaml.safe_load((CHARTS / chart / "Chart.yaml").read_text())["appVersion"]
    return values, app


def answers_file(tmp_path: Path, extra: dict | None = None) -> Path:
    data = {
        "apiVersion": "gpu-kata-installer.io/v1alpha1", "kind": "Answers",
        "nodes": {"items": [{"name": "gpu-node-1", "choice": "kata"},
                            {"name": "gpu-node-2", "choice": "kata"}]},
        "kataDeploy": {"chart": {"path": str(CHARTS / "kata-deploy")}, "version": "3.29.0"},
        "gpuOperator": {"chart": {"path": str(CHARTS / "gpu-operator")}, "version": "v26.3.1"},
        **(extra or {}),
    }
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def images(tools: Path, tmp_path: Path, answers: Path, *flags: str,
           helm: str = "helm") -> subprocess.CompletedProcess:
    env = {**os.environ, "GPU_KATA_HELM": str(tools / helm),
           "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "installer", "images", "--answers",
                           str(answers), *flags], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def ref(values: dict, component: str, app: str) -> str:
    c = values
    for key in component.split("."):
        c = c[key]
    return f"{c['repository']}/{c['image']}:{c.get('version') or app}"


def expected(sample: bool = True, container_stack: bool = True) -> set[str]:
    """The stand-ins' defaults: kata-deploy's DaemonSet and post-delete kubectl Job; the
    operator, NFD, and the operands for Kata nodes (and container nodes) from the
    ClusterPolicy coordinates; the CUDA sample."""
    kd, kd_app = chart_values("kata-deploy")
    op, op_app = chart_values("gpu-operator")
    nfd = op["node-feature-discovery"]["image"]
    out = {f"{kd['image']['reference']}:{kd_app}",
           f"{kd['kubectlImage']['reference']}:{kd['kubectlImage']['tag']}",
           f"{op['operator']['repository']}/{op['operator']['image']}:{op_app}",
           f"{nfd['repository']}:{nfd['tag']}"}
    out |= {ref(op, c, op_app) for c in ("validator", "vfioManager", "vfioManager.driverManager",
                                         "kataSandboxDevicePlugin", "ccManager")}
    if container_stack:  # the enabled ones: dcgm and nodeStatusExporter are off by default
        out |= {ref(op, c, op_app) for c in ("driver", "driver.manager", "toolkit",
                                             "devicePlugin", "dcgmExporter", "gfd",
                                             "migManager")}
    if sample:
        out.add("nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04")
    return out


@pytest.mark.parametrize("helm", ["helm", "helm3"])
def test_images_lists_what_both_charts_and_the_operator_pull_at_their_defaults(
        tools, tmp_path, helm):
    out = images(tools, tmp_path, answers_file(tmp_path), helm=helm)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    listed = [line.split("  ", 1)[0] for line in lines]
    assert listed == sorted(set(listed)), "one line per image, sorted"
    assert set(listed) == expected()
    by_image = dict(line.split("  ", 1) for line in lines)
    kd, _ = chart_values("kata-deploy")
    assert by_image[f"{kd['kubectlImage']['reference']}:latest"] == (
        "kata-deploy: Job/kata-deploy-rb-cleanup (helm hook post-delete) container rb-cleanup")
    op, op_app = chart_values("gpu-operator")
    assert "ClusterPolicy spec.ccManager (Kata nodes: nvidia-cc-manager)" in \
        by_image[ref(op, "ccManager", op_app)]
    assert "nodes chosen kata: gpu-node-1, gpu-node-2" in out.stderr
    assert "rendered with helm v" in out.stderr


def test_with_every_gpu_node_on_kata_and_no_sample_the_list_is_shorter(tools, tmp_path):
    answers = answers_file(tmp_path, {"nodes": {"default": "kata", "items": []},
                                      "sample": {"run": False}})
    out = images(tools, tmp_path, answers, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {e["image"] for e in doc["images"]} == expected(sample=False, container_stack=False)
    assert any("operands for container nodes: not counted" in n for n in doc["notes"])
    assert all(set(e) == {"image", "chart", "source"} for e in doc["images"])


def test_a_private_registry_moves_every_image_and_prints_what_to_push_where(tools, tmp_path):
    answers = answers_file(tmp_path, {"images": {"registry": MIRROR,
                                                 "pullSecrets": ["mirror-pull"]}})
    out = images(tools, tmp_path, answers, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {e["image"] for e in doc["images"]} == expected()
    for e in doc["images"]:  # the same path and tag under the mirror, pulled from there
        assert e["mirror"] == f"{MIRROR}/{e['image'].split('/', 1)[1]}", e
    # the chart gives its kubectl Job no pull secret: said, not hidden
    assert any("Job/kata-deploy-rb-cleanup" in n and "without a pull secret" in n
               for n in doc["notes"]), doc["notes"]
    assert not any(n.startswith("not pulled from") for n in doc["notes"]), doc["notes"]
    text = images(tools, tmp_path, answers)
    kd, kd_app = chart_values("kata-deploy")
    source = f"{kd['image']['reference']}:{kd_app}"
    assert f"{source} -> {MIRROR}/kata-containers/kata-deploy:{kd_app}  kata-deploy: " \
           "DaemonSet/kata-deploy container kube-kata" in text.stdout.splitlines()


def test_an_override_that_leaves_the_mirror_is_named(tools, tmp_path):
    answers = answers_file(tmp_path, {
        "images": {"registry": MIRROR},
        "gpuOperator": {"chart": {"path": str(CHARTS / "gpu-operator")}, "version": "v26.3.1",
                        "values": {"driver": {"repository": "other.example.com/drivers"}}}})
    out = images(tools, tmp_path, answers, "--json")
    assert out.returncode == 0, out.stderr
    notes = json.loads(out.stdout)["notes"]
    assert any(n.startswith(f"not pulled from {MIRROR}: other.example.com/drivers/driver:")
               for n in notes), notes


def test_the_rendered_charts_carry_the_pull_secrets_where_the_real_charts_take_them(
        tools, tmp_path):
    """The values the plan installs, rendered by helm: the secrets reach the pods' specs and
    each ClusterPolicy component (the operator copies them into its operands)."""
    a = parse_answers(answers_file(tmp_path, {"images": {"registry": MIRROR,
                                                         "pullSecrets": ["mirror-pull"]}})
                      .read_text())

    def render(chart: str, values: dict) -> list[dict]:
        path = tmp_path / f"{chart}.yaml"
        path.write_text(yaml.safe_dump(values))
        out = subprocess.run([str(tools / "helm"), "template", chart, str(CHARTS / chart),
                              "--values", str(path)], capture_output=True, text=True,
                             check=True).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    docs = render("kata-deploy", kata_deploy_values(a.kata_deploy, images=a.images))
    ds = next(d for d in docs if d["kind"] == "DaemonSet")
    assert ds["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "mirror-pull"}]
    docs = render("gpu-operator", gpu_operator_values(a))
    spec = next(d for d in docs if d["kind"] == "ClusterPolicy")["spec"]
    for component in ("validator", "driver", "toolkit", "devicePlugin", "vfioManager",
                      "kataSandboxDevicePlugin", "ccManager", "sandboxDevicePlugin"):
        assert spec[component]["imagePullSecrets"] == ["mirror-pull"], component
        assert spec[component]["repository"].startswith(f"{MIRROR}/nvidia"), component
    pods = [d for d in docs if d["kind"] in ("Deployment", "DaemonSet")]
    assert pods and all(d["spec"]["template"]["spec"]["imagePullSecrets"] ==
                        [{"name": "mirror-pull"}] for d in pods)


@pytest.mark.parametrize(("change", "words"), [
    ({"kataDeploy": {"chart": {"path": "/nonexistent/kata-deploy"}, "version": "3.29.0"}},
     ("helm could not render the kata-deploy chart", "kataDeploy.chart",
      "helm could not get the chart", "fix: check kataDeploy.chart")),
    ({"gpuOperator": {"chart": {"path": str(CHARTS / "gpu-operator")}, "version": "v26.3.1",
                      "values": {"node-feature-discovery": {"image": "broken"}}}},
     ("helm could not render the gpu-operator chart", "gpuOperator:",
      "the chart rejected the values", "fix: correct gpuOperator.values")),
])
def test_a_chart_helm_cannot_render_exits_2_naming_the_key_and_the_fix(tools, tmp_path,
                                                                       change, words):
    out = images(tools, tmp_path, answers_file(tmp_path, change))
    assert out.returncode == 2, out.stdout + out.stderr
    for w in words:
        assert w in out.stderr, (w, out.stderr)
    assert out.stdout == "" and "Traceback" not in out.stderr
