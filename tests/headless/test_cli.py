"""The command line as an operator meets it: real processes, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "installer" / "examples"


def cli(*args: str, env: dict[str, str] | None = None,
        module: str = "screens.cli") -> subprocess.CompletedProcess:
    """The console script's module (what `gpu-kata-installer` runs), or another entry point."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                          text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.fixture(autouse=True)
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def test_help_lists_exit_codes():
    out = cli("--help")
    assert out.returncode == 0
    assert "130  interrupted" in out.stdout and "--answers FILE" in out.stdout


@pytest.mark.parametrize(("binary", "major"), [("helm", "v4."), ("helm3", "v3.")])
def test_version_names_this_build_and_the_helm_it_would_drive(binary, major):
    from importlib.metadata import version

    from tests.lab.binaries import _run_script

    helm = _run_script("tools.sh", None) / binary
    out = cli("--version", env={"GPU_KATA_HELM": str(helm)})
    assert out.returncode == 0, out.stderr
    ours, found = out.stdout.splitlines()
    assert ours == f"gpu-kata-installer {version('gpu-kata-installer')}"
    assert found.startswith(f"helm: {helm} {major}")


def test_version_without_helm_says_how_to_get_one(tmp_path):
    out = cli("--version", env={"PATH": str(tmp_path), "GPU_KATA_HELM": ""})
    assert out.returncode == 0
    assert out.stdout.splitlines()[1] == ("helm: no `helm` executable on PATH (install helm 3 "
                                          "or 4, or set GPU_KATA_HELM to its path)")


def test_committed_schema_is_current():
    out = cli("answers", "schema")
    committed = (ROOT / "installer/answers/answers.schema.json").read_text()
    assert json.loads(out.stdout) == json.loads(committed)


def test_init_prints_a_template_that_validates(tmp_path):
    out = cli("answers", "init")
    path = tmp_path / "a.yaml"
    path.write_text(out.stdout)
    assert cli("answers", "validate", str(path)).returncode == 0


def test_bad_answers_file_exits_2_with_path_and_fix_and_no_traceback(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text((EXAMPLES / "answers.yaml").read_text().replace("port: 22", "port: many"))
    out = cli("--answers", str(path), "--dry-run")
    assert out.returncode == 2
    assert "ssh.port (line 15)" in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_missing_answers_file_exits_2():
    out = cli("--answers", "/nonexistent/answers.yaml")
    assert out.returncode == 2 and "file not found" in out.stderr


def test_unknown_flag_exits_2():
    out = cli("--frobnicate")
    assert out.returncode == 2 and "unrecognized arguments" in out.stderr


def test_changes_without_yes_on_a_pipe_are_refused():
    out = cli("--answers", str(EXAMPLES / "answers.yaml"))
    assert out.returncode == 2 and "--dry-run, then run again with --yes" in out.stderr


def test_missing_kubeconfig_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text((EXAMPLES / "answers.yaml").read_text().replace(
        "kubeconfig: ~/.kube/config", f"kubeconfig: {tmp_path}/nope"))
    out = cli("--answers", str(path), "--dry-run")
    assert out.returncode == 2
    assert f"{tmp_path}/nope" in out.stderr and "KUBECONFIG" in out.stderr
    assert "Traceback" not in out.stderr


def test_log_file_is_written_private(state):
    cli("--answers", str(EXAMPLES / "answers.yaml"), "--facts", str(EXAMPLES / "facts.yaml"),
        "--dry-run")
    logs = list((state / "gpu-kata-installer" / "logs").glob("run-*.log"))
    assert logs and logs[0].stat().st_mode & 0o077 == 0
    assert "plan" in logs[0].read_text()


def test_help_offers_the_wizard_and_troubleshooting():
    out = cli("--help")
    assert "--wizard" in out.stdout and "troubleshoot" in out.stdout


def test_the_wizard_without_a_terminal_says_how_to_run_headless():
    for args in ((), ("--answers", str(EXAMPLES / "answers.yaml"), "--wizard")):
        out = cli(*args)
        assert out.returncode == 2, args
        assert "the wizard needs a terminal" in out.stderr and "--answers FILE" in out.stderr
        assert "Traceback" not in out.stderr


def test_check_local_on_host_trees_exits_3_on_failure_and_0_when_ready():
    bad = cli("check", "--local", "--host-root", "tests/fixtures/hosts/gpu-host-driver", "--json")
    assert bad.returncode == 3
    results = {r["name"]: r for r in json.loads(bad.stdout)}
    assert results["iommu-enabled"]["status"] == "fail" and results["iommu-enabled"]["remedy"]
    assert {"name", "status", "evidence", "remedy"} <= set(results["iommu-enabled"])
    good = cli("check", "--local", "--host-root", "tests/fixtures/hosts/gpu-vfio-ready")
    assert good.returncode == 0


def test_troubleshoot_without_a_terminal_reads_the_cluster_headless(tmp_path):
    out = cli("troubleshoot", "--kubeconfig", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert "kubeconfig" in out.stderr and "fix:" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("ssh", "flags", "words"), [
    ({}, ("--yes",), "--facts needs --dry-run"),
    ({"sudo": {"mode": "auto", "passwordPrompt": True}}, ("--dry-run",),
     "sudo password must be typed, but there is no terminal"),
    ({"passphrasePrompt": True}, ("--dry-run",),
     "key passphrase must be typed, but there is no terminal"),
    ({"sudo": {"mode": "auto", "passwordEnv": "GKI_UNSET_SECRET"}}, ("--dry-run",),
     "environment variable GKI_UNSET_SECRET is not set"),
    ({"sudo": {"mode": "password"}}, ("--dry-run",), "no password is referenced"),
], ids=["facts-without-dry-run", "sudo-prompt-on-a-pipe", "passphrase-prompt-on-a-pipe",
        "secret-env-unset", "password-mode-without-a-password"])
def test_secrets_and_modes_that_cannot_work_here_exit_2_with_the_fix(tmp_path, ssh, flags, words):
    data = yaml.safe_load((EXAMPLES / "answers.yaml").read_text())
    data["ssh"].update(ssh)
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump(data))
    out = cli("--answers", str(path), "--facts", str(EXAMPLES / "facts.yaml"), *flags)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr
    assert words in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr


def test_dry_run_of_the_example_names_both_installs_with_values_the_labels_and_the_checks(
        tmp_path):
    """The shipped example on its recorded facts, with no kubeconfig and no SSH key anywhere
    (HOME is empty): the whole plan is shown, and nothing is contacted to show it."""
    home = {"HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "absent")}
    args = ("--answers", str(EXAMPLES / "answers.yaml"), "--facts",
            str(EXAMPLES / "facts.yaml"), "--dry-run")
    text = cli(*args, env=home)
    assert text.returncode == 0, text.stdout[-2000:] + text.stderr[-2000:]
    out = text.stdout
    for step in ("[install/kata-deploy]", "[install/gpu-operator]", "[check/gpu-node-1]",
                 "[check/gpu-node-2]", "[check/cluster]"):
        assert step in out, step
    assert "label node gpu-node-1 nvidia.com/gpu.workload.config=vm-passthrough" in out
    assert "label node gpu-node-2 nvidia.com/gpu.workload.config=vm-passthrough" in out
    assert '"mode": "kata"' in out and '"node-feature-discovery": {' in out
    assert "would change:" in out and "  changed:" not in out
    # each Kata node's Kubernetes side, as discovery recorded it, beside its runtime
    assert "cluster container-runtime: gpu-node-1: containerd://2.0.5 on k8s, kubelet root " \
           "/var/lib/kubelet" in out

    events = [json.loads(line) for line in cli(*args, "--json", env=home).stdout.splitlines()]
    plan = next(e["plan"] for e in events if e["kind"] == "plan")
    helm = {s["id"]: c["detail"] for s in plan["steps"] for c in s["changes"]
            if c["kind"] == "helm"}
    assert list(helm) == ["install/kata-deploy", "install/gpu-operator"]  # in this order
    assert helm["install/gpu-operator"]["values"]["sandboxWorkloads"] == {
        "enabled": True, "mode": "kata"}
    assert helm["install/kata-deploy"]["values"]["node-feature-discovery"] == {"enabled": False}
    kube = {s["id"]: s["params"].get("kubernetes") for s in plan["steps"]
            if s["action"] == "host-checks"}
    assert kube == {f"check/gpu-node-{i}": {"distribution": "k8s", "containerdVersion": "2.0.5",
                                            "kubeletRoot": "/var/lib/kubelet"} for i in (1, 2)}
    changes = [e for e in events if e["kind"] == "change"]
    assert len(changes) == 14 and not any(e["applied"] for e in changes)
    paths = [e["path"] for e in changes]
    assert paths.index("cordon/gpu-node-2") < paths.index("drain/gpu-node-2") \
        < paths.index("fix/gpu-node-2/reboot") < paths.index("uncordon/gpu-node-2")
    assert sum(1 for e in changes if e["message"].startswith("gpu-node-2: after the reboot")) == 1


# --- inputs that once hung, tracebacked or were probed as empty (issue #17) ---

def _bomb() -> str:
    from tests.unit.test_yamlload import billion_laughs

    return "x-bomb:\n" + "".join(f"  {line}\n" for line in billion_laughs().splitlines())


def _facts(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "facts.yaml"
    path.write_text((text or (EXAMPLES / "facts.yaml").read_text()).replace(
        "../../tests/fixtures/hosts", str(ROOT / "tests/fixtures/hosts")))
    return path


@pytest.mark.parametrize("where", ["answers", "facts"])
def test_a_billion_laughs_fails_within_seconds_with_exit_2(tmp_path, where):
    """Before, `answers validate` of this 1 KiB file ran until killed (the line map walked
    10^9 aliases); the same for a recorded facts file."""
    answers, facts = EXAMPLES / "answers.yaml", _facts(tmp_path)
    if where == "answers":
        answers = tmp_path / "a.yaml"
        answers.write_text((EXAMPLES / "answers.yaml").read_text() + _bomb())
    else:
        facts.write_text(facts.read_text() + _bomb())
    runs = [("--answers", str(answers), "--facts", str(facts), "--dry-run")]
    if where == "answers":
        runs.append(("answers", "validate", str(answers)))
    for args in runs:
        started = time.monotonic()
        out = cli(*args)
        assert time.monotonic() - started < 20, args  # ~1 s; before, no end
        assert out.returncode == 2, (args, out.stderr[-2000:])
        assert f"error: {tmp_path}/" in out.stderr and "aliases expand" in out.stderr
        assert "fix:" in out.stderr and "Traceback" not in out.stderr + out.stdout


def test_a_recursive_alias_exits_2_instead_of_a_recursion_error(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text((EXAMPLES / "answers.yaml").read_text() + "x-loop: &loop [*loop]\n")
    out = cli("answers", "validate", str(path))
    assert out.returncode == 2 and "recursive alias" in out.stderr
    assert "Traceback" not in out.stderr


def test_chart_values_reach_the_plan_as_helm_reads_them_or_are_refused(tmp_path):
    text = (EXAMPLES / "answers.yaml").read_text()
    assert text.count("  values: {}") == 2
    path = tmp_path / "a.yaml"
    path.write_text(text.replace("  values: {}", "  values: {since: 2024-01-01}", 1))
    out = cli("--answers", str(path), "--facts", str(_facts(tmp_path)), "--dry-run", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    plan = next(json.loads(line)["plan"] for line in out.stdout.splitlines()
                if json.loads(line)["kind"] == "plan")
    values = next(c["detail"]["values"] for s in plan["steps"] for c in s["changes"]
                  if s["id"] == "install/kata-deploy")
    assert values["since"] == "2024-01-01"
    path.write_text(text.replace("  values: {}", "  values: {logo: !!binary aGVsbG8=}", 1))
    out = cli("answers", "validate", str(path))
    assert out.returncode == 2 and "!!binary values are not read" in out.stderr
    line = text[:text.index("  values: {}")].count("\n") + 1
    assert f"{path} (line {line})" in out.stderr and "Traceback" not in out.stderr


def test_an_unknown_check_to_ignore_fails_validate_with_the_names(tmp_path):
    """Before, `answers validate` passed it and the run tracebacked (run_checks' ValueError)."""
    path = tmp_path / "a.yaml"
    text = (EXAMPLES / "answers.yaml").read_text()
    line = text[:text.index("ignore: []")].count("\n") + 1
    path.write_text(text.replace("ignore: []", "ignore: [kvm]"))
    for args in (("answers", "validate", str(path)),
                 ("--answers", str(path), "--facts", str(EXAMPLES / "facts.yaml"), "--dry-run")):
        out = cli(*args)
        assert out.returncode == 2, args
        assert f"checks.ignore[0] (line {line}): not a check name" in out.stderr
        assert "fix: use one of: cpu-virtualization, iommu-enabled," in out.stderr
        assert "Traceback" not in out.stderr


@pytest.mark.parametrize(("edit", "words"), [
    (lambda t: t + "bogus: 1\n", "bogus (line 46): unknown key 'bogus'"),
    (lambda t: t.replace("    ready: true\n", "    ready: true\n    colour: red\n", 1),
     "nodes[0].colour (line 13): unknown key 'colour'"),
    (lambda t: t.replace("gpu-vfio-ready", "no-such-tree"),
     "hosts.gpu-node-1.tree (line 43): no directory at"),
    (lambda t: t.replace("nodes:\n", "nodes: [\n", 1), "not valid YAML"),
], ids=["unknown-top-level-key", "unknown-node-key", "missing-host-tree", "malformed"])
def test_a_bad_facts_file_exits_2_naming_the_file_the_path_and_the_fix(tmp_path, edit, words):
    facts = _facts(tmp_path)
    facts.write_text(edit(facts.read_text()))
    out = cli("--answers", str(EXAMPLES / "answers.yaml"), "--facts", str(facts), "--dry-run")
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr
    assert f"error: {facts}:" in out.stderr and words in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr and "plan" not in out.stdout


# --- `images` and the private registry (issue 18, point 10) ---

def _with_images(tmp_path: Path, images: str) -> Path:
    path = tmp_path / "a.yaml"
    path.write_text((EXAMPLES / "answers.yaml").read_text() + images)
    return path


@pytest.mark.parametrize(("images", "where", "words"), [
    ("images: {registry: 'https://registry.example.com'}\n", "images.registry",
     "without a scheme"),
    ("images: {registry: mirror}\n", "images.registry", "a host with a dot or a port"),
    ("images: {registry: registry.example.com/Mirror:v1}\n", "images.registry",
     "no tag, no trailing /"),
    ("images: {pullSecrets: [Bad_Name]}\n", "images.pullSecrets[0]", "not a Secret name"),
    ("images: {pullSecrets: [a, a]}\n", "images", "names a Secret twice"),
    ("images: {mirror: registry.example.com}\n", "images.mirror", "unknown"),
])
def test_images_bad_registry_answers_exit_2_naming_the_key(tmp_path, images, where, words):
    out = cli("images", "--answers", str(_with_images(tmp_path, images)))
    assert out.returncode == 2, out.stderr
    assert f"{where} (line " in out.stderr and words in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout


def test_images_needs_answers_and_helm_or_says_so_with_exit_2(tmp_path):
    out = cli("images")
    assert out.returncode == 2 and "--answers: `images` needs it" in out.stderr
    assert "fix: add --answers FILE" in out.stderr
    out = cli("images", "--answers", str(EXAMPLES / "answers.yaml"), "--yes")
    assert out.returncode == 2 and "--yes: does not apply to `images`" in out.stderr
    # No helm anywhere (an empty PATH; the interpreter runs by its full path).
    out = cli("images", "--answers", str(EXAMPLES / "answers.yaml"),
              env={"PATH": str(tmp_path), "GPU_KATA_HELM": ""})
    assert out.returncode == 2 and "helm not found" in out.stderr, out.stderr
    assert "install helm 3 or 4, or set GPU_KATA_HELM" in out.stderr
    assert out.stdout == "" and "Traceback" not in out.stderr


def test_dry_run_points_both_charts_and_the_sample_at_the_private_registry(tmp_path):
    """The registry flows through the values: the plan (what --dry-run prints and the install
    runs) carries the mirrored repositories and the pull secrets."""
    path = _with_images(tmp_path, "images:\n  registry: registry.example.com/mirror\n"
                                  "  pullSecrets: [mirror-pull]\n")
    out = cli("--answers", str(path), "--facts", str(_facts(tmp_path)), "--dry-run", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    plan = next(json.loads(line)["plan"] for line in out.stdout.splitlines()
                if json.loads(line)["kind"] == "plan")
    steps = {s["id"]: s for s in plan["steps"]}
    kd = steps["install/kata-deploy"]["params"]["values"]
    op = steps["install/gpu-operator"]["params"]["values"]
    assert kd["image"] == {"reference": "registry.example.com/mirror/kata-containers/kata-deploy"}
    # Shown as the log shows every value under a credential-named key: masked.
    assert kd["imagePullSecrets"] == [{"name": "***REDACTED***"}]
    assert op["kataSandboxDevicePlugin"]["repository"] == \
        "registry.example.com/mirror/nvidia/cloud-native"
    assert op["operator"]["imagePullSecrets"] == ["***REDACTED***"]
    assert op["node-feature-discovery"]["image"] == {
        "repository": "registry.example.com/mirror/nfd/node-feature-discovery"}
    sample = steps["sample/cuda-vectoradd"]["params"]
    assert sample["image"].startswith("registry.example.com/mirror/nvidia/k8s/cuda-sample:")
    assert len(sample["pullSecrets"]) == 1


def test_the_headless_module_refuses_the_wizard_and_names_the_console_script():
    """`python -m installer` is the headless entry point (the core imports no screens);
    asked for the wizard it says where the wizard is, exit 2."""
    out = cli(module="installer")
    assert out.returncode == 2
    assert "fix: run `gpu-kata-installer` (or `python -m screens.cli`)" in out.stderr
