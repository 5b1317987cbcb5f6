"""One SSH connection and command with asyncssh: the part of `remote.ssh` that needs it.

Why a module of its own: importing asyncssh (and the cryptography it loads) costs about as
much CPU as the whole discovery of the cluster (BENCHMARKS.md section 5).
`remote.ssh` - options, results, command building, the fan-out - imports this module only
when a run reaches a host, so a process that never connects (uninstall, a dry-run from
recorded facts, the wizard until it probes) does not pay for it, and one that does pays
after discovery, not before its first event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from remote.hostkeys import KeyVerdict, KnownHosts, Policy, decide, known_hosts_name
from remote.sshkeep import Connections
from remote.sshtypes import (
    Command,
    ConfirmHostKey,
    HostError,
    HostResult,
    SSHOptions,
    build_command,
)
from remote.targets import HostTarget, InvalidTarget, JumpHost

log = logging.getLogger("remote.ssh")

SUDO_FAIL_MARKERS = (b"incorrect password", b"a password is required", b"Sorry, try again",
                     b"is not in the sudoers", b"not allowed to execute", b"no tty present",
                     b"must have a tty", b"a terminal is required")

_CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
            "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr"]


class _Client(asyncssh.SSHClient):
    def __init__(self, store: KnownHosts, policy: Policy, verdict: KeyVerdict,
                 ask: bool) -> None:
        self._store, self._policy, self._verdict, self._ask = store, policy, verdict, ask

    def connection_lost(self, exc: Exception | None) -> None:
        # Kept so a command cut short by a dying host reports why (asyncssh then returns
        # a process result without exit status instead of raising).
        self._verdict.lost = exc

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        return decide(self._store, self._policy, self._verdict, host, addr, port, key,
                      ask=self._ask)


@dataclass
class Run:
    """Per-call state shared by all hosts of one run_on_hosts call."""

    options: SSHOptions
    store: KnownHosts
    client_keys: list | None
    passphrase: str | None
    confirm: ConfirmHostKey | None
    known: asyncssh.SSHKnownHosts | None = None
    jump: asyncssh.SSHClientConnection | None = None
    jump_error: HostError | None = None
    jump_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    known_stamp: tuple[int, int] | None = None  # known_hosts as `known` was read from it

    def refresh_known(self) -> None:
        """Read known_hosts again if it changed since: a run that keeps connections lives
        long, and each new connection is checked against the file as it is now."""
        stamp = _stamp(self.store.path)
        if self.known is None or stamp != self.known_stamp:
            self.known, self.known_stamp = self.store.load(), stamp

    def close(self) -> None:
        if self.jump is not None:
            self.jump.close()


def start(options: SSHOptions, passphrase: str | None,
          confirm: ConfirmHostKey | None) -> Run | HostError:
    """What every host of one fan-out shares, or why the identity file cannot be used.

    The identity and known_hosts are read here once per run, not once per host."""
    try:
        keys = load_identity(options, passphrase)
    except Exception as e:
        return HostError("identity", f"cannot use identity file {options.identity_file}: "
                         f"{_describe(e)}",
                         "Check the path and the passphrase (passphrase_env or prompt).")
    store = KnownHosts(options.known_hosts)
    run = Run(options, store, keys, passphrase if keys is None else None, confirm)
    run.refresh_known()
    return run


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass
class Kept:
    """One host's connection kept for the run (remote.sshkeep), with what was learnt on it."""

    conn: asyncssh.SSHClientConnection
    verdict: KeyVerdict
    fingerprint: str | None
    use_password: bool | None = None  # the `sudo -n true` answer, asked once per connection
    busy: int = 0  # commands running on it now (Connections closes only idle ones)

    def alive(self) -> bool:
        return not self.conn.is_closed() and self.verdict.lost is None


async def _kept(keep: Connections, run: Run, t: HostTarget, result: HostResult
                ) -> tuple[tuple, Kept]:
    """This host's kept connection, opened (host key verified) if there is none alive."""
    key = (t.name, t.address, t.port, t.user, id(run))
    async with keep.lock(key):
        kept = keep.get(key)
        if kept is not None and kept.alive():
            result.host_key_fingerprint = kept.fingerprint
            return key, kept
        keep.drop(key)
        run.refresh_known()
        conn, verdict = await _open(run, t, result)
        kept = Kept(conn, verdict, result.host_key_fingerprint)
        keep.put(key, kept)
        return key, kept


def _conn_kwargs(run: Run, address: str, port: int | None, user: str | None,
                 verdict: KeyVerdict, ask: bool) -> dict:
    o = run.options
    kw: dict = {
        "host": address,
        "known_hosts": run.known,
        "client_factory": lambda: _Client(run.store, o.host_key_policy, verdict, ask),
        "connect_timeout": o.connect_timeout,
        "login_timeout": o.connect_timeout,
        "keepalive_interval": o.keepalive,
        "keepalive_count_max": o.keepalive_count,
        # AES-GCM first: hardware-accelerated and, in asyncssh, far cheaper per packet than
        # chacha20-poly1305. Everything else stays available for older servers.
        "encryption_algs": _CIPHERS,
    }
    if port is not None:
        kw["port"] = port
    if user is not None:
        kw["username"] = user
    if o.config_file == "":
        kw["config"] = None
    elif o.config_file:
        kw["config"] = [o.config_file]
    if run.client_keys is not None:
        kw["client_keys"] = run.client_keys
    elif run.passphrase is not None:
        kw["passphrase"] = run.passphrase
    if not o.use_agent:
        kw["agent_path"] = None
    return kw


def _key_error(v: KeyVerdict, store: KnownHosts, address: str) -> HostError:
    addr = known_hosts_name(address, v.port)  # as known_hosts names it: [::1]:2222
    if v.kind == "changed":
        return HostError(
            "host-key-changed",
            f"host key for {addr} CHANGED: {store.path} has "
            f"{', '.join(v.known_fingerprints)}, the host presents {v.fingerprint}. "
            "This is either a reinstalled host or someone intercepting the connection.",
            "Confirm the new fingerprint out of band (console/BMC: `ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub`); if it matches, remove the old key with "
            f"`{store.remove_command(v.host, v.port)}` and connect again.")
    return HostError(
        "host-key-unknown",
        f"host key for {addr} is not in {store.path} (the host presents {v.fingerprint})",
        "Verify the fingerprint out of band, then accept it (host key policy accept-new, or "
        f"`ssh-keyscan -p {v.port or 22} {address} >> {store.path}` after checking).")


async def _open(run: Run, t: HostTarget, result: HostResult
                ) -> tuple[asyncssh.SSHClientConnection, KeyVerdict]:
    """Connect to one target (through the jump host if any), applying the key policy."""
    o = run.options
    port = t.port if t.port is not None else o.port
    user = t.user if t.user is not None else o.user
    tunnel = await _jump(run) if o.jump_host else None
    for attempt in (1, 2):
        verdict = KeyVerdict(t.address, port)
        ask = run.confirm is not None and attempt == 1
        kw = _conn_kwargs(run, t.address, port, user, verdict, ask)
        if tunnel is not None:
            kw["tunnel"] = tunnel
        try:
            conn = await asyncio.wait_for(asyncssh.connect(**kw), o.connect_timeout + 5)
        except asyncssh.HostKeyNotVerifiable:
            result.host_key_fingerprint = verdict.fingerprint or None
            if verdict.kind == "pending" and run.confirm is not None and verdict.key:
                ok = run.confirm(t.address, verdict.fingerprint)
                if inspect.isawaitable(ok):
                    ok = await ok
                if ok:
                    run.store.record(t.address, port, verdict.key)
                    result.accepted_new_key = True
                    continue
                raise _Fail(HostError("host-key-unknown",
                                      f"host key {verdict.fingerprint} for {t.address} was "
                                      "not accepted", "Accept the key after verifying it.")
                            ) from None
            raise _Fail(_key_error(verdict, run.store, t.address)) from None
        result.host_key_fingerprint = verdict.fingerprint or _fp(conn)
        if verdict.kind == "accepted":
            result.accepted_new_key = True
            log.info("%s: accepted new host key %s", t.name, verdict.fingerprint)
        return conn, verdict
    raise _Fail(HostError("error", "host key acceptance loop"))  # pragma: no cover


def _fp(conn: asyncssh.SSHClientConnection) -> str | None:
    k = conn.get_server_host_key()
    return k.get_fingerprint("sha256") if k else None


async def _jump(run: Run) -> asyncssh.SSHClientConnection:
    async with run.jump_lock:
        if run.jump_error:
            raise _Fail(run.jump_error)
        if run.jump is None:
            try:
                j = JumpHost.parse(run.options.jump_host or "")
            except InvalidTarget as e:
                run.jump_error = HostError("invalid-target", f"jump host: {e}")
                raise _Fail(run.jump_error) from None
            tmp = HostResult("jump", j.address)
            try:
                run.jump, _ = await _open(
                    Run(dataclasses.replace(run.options, jump_host=None),
                         run.store, run.client_keys, run.passphrase, run.confirm, run.known),
                    HostTarget("jump", j.address, j.port, j.user), tmp)
            except _Fail as f:
                run.jump_error = HostError("jump-host",
                                           f"jump host {run.options.jump_host}: {f.error.message}",
                                           f.error.remedy)
                raise _Fail(run.jump_error) from None
            except BaseException as e:
                run.jump_error = HostError("jump-host",
                                           f"jump host {run.options.jump_host}: {_describe(e)}")
                raise _Fail(run.jump_error) from None
        return run.jump


class _Fail(Exception):
    def __init__(self, error: HostError) -> None:
        super().__init__(str(error))
        self.error = error


def _describe(e: BaseException) -> str:
    msg = str(e) or e.__class__.__name__
    if isinstance(e, asyncssh.DisconnectError) and e.reason:
        msg = e.reason
    return f"{msg} ({e.__class__.__name__})"


def _classify(e: BaseException, phase: str, t: HostTarget, o: SSHOptions) -> HostError:
    where = f"{t.address}:{t.port or o.port or 22}"
    if isinstance(e, asyncssh.PermissionDenied):
        return HostError("auth", f"{where}: authentication failed for user "
                         f"{t.user or o.user or '(default)'}: {_describe(e)}",
                         "Check the user, that the public key is in the host's "
                         "authorized_keys, and the identity file / agent.")
    if isinstance(e, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return HostError("identity", f"identity file: {_describe(e)}",
                         "Check the identity file and its passphrase.")
    if isinstance(e, asyncio.TimeoutError | TimeoutError):
        which, limit = (("connect", o.connect_timeout) if phase == "connecting" else
                        ("command", o.command_timeout))
        return HostError("timeout", f"{where}: timed out while {phase} (the SSH {which} "
                         f"timeout is {limit:g} s)",
                         "Check that the host is up and reachable and what it is waiting on; "
                         f"raise the {which} timeout (answers: ssh.{which}Timeout) for slow "
                         "links or long commands.")
    if isinstance(e, asyncssh.ConnectionLost | asyncssh.DisconnectError | ConnectionError):
        return HostError("unreachable", f"{where}: connection lost while {phase}: {_describe(e)}",
                         "The host or its sshd went away; check the host and retry.")
    if isinstance(e, OSError):
        return HostError("unreachable", f"{where}: {phase}: {_describe(e)}",
                         "Check the address, port, routing and that sshd is running.")
    if isinstance(e, asyncssh.ChannelOpenError):
        return HostError("error", f"{where}: cannot open a session: {_describe(e)}")
    return HostError("error", f"{where}: {phase}: {_describe(e)}")


async def run_one(run: Run, t: HostTarget, cmd: Command, sudo: bool,
                  sudo_password: str | None, input_data: bytes | None,
                  keep: Connections | None = None) -> HostResult:
    """Run one command on one host: on a connection of its own, closed after it, or on
    the host's connection kept in `keep` (which forgets it if anything goes wrong)."""
    o = run.options
    res = HostResult(t.name, t.address)
    start = time.monotonic()
    phase = "connecting"
    key: tuple | None = None
    kept: Kept | None = None
    try:
        t.validate()
        if keep is None:
            conn, verdict = await _open(run, t, res)
        else:
            key, kept = await _kept(keep, run, t, res)
            conn, verdict = kept.conn, kept.verdict
            kept.busy += 1
        async with conn if kept is None else contextlib.nullcontext():
            use_pw = False
            if sudo and sudo_password is not None and kept is not None and \
                    kept.use_password is not None:
                use_pw = kept.use_password
            elif sudo and sudo_password is not None:
                phase = "checking sudo"
                probe = await asyncio.wait_for(conn.run("sudo -n true", encoding=None,
                                                        stdin=asyncssh.DEVNULL),
                                               o.command_timeout)
                use_pw = probe.exit_status != 0
                if kept is not None and probe.exit_status is not None:
                    kept.use_password = use_pw
            phase = "running the command"
            line = build_command(cmd, sudo=sudo, sudo_password=use_pw)
            data = (sudo_password + "\n").encode() if use_pw and sudo_password else b""
            if input_data:
                if use_pw:
                    raise _Fail(HostError("error", "stdin input cannot be combined with a "
                                          "sudo password"))
                data = input_data
            log.debug("%s: exec %s", t.name, line[:200].replace("\n", "\\n"))
            stdin = {"input": data} if data else {"stdin": asyncssh.DEVNULL}
            r = await asyncio.wait_for(conn.run(line, encoding=None, check=False, **stdin),
                                       o.command_timeout)
            res.exit_status = r.exit_status if r.exit_status is not None else -1
            res.stdout = bytes(r.stdout or b"")
            res.stderr = bytes(r.stderr or b"")
            if r.exit_status is None and not r.exit_signal:
                why = verdict.lost
                res.error = HostError(
                    "unreachable", f"{t.address}: connection lost while running the command"
                    + (f": {_describe(why)}" if why else " (no exit status)"),
                    "The host or its sshd went away mid-command; check the host and retry.")
            elif r.exit_signal:
                res.error = HostError("unreachable", f"{t.address}: command killed by signal "
                                      f"{r.exit_signal[0]} (session dropped)")
            elif sudo and res.exit_status != 0 and _sudo_failed(res.stderr):
                res.error = HostError(
                    "sudo", f"{t.address}: sudo refused: "
                    + res.stderr.decode("utf-8", "replace").strip().splitlines()[-1][:300],
                    "Give the user password-less sudo for the installer, or supply the sudo "
                    "password (it is sent on stdin only).")
    except InvalidTarget as e:
        res.error = HostError("invalid-target", str(e), "Fix the node name, address or user.")
    except _Fail as f:
        res.error = f.error
    except TimeoutError as e:
        res.error = _classify(e, phase, t, o)
    except Exception as e:
        res.error = _classify(e, phase, t, o)
    res.duration = time.monotonic() - start
    if kept is not None:
        kept.busy -= 1
    if keep is not None and key is not None and res.error and res.error.kind != "sudo":
        keep.drop(key)  # the host's answer is in doubt: the next call connects afresh
    if res.error:
        log.info("%s: %s", t.name, res.error)
    return res


def _sudo_failed(stderr: bytes) -> bool:
    return any(m in stderr for m in SUDO_FAIL_MARKERS) and b"sudo" in stderr


def load_identity(options: SSHOptions, passphrase: str | None) -> list | None:
    """Read the identity file once per run (decrypting a bcrypt-protected key costs real
    CPU; doing it per host would dominate a 100-host fan-out)."""
    if not options.identity_file:
        return None
    path = Path(options.identity_file).expanduser()
    key = asyncssh.read_private_key(str(path), passphrase)
    keys: list = [key]
    cert = Path(str(path) + "-cert.pub")
    if cert.exists():
        keys = [(key, asyncssh.read_certificate(str(cert)))]
    return keys
