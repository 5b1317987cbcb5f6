"""SSH fan-out, host keys, sudo and quoting against real sshd serving simulated hosts."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from remote.probe import PROBE_SCRIPT, parse_probe, probe_local
from remote.ssh import HostResult, Script, run_on_hosts
from remote.targets import HostTarget, InvalidTarget
from tests.integration.conftest import FIXTURES, all_trees, known_hosts_for, options
from tests.lab import hosts

pytestmark = pytest.mark.lab

PROBE = Script(PROBE_SCRIPT, ("/",))


def target(h: hosts.SimHost, **kw) -> HostTarget:
    return HostTarget(h.name, h.address, **kw)


BOOT_ID = "proc/sys/kernel/random/boot_id"


def comparable(f):
    """Facts minus what legitimately differs between a simulated host over SSH and a
    local read of the fixture tree it was built from: the root path, the tools on PATH
    (the chroot has the lab's) and the boot id the lab adds when a tree has none."""
    return dataclasses.replace(
        f, host_root="", tools=[], boot_id=None,
        files={k: v for k, v in f.files.items() if k != BOOT_ID},
        missing=[m for m in f.missing if m != BOOT_ID])


async def test_probe_over_ssh_equals_probe_local_for_every_tree(new_host, lab_keys, tmp_path):
    sims = [new_host(t) for t in all_trees()]
    kh = known_hosts_for(tmp_path / "kh", *sims)
    res = await run_on_hosts([target(h) for h in sims], PROBE, options(lab_keys, kh))
    for h in sims:
        r = res[h.name]
        assert r.ok, (h.name, r.error, r.stderr)
        remote = parse_probe(r.stdout)
        assert remote.complete
        assert comparable(remote) == comparable(probe_local(h.tree)), h.tree.name
        assert "update-grub" in remote.tools  # the lab's commands are on the host's PATH


async def test_100_hosts_concurrently(fleet100, lab_keys, tmp_path):
    kh = fleet100.write_known_hosts(tmp_path / "kh")
    seen: list[str] = []
    start = time.monotonic()
    res = await run_on_hosts([target(h) for h in fleet100], PROBE, options(lab_keys, kh),
                             limit=100, on_result=lambda r: seen.append(r.name))
    elapsed = time.monotonic() - start
    assert len(res) == 100 and sorted(seen) == sorted(res)
    bad = {n: r.error for n, r in res.items() if not r.ok}
    assert not bad
    names = {parse_probe(r.stdout).hostname for r in res.values()}
    assert names == {"gpu-node-02", "gpu-ready-01"}
    print(f"100 hosts probed in {elapsed:.2f}s")


async def test_sshd_killed_mid_check(new_host, lab_keys, tmp_path):
    sims = [new_host("gpu-vfio-ready") for _ in range(5)]
    kh = known_hosts_for(tmp_path / "kh", *sims)
    slow = Script("sleep 2; cat /proc/cmdline")
    victim = sims[2]

    async def killer():
        await asyncio.sleep(0.8)
        await asyncio.to_thread(victim.kill)

    res, _ = await asyncio.gather(
        run_on_hosts([target(h) for h in sims], slow, options(lab_keys, kh)), killer())
    r = res[victim.name]
    assert r.error is not None and r.error.kind == "unreachable", r
    assert victim.address in r.error.message and r.error.message
    for h in sims:
        if h is not victim:
            assert res[h.name].ok and b"intel_iommu=on" in res[h.name].stdout


async def test_unreachable_and_timeout_are_typed(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    dead = HostTarget("dead", hosts.address_for(999, "127.0.20.1"))
    res = await run_on_hosts([target(h), dead], Script("sleep 5"),
                             options(lab_keys, kh, command_timeout=1))
    assert res["dead"].error.kind == "unreachable"
    assert "refused" in res["dead"].error.message.lower()
    assert res[h.name].error.kind == "timeout"


async def test_unknown_key_refused_in_strict(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = tmp_path / "kh"
    kh.write_text("")
    res = await run_on_hosts([target(h)], "true", options(lab_keys, kh))
    e = res[h.name].error
    assert e is not None and e.kind == "host-key-unknown"
    assert h.host_key_fingerprint() in e.message
    assert kh.read_text() == ""


async def test_unknown_key_accepted_and_recorded_in_accept_new(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = tmp_path / "kh"
    opts = options(lab_keys, kh, host_key_policy="accept-new")
    r = (await run_on_hosts([target(h)], "echo hi", opts))[h.name]
    assert r.ok and r.accepted_new_key and r.host_key_fingerprint == h.host_key_fingerprint()
    assert kh.read_text() == h.known_hosts_line() + "\n"
    r = (await run_on_hosts([target(h)], "echo hi", opts))[h.name]
    assert r.ok and not r.accepted_new_key
    assert kh.read_text() == h.known_hosts_line() + "\n"  # recorded once


async def test_confirm_callback_decides(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = tmp_path / "kh"
    asked: list[tuple[str, str]] = []

    async def no(host, fp):
        asked.append((host, fp))
        return False

    opts = options(lab_keys, kh, host_key_policy="accept-new")
    r = (await run_on_hosts([target(h)], "true", opts, confirm_host_key=no))[h.name]
    assert r.error.kind == "host-key-unknown" and not kh.exists()
    assert asked == [(h.address, h.host_key_fingerprint())]
    r = (await run_on_hosts([target(h)], "true", opts,
                            confirm_host_key=lambda host, fp: True))[h.name]
    assert r.ok and r.accepted_new_key and h.known_hosts_line() in kh.read_text()


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
async def test_changed_key_always_refused(new_host, lab_keys, tmp_path, policy):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    before = kh.read_text()
    old_fp = h.host_key_fingerprint()
    h.stop()
    h.regenerate_host_key()
    h.build(fresh=False)
    h.start()
    r = (await run_on_hosts([target(h)], "true",
                            options(lab_keys, kh, host_key_policy=policy)))[h.name]
    e = r.error
    assert e is not None and e.kind == "host-key-changed"
    assert old_fp in e.message and h.host_key_fingerprint() in e.message
    assert f"ssh-keygen -R '{h.address}'" in e.remedy
    assert kh.read_text() == before


async def test_passphrase_from_environment(new_host, lab_keys, tmp_path, monkeypatch):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    opts = options(lab_keys, kh, identity_file=str(lab_keys.encrypted_identity),
                   passphrase_env="GKI_TEST_PASSPHRASE")
    monkeypatch.setenv("GKI_TEST_PASSPHRASE", lab_keys.passphrase)
    assert (await run_on_hosts([target(h)], "true", opts))[h.name].ok
    monkeypatch.setenv("GKI_TEST_PASSPHRASE", "wrong")
    r = (await run_on_hosts([target(h)], "true", opts))[h.name]
    assert r.error.kind == "identity"
    # a prompted passphrase is passed in memory
    monkeypatch.delenv("GKI_TEST_PASSPHRASE")
    assert (await run_on_hosts([target(h)], "true", opts,
                               passphrase=lab_keys.passphrase))[h.name].ok


async def test_agent_holds_the_key_and_nothing_else_is_offered(new_host, lab_keys, tmp_path,
                                                                monkeypatch):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(lab_keys.identity)], env=env, check=True,
                       capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
        opts = options(lab_keys, kh, identity_file=None, use_agent=True)
        r = (await run_on_hosts([target(h)], "id -un", opts))[h.name]
        assert r.ok and r.stdout == b"labops\n", r.error
        # the agent emptied: the same options now fail as an authentication error
        subprocess.run(["ssh-add", "-D"], env=env, check=True, capture_output=True)
        r = (await run_on_hosts([target(h)], "id -un", opts))[h.name]
        assert r.error is not None and r.error.kind == "auth", r.error
    finally:
        agent.terminate()
        agent.wait(timeout=10)


async def test_an_ipv6_node_address_off_port_22(lab_state, lab_keys, tmp_path):
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        port = s.getsockname()[1]
    h = hosts.SimHost("t-ipv6", "::1", port, tree=FIXTURES / "gpu-vfio-ready",
                      state_dir=lab_state, keys=lab_keys)
    h.build()
    h.start()
    try:
        kh = known_hosts_for(tmp_path / "kh", h)
        assert kh.read_text().startswith(f"[::1]:{port} ")
        r = (await run_on_hosts([HostTarget("n6", "::1", port=port)], PROBE,
                                options(lab_keys, kh)))["n6"]
        assert r.ok, r.error
        assert parse_probe(r.stdout).complete
        # strict: the same address with an unknown key is refused, naming it as ssh would
        kh.write_text("")
        r = (await run_on_hosts([HostTarget("n6", "::1", port=port)], "true",
                                options(lab_keys, kh)))["n6"]
        assert r.error is not None and r.error.kind == "host-key-unknown"
        assert f"[::1]:{port}" in r.error.message
    finally:
        h.stop()


async def test_jump_host(new_host, lab_keys, tmp_path):
    jump, inner = new_host("cpu-only"), new_host("gpu-vfio-ready")
    kh = known_hosts_for(tmp_path / "kh", jump, inner)
    opts = options(lab_keys, kh, jump_host=f"{hosts.LAB_USER}@{jump.address}:22")
    r = (await run_on_hosts([target(inner)], "cat /etc/hostname", opts))[inner.name]
    assert r.ok and r.stdout == b"gpu-ready-01\n"
    assert "Accepted publickey" in jump.log_path.read_text()


async def test_ssh_config_file_is_used(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    cfg = tmp_path / "ssh_config"
    cfg.write_text(f"Host labalias\n  HostName {h.address}\n  User {hosts.LAB_USER}\n"
                   f"  IdentityFile {lab_keys.identity}\n")
    opts = dataclasses.replace(options(lab_keys, kh), user=None, identity_file=None,
                               config_file=str(cfg))
    r = (await run_on_hosts([HostTarget("n1", "labalias")], "id -un", opts))["n1"]
    assert r.ok and r.stdout == b"labops\n"


async def test_non_utf8_output_is_bytes(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    r = (await run_on_hosts([target(h)], Script(r"printf 'ok\377\376\n'; printf '\377' >&2"),
                            options(lab_keys, kh)))[h.name]
    assert r.ok and r.stdout == b"ok\xff\xfe\n" and r.stderr == b"\xff"
    assert "\\xff" in r.text()


class ArgvWatcher:
    """Scans every process's argv while a test runs, to prove a secret never appears."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in os.listdir("/proc"):
                if not p.isdigit():
                    continue
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        if self.secret in f.read():
                            self.hits.append(p)
                except OSError:
                    pass
            self.scans += 1

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


async def test_sudo_with_password_never_exposes_it(new_host, lab_keys, tmp_path, caplog):
    secret = "s3cr3t-pw-'\"$(x)"
    h = new_host("gpu-host-driver", sudo_password=secret)
    kh = known_hosts_for(tmp_path / "kh", h)
    opts = options(lab_keys, kh)
    caplog.set_level(logging.DEBUG)
    with ArgvWatcher(secret) as w:
        ok = (await run_on_hosts([target(h)], Script("id -u; cat; echo end"), opts, sudo=True,
                                 sudo_password=secret))[h.name]
        nopw = (await run_on_hosts([target(h)], "id -u", opts, sudo=True))[h.name]
        bad = (await run_on_hosts([target(h)], "id -u", opts, sudo=True,
                                  sudo_password="wrong"))[h.name]
    assert ok.ok and ok.stdout == b"0\nend\n", ok  # `cat` saw no password on stdin
    assert nopw.error.kind == "sudo" and bad.error.kind == "sudo"
    assert w.scans > 3 and w.hits == []
    assert secret not in caplog.text
    for r in (ok, nopw, bad):
        assert secret.encode() not in r.stdout + r.stderr


async def test_passwordless_sudo_detected(new_host, lab_keys, tmp_path):
    h = new_host("gpu-host-driver")
    kh = known_hosts_for(tmp_path / "kh", h)
    r = (await run_on_hosts([target(h)], Script("id -u; cat"), options(lab_keys, kh), sudo=True,
                            sudo_password="unused"))[h.name]
    assert r.ok and r.stdout == b"0\n"  # password not needed, so never sent


BAD_NAMES = ["node;touch /tmp/gki-pwned", "n$(touch /tmp/gki-pwned)", "a b", "-oProxyCommand=x",
             "n`id`", "n\nx"]


async def test_metacharacters_in_targets_are_rejected(new_host, lab_keys, tmp_path):
    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    pwned = Path("/tmp/gki-pwned")
    pwned.unlink(missing_ok=True)
    targets = [HostTarget(n, h.address) for n in BAD_NAMES]
    targets += [HostTarget(f"addr{i}", a) for i, a in enumerate(
        [f"{h.address};touch /tmp/gki-pwned", "-oProxyCommand=touch /tmp/gki-pwned",
         "$(touch /tmp/gki-pwned)", f"{h.address} -p 23"])]
    targets += [HostTarget(f"user{i}", h.address, user=u) for i, u in enumerate(
        ["labops;touch /tmp/gki-pwned", "$(id)", "-l", "lab ops", "root\n"])]
    res = await run_on_hosts(targets, "touch /tmp/gki-pwned", options(lab_keys, kh))
    assert len(res) == len(targets)
    for t in targets:
        assert res[t.name].error.kind == "invalid-target", (t, res[t.name])
    with pytest.raises(InvalidTarget):
        await run_on_hosts([target(h)], "true", dataclasses.replace(
            options(lab_keys, kh), user="x;id"))
    # the jump host (ssh.jumpHost) is parsed and validated before any connection
    for jump in (f"labops;touch /tmp/gki-pwned@{h.address}", f"`id`@{h.address}",
                 f"{h.address};touch /tmp/gki-pwned", "$(touch /tmp/gki-pwned)",
                 "-oProxyCommand=touch /tmp/gki-pwned", f"{h.address}:22;id",
                 f"{h.address}:$(id)"):
        res = await run_on_hosts([target(h)], "touch /tmp/gki-pwned", dataclasses.replace(
            options(lab_keys, kh), jump_host=jump))
        assert res[h.name].error.kind == "invalid-target", (jump, res[h.name])
    assert not pwned.exists() and not (h.root / "tmp/gki-pwned").exists()


WEIRD_ROOT = "/srv/we ird;$(touch PWNED)'q\"`id`"


async def test_metacharacters_in_paths_and_args_are_quoted(new_host, lab_keys, tmp_path):
    h = new_host("kubelet-no-gate")
    weird = h.root / WEIRD_ROOT.lstrip("/")
    weird.parent.mkdir(parents=True, exist_ok=True)
    import shutil
    shutil.copytree(hosts.FIXTURES / "kubelet-no-gate", weird, symlinks=True)
    kh = known_hosts_for(tmp_path / "kh", h)
    opts = options(lab_keys, kh)
    r = (await run_on_hosts([target(h)], Script(PROBE_SCRIPT, (WEIRD_ROOT,)), opts))[h.name]
    assert r.ok, r
    remote = parse_probe(r.stdout)
    assert remote.host_root == WEIRD_ROOT + "/"
    assert comparable(remote) == comparable(probe_local(weird))
    arg = "a'b\"c;$(touch PWNED) `id` \\ $HOME *"
    r = (await run_on_hosts([target(h)], Script('printf "%s" "$1"', (arg,)), opts))[h.name]
    assert r.stdout == arg.encode()
    # a fix planned for that host root edits the file there, over SSH, as root
    from remote.fixes import kubelet_gate
    from remote.fixes.base import apply_change
    change = kubelet_gate.plan(remote, WEIRD_ROOT)
    res: HostResult = await apply_change(change, target(h), opts)
    assert res.ok, res.stderr
    assert "KubeletPodResourcesGet: true" in (weird / "var/lib/kubelet/config.yaml").read_text()
    assert not list(h.root.rglob("PWNED")) and not Path("PWNED").exists()


def _ssh_answers(keys: hosts.LabKeys, known_hosts: Path, **ssh: object):
    from installer.answers.model import validate_answers

    data = {"apiVersion": "gpu-kata-installer.io/v1alpha1", "kind": "Answers",
            "ssh": {"user": hosts.LAB_USER, "identityFile": str(keys.identity),
                    "knownHosts": str(known_hosts), "useAgent": False, **ssh},
            "kataDeploy": {"version": "3.29.0"}, "gpuOperator": {"version": "v26.3.1"}}
    return validate_answers(data, {}, "answers")


async def test_a_missing_default_ssh_config_is_no_config_and_a_named_missing_one_exit_2(
        new_host, lab_keys, tmp_path, monkeypatch):
    """ssh.configFile defaults to ~/.ssh/config. Where there is none (a fresh CI runner, a
    root shell), every host was `unreachable` (asyncssh was handed a file that is not
    there); ssh itself reads it only when it exists, and so does the installer now. A path
    the operator names must exist (`ssh -F` refuses a missing one too)."""
    from installer.errors import UserError
    from installer.hosts.access import host_access

    h = new_host("cpu-only")
    kh = known_hosts_for(tmp_path / "kh", h)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.ssh/config here
    opts = host_access(_ssh_answers(lab_keys, kh)).options  # configFile: the default
    r = (await run_on_hosts([target(h)], "id -un", opts))[h.name]
    assert r.ok and r.stdout == b"labops\n", r.error
    # ... and once there is one, it is read: an alias only it knows reaches the host.
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text(f"Host labalias\n  HostName {h.address}\n")
    r = (await run_on_hosts([HostTarget("n1", "labalias")], "id -un", opts))["n1"]
    assert r.ok and r.stdout == b"labops\n", r.error
    with pytest.raises(UserError) as err:
        host_access(_ssh_answers(lab_keys, kh, configFile=str(tmp_path / "nope")))
    assert err.value.exit_code == 2 and str(tmp_path / "nope") in str(err.value)
    assert "ssh.configFile" in str(err.value) and "fix:" in str(err.value)
