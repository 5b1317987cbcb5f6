"""Connections kept across a run's calls (remote.sshkeep) against a real sshd: one per host,
counted on the server's side; replaced when a reboot or a restarted sshd drops it; host
keys checked on every new one; the sudo probe asked once per connection."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest

from remote.fixes import reboot
from remote.probe import PROBE_SCRIPT, parse_probe
from remote.ssh import Connections, Script, run_on_hosts
from remote.targets import HostTarget
from tests.integration.conftest import known_hosts_for, options
from tests.lab import hosts

pytestmark = pytest.mark.lab

PROBE = Script(PROBE_SCRIPT, ("/",))
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


def target(h: hosts.SimHost) -> HostTarget:
    return HostTarget(h.name, h.address)


def logins(h: hosts.SimHost) -> int:
    """Connections the host's sshd accepted (its own log, not the client's count)."""
    return h.log_path.read_text(errors="replace").count("Accepted publickey for ")


async def test_one_connection_for_many_calls_and_a_new_one_after_the_reboot(
        new_host, lab_keys, tmp_path):
    h = new_host("gpu-host-driver")
    opts = options(lab_keys, known_hosts_for(tmp_path / "kh", h))
    t = target(h)
    keep = Connections()
    try:
        before = logins(h)
        probe = (await run_on_hosts([t], PROBE, opts, sudo=True, connections=keep))[h.name]
        first = (await run_on_hosts([t], BOOT_ID, opts, connections=keep))[h.name]
        again = (await run_on_hosts([t], "id -un", opts, sudo=True, connections=keep))[h.name]
        assert probe.ok and first.ok and again.ok and again.stdout == b"root\n"
        assert logins(h) - before == 1 and keep.opened == 1 and len(keep) == 1
        assert first.host_key_fingerprint == h.host_key_fingerprint()  # known from the open

        facts = parse_probe(probe.stdout)
        rr = await reboot.reboot_and_wait(reboot.plan(facts), t, opts, poll=0.5, timeout=60,
                                          connections=keep)
        assert rr.ok and rr.new_boot_id != rr.old_boot_id, rr
        assert "reboot" in h.events()
        after_reboot = logins(h)
        assert after_reboot - before >= 2 and keep.opened == after_reboot - before

        # the connection that saw the new boot id is the one the next steps use
        now = (await run_on_hosts([t], BOOT_ID, opts, connections=keep))[h.name]
        probe2 = (await run_on_hosts([t], PROBE, opts, sudo=True, connections=keep))[h.name]
        assert now.ok and now.text().strip() == rr.new_boot_id and probe2.ok
        assert logins(h) == after_reboot
    finally:
        await keep.close()
    assert len(keep) == 0


async def test_without_a_keeper_every_call_connects(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    opts = options(lab_keys, known_hosts_for(tmp_path / "kh", h))
    before = logins(h)
    for _ in range(3):
        assert (await run_on_hosts([target(h)], "true", opts))[h.name].ok
    assert logins(h) - before == 3


async def test_a_connection_the_host_dropped_is_replaced(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    opts = options(lab_keys, known_hosts_for(tmp_path / "kh", h))
    keep = Connections()
    try:
        assert (await run_on_hosts([target(h)], "true", opts, connections=keep))[h.name].ok
        h.stop()  # every session ends with it, as in a crash or a reboot nobody announced
        h.start()
        await asyncio.sleep(0.2)
        r = (await run_on_hosts([target(h)], "echo back", opts, connections=keep))[h.name]
        assert r.ok and r.stdout == b"back\n", r
        assert keep.opened == 2
    finally:
        await keep.close()


async def test_a_failed_command_drops_the_connection(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    opts = options(lab_keys, known_hosts_for(tmp_path / "kh", h), command_timeout=0.5)
    keep = Connections()
    try:
        slow = (await run_on_hosts([target(h)], "sleep 5", opts, connections=keep))[h.name]
        assert slow.error is not None and slow.error.kind == "timeout"
        assert len(keep) == 0
        assert (await run_on_hosts([target(h)], "true", opts, connections=keep))[h.name].ok
        assert keep.opened == 2
    finally:
        await keep.close()


async def test_the_host_key_is_checked_on_every_new_connection(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    opts = options(lab_keys, known_hosts_for(tmp_path / "kh", h))
    keep = Connections()
    try:
        assert (await run_on_hosts([target(h)], "true", opts, connections=keep))[h.name].ok
        keep.forget(target(h))
        h.stop()
        h.regenerate_host_key()  # a reinstalled host, or someone else answering
        h.build(fresh=False)
        h.start()
        r = (await run_on_hosts([target(h)], "true", opts, connections=keep))[h.name]
        assert r.error is not None and r.error.kind == "host-key-changed", r
        assert len(keep) == 0
    finally:
        await keep.close()


async def test_the_sudo_probe_is_asked_once_per_connection(new_host, lab_keys, tmp_path,
                                                           monkeypatch):
    secret = "pw-kept"
    h = new_host("gpu-host-driver", sudo_password=secret)
    opts = options(lab_keys, known_hosts_for(tmp_path / "kh", h))
    sent: list[str] = []
    real = asyncssh.SSHClientConnection.run

    async def run(self, command=None, *a, **kw):
        sent.append(command)
        return await real(self, command, *a, **kw)

    monkeypatch.setattr(asyncssh.SSHClientConnection, "run", run)
    keep = Connections()
    try:
        for _ in range(3):
            r = (await run_on_hosts([target(h)], "id -u", opts, sudo=True,
                                    sudo_password=secret, connections=keep))[h.name]
            assert r.ok and r.stdout == b"0\n", r
    finally:
        await keep.close()
    assert sent.count("sudo -n true") == 1 and len(sent) == 4
