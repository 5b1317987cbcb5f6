"""A secret read from the environment is not handed on to helm (a real child process that
prints the environment it was given)."""

from __future__ import annotations

import asyncio
from importlib.resources import files

import yaml

from installer.answers.model import validate_answers
from installer.charts.helm import Helm, run_helm
from installer.hosts.access import host_access


def test_helm_never_inherits_the_variables_that_held_secrets(tmp_path, monkeypatch):
    data = yaml.safe_load(files("installer").joinpath("examples/answers.yaml").read_text())
    data["ssh"]["sudo"] = {"mode": "password", "passwordEnv": "GKI_TEST_SUDO"}
    data["ssh"]["passphraseEnv"] = "GKI_TEST_PASSPHRASE"
    monkeypatch.setenv("GKI_TEST_SUDO", "planted-sudo-9431")
    monkeypatch.setenv("GKI_TEST_PASSPHRASE", "planted-pass-2207")
    monkeypatch.setenv("GKI_TEST_HARMLESS", "still-here")
    access = host_access(validate_answers(data))
    assert access.sudo_password == "planted-sudo-9431"
    assert access.passphrase == "planted-pass-2207"

    fake_helm = tmp_path / "helm"
    fake_helm.write_text("#!/bin/sh\nenv\n")
    fake_helm.chmod(0o755)
    code, out, _ = asyncio.run(run_helm(Helm(str(fake_helm), str(tmp_path / "kc"), None),
                                        ["version"]))
    assert code == 0 and "GKI_TEST_HARMLESS=still-here" in out
    assert "planted-sudo-9431" not in out and "planted-pass-2207" not in out
