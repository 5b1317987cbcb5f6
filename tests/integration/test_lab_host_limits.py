"""A host that does not answer in time, and credentials a host refuses, through the CLI on
the lab: each is a message naming the host with its cause and an exit code from the
README's list, never a traceback, and nothing changes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.cli_run import installer, write_answers

pytestmark = pytest.mark.lab


def releases(lab) -> list[str]:
    return sorted(r["name"] for r in json.loads(lab.helm("list", "-A", "-o", "json").stdout))


def test_a_probe_over_its_time_limit_exits_3_naming_the_host_and_the_limit(lab_bare, tmp_path):
    """gpu-node-2's sudo hangs in its PAM session stack (as a stuck directory lookup
    does): its probe is cut at ssh.commandTimeout, the other hosts are probed."""
    lab = lab_bare
    node = lab.node("gpu-node-2")
    pam = Path(node.host_root) / "etc" / "pam.d" / "sudo"
    original = pam.read_text()
    answers = write_answers(lab, tmp_path, ssh={"commandTimeout": 3}, sample={"run": False})
    pam.write_text(original + "session required pam_exec.so /usr/bin/sleep 20\n")
    try:
        out = installer(lab, tmp_path, "--answers", str(answers), "--yes", timeout=300)
    finally:
        pam.write_text(original)
    assert out.returncode == 3, out.stdout[-3000:] + out.stderr[-2000:]
    assert "Traceback" not in out.stdout + out.stderr
    assert (f"gpu-node-2: could not be checked - timeout: {node.internal_ip}:"
            in out.stdout), out.stdout[-3000:]
    assert "timed out while running the command (the SSH command timeout is 3 s)" in out.stdout
    assert "raise the command timeout (answers: ssh.commandTimeout)" in out.stdout
    assert "✓ probe/gpu-node-1" in out.stdout and "✓ probe/gpu-node-3" in out.stdout
    assert "changed:" not in out.stdout and releases(lab) == []


def test_a_key_the_hosts_refuse_exits_2_naming_each_host_and_the_fix(lab_bare, tmp_path):
    lab = lab_bare
    key = tmp_path / "not-authorized"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    answers = write_answers(lab, tmp_path, ssh={"identityFile": str(key)})
    for flags in (("--yes",), ("--dry-run",)):
        out = installer(lab, tmp_path, "--answers", str(answers), *flags)
        assert out.returncode == 2, (flags, out.stdout[-3000:] + out.stderr[-2000:])
        assert "Traceback" not in out.stdout + out.stderr
        assert "error: SSH refused the credentials" in out.stderr, out.stderr
        for name in ("gpu-node-1", "gpu-node-2", "gpu-node-3"):
            assert f"ssh ({name}): auth: {lab.node(name).internal_ip}:" in out.stderr
        assert "authentication failed for user" in out.stderr
        assert "fix: Check the user" in out.stderr and "ssh.identityFile" in out.stderr
        assert "changed:" not in out.stdout and releases(lab) == []

