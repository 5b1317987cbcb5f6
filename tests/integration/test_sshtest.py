"""The wizard's SSH connection test against a real sshd serving a simulated host."""

from __future__ import annotations

from pathlib import Path

import pytest

from installer.answers.model import validate_answers
from installer.hosts.sshtest import check_connection
from tests.lab import hosts

pytestmark = pytest.mark.lab


def answers_for(h: hosts.SimHost, keys: hosts.LabKeys, known_hosts, **ssh):
    return validate_answers({
        "apiVersion": "gpu-kata-installer.io/v1alpha1", "kind": "Answers",
        "ssh": {"user": hosts.LAB_USER, "identityFile": str(keys.identity),
                "knownHosts": str(known_hosts), "useAgent": False, "configFile": None,
                "sudo": {"mode": "passwordless"}, **ssh},
        "nodes": {"items": [{"name": h.name, "choice": "kata"}]},
        "kataDeploy": {"version": "3.29.0"}, "gpuOperator": {"version": "v26.3.1"}})


async def test_unknown_key_is_reported_with_its_fingerprint_and_trusted_only_as_shown(
        new_host, lab_keys, tmp_path):
    h = new_host("gpu-vfio-ready")
    kh = tmp_path / "known_hosts"
    answers = answers_for(h, lab_keys, kh)

    first = await check_connection(answers, h.name, h.address)
    assert not first.ok and first.unknown_key
    assert first.fingerprint and first.fingerprint.startswith("SHA256:")
    assert not kh.exists() or h.address not in kh.read_text()

    wrong = await check_connection(answers, h.name, h.address, trust="SHA256:not-this-one")
    assert not wrong.ok and (not kh.exists() or h.address not in kh.read_text())

    trusted = await check_connection(answers, h.name, h.address, trust=first.fingerprint)
    assert trusted.ok, trusted
    assert "as root through sudo" in trusted.message and "recorded" in trusted.message
    assert h.address in kh.read_text()

    again = await check_connection(answers, h.name, h.address)
    assert again.ok and again.fingerprint == first.fingerprint


async def test_a_missing_secret_or_a_refused_login_is_said_plainly(new_host, lab_keys,
                                                                    tmp_path, monkeypatch):
    h = new_host("gpu-vfio-ready")
    kh = tmp_path / "known_hosts"
    kh.write_text(h.known_hosts_line() + "\n")
    monkeypatch.delenv("GKI_NO_SUCH_PASSWORD", raising=False)
    no_secret = await check_connection(answers_for(h, lab_keys, kh, sudo={
        "mode": "password", "passwordEnv": "GKI_NO_SUCH_PASSWORD"}), h.name, h.address)
    assert not no_secret.ok and "GKI_NO_SUCH_PASSWORD is not set" in no_secret.message
    wrong_user = await check_connection(answers_for(h, lab_keys, kh, user="nobody"), h.name,
                                        h.address)
    assert not wrong_user.ok and not wrong_user.unknown_key


async def test_metacharacters_typed_for_a_node_never_reach_a_shell(new_host, lab_keys,
                                                                  tmp_path):
    """The SSH screen tests whatever address the cluster or the operator gives a node."""
    h = new_host("cpu-only")
    kh = tmp_path / "known_hosts"
    kh.write_text(h.known_hosts_line() + "\n")
    answers = answers_for(h, lab_keys, kh)
    for node, address in [(h.name, f"{h.address};touch /tmp/gki-pwned"),
                          (h.name, "$(touch /tmp/gki-pwned)"),
                          (h.name, "-oProxyCommand=touch /tmp/gki-pwned"),
                          (h.name, f"{h.address} -p 2222"),
                          ("n;touch /tmp/gki-pwned", h.address),
                          ("$(touch /tmp/gki-pwned)", h.address)]:
        report = await check_connection(answers, node, address)
        assert not report.ok and "no usable SSH address" in report.message, (node, address)
        assert report.remedy
    assert not (h.root / "tmp/gki-pwned").exists() and not Path("/tmp/gki-pwned").exists()
    assert (await check_connection(answers, h.name, h.address)).ok  # the same host, plainly
