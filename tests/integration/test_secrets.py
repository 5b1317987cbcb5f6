"""Secrets on the lab: with a sudo password the hosts really ask for, a passphrase-protected
SSH key and a ServiceAccount token as the only credentials, a failed install, troubleshoot,
a bundle, a saved wizard session and an uninstall leave none of the three anywhere - not in
the log, the JSON events, the terminal, the bundle, the saved answers or any process's argv
(`ps`, sampled through the whole run) - and the files that reference them are private."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from installer.answers.model import load_answers
from remote.ssh import SSHOptions, run_on_hosts
from remote.targets import HostTarget
from screens.state import WizardState
from tests.integration.secrets import ArgvSampler, Planted

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "installer", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def _sudo_needs_the_password(lab, planted: Planted) -> bool:
    """The plant took: password-less sudo is refused on the lab's hosts."""
    node = lab.node("gpu-node-3")
    options = SSHOptions(user=node.ssh_user, identity_file=str(planted.identity),
                         known_hosts=node.known_hosts, config_file="", use_agent=False)
    (result,) = asyncio.run(run_on_hosts(
        [HostTarget(node.name, node.internal_ip)], "true", options, sudo=True,
        passphrase=planted.passphrase)).values()
    return result.error is not None and result.error.kind == "sudo"


def _private(path: Path) -> bool:
    return path.stat().st_mode & 0o077 == 0


def test_a_failed_run_its_bundle_and_saved_answers_hold_no_planted_secret(planted, lab_bare,
                                                                          tmp_path):
    lab = lab_bare
    assert _sudo_needs_the_password(lab, planted)
    data = planted.answers(lab.info, sample_timeout=120, chart_timeout="2m")
    data["gpuOperator"]["values"] = {"sandboxWorkloads": {"mode": "kubevirt"}}
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump(data))
    state = tmp_path / "state"
    env = {**os.environ, **lab.env, **planted.env, "KUBECONFIG": str(planted.kubeconfig),
           "XDG_STATE_HOME": str(state)}
    bundle = tmp_path / "bundle.tgz"
    canary = f"gki-canary-{os.getpid()}"  # an argv the sampler must see: it can fail
    with ArgvSampler() as ps:
        subprocess.run(["sh", "-c", "sleep 0.5", canary], check=True)
        install = _run(env, "--answers", str(answers), "--yes", "--json")
        shoot = _run(env, "troubleshoot", "--answers", str(answers))
        packed = _run(env, "bundle", "--answers", str(answers), "--output", str(bundle))
        removed = _run(env, "uninstall", "--answers", str(answers), "--yes")

    # The run really used all three: token-only kubeconfig, encrypted key, sudo with password.
    assert install.returncode == 1, install.stdout[-3000:] + install.stderr[-2000:]
    events = [json.loads(line) for line in install.stdout.splitlines()]
    assert any(e.get("path") == "fix/gpu-node-3/iommu-cmdline" and e.get("status") == "ok"
               for e in events), install.stdout[-3000:]
    assert "intel_iommu=on" in (Path(lab.node("gpu-node-3").host_root)
                                / "etc/default/grub").read_text()
    assert any("kubevirt" in json.dumps(e) for e in events if e.get("status") == "failed")
    assert shoot.returncode == 1 and "sandboxWorkloads.mode is 'kubevirt'" in shoot.stdout
    assert packed.returncode == 0, packed.stderr[-2000:]
    assert removed.returncode == 0, removed.stdout[-3000:] + removed.stderr[-2000:]

    # The bundle of the failed run: the evidence for its findings, none of the secrets.
    with tarfile.open(bundle) as tar:
        files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode()
                 for m in tar if m.isfile()}
    findings = json.loads(files["findings.json"])
    mode = next(f for f in findings if f["rule"] == "sandbox-mode-not-kata")
    assert any("kubevirt" in e for e in mode["evidence"])
    assert "kubevirt" in files["cluster/clusterpolicy.json"]
    assert "sandboxWorkloads.mode is 'kubevirt'" in files["SUMMARY.md"]
    assert any(name.startswith("logs/gpu-operator/") for name in files)
    assert any(name.startswith("hosts/gpu-node-3") for name in files)
    assert "fix/gpu-node-3/iommu-cmdline" in files["run.log"]
    for name, text in files.items():
        assert planted.leaks(text) == [], name

    # The wizard's save of the same session: references only, private.
    saved = WizardState(answers=load_answers(answers)).save(tmp_path / "saved" / "answers.yaml")
    assert "passwordEnv" in saved.read_text() and "passphraseEnv" in saved.read_text()

    logs = sorted((state / "gpu-kata-installer" / "logs").glob("*.log"))
    assert len(logs) >= 2  # install and uninstall
    journals = list((state / "gpu-kata-installer" / "journal").glob("*"))
    outputs = {f"{r.args[3:5]} {stream}": getattr(r, stream)
               for r in (install, shoot, packed, removed) for stream in ("stdout", "stderr")}
    outputs.update({str(p): p.read_text() for p in (*logs, *journals, saved)})
    for where, text in outputs.items():
        assert planted.leaks(text) == [], where
    for path in (*logs, saved, bundle):
        assert _private(path), path

    # Every process's command line while the four commands ran: helm, kubectl, the installer.
    assert ps.samples >= 20 and any(canary in line for line in ps.lines)
    assert any("-m installer " in line for line in ps.lines)
    assert any(Path(line.split()[0]).name == "helm" for line in ps.lines if line.strip())
    assert [line for line in ps.lines if planted.leaks(line)] == []
