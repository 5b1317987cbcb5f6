"""SSH fan-out: run one command or script on many hosts at once, under a concurrency
limit, and get one result per host - output or a typed error with a remedy.

Why this shape: the installer's questions ("probe every GPU node", "apply this fix on
node-3") are per host, and one unreachable host must never stop the others. Every failure
becomes a `HostError(kind, message, remedy)` an operator can act on; nothing raises out of
`run_on_hosts` for a host-level problem.

Secrets (key passphrase, sudo password) are parameters held in memory only: never in
SSHOptions, argv, environment of remote commands, or logs. The sudo password reaches
`sudo -S` on stdin, and the command sudo runs starts with stdin redirected from /dev/null,
so nothing it runs can read (or echo) the password.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import asyncssh

from remote.hostkeys import KeyVerdict, KnownHosts, Policy, decide, known_hosts_name
from remote.targets import HostTarget, InvalidTarget, JumpHost, validate_user

log = logging.getLogger(__name__)

ErrorKind = Literal["invalid-target", "unreachable", "timeout", "host-key-unknown",
                    "host-key-changed", "auth", "identity", "sudo", "jump-host", "error"]


@dataclass(frozen=True)
class SSHOptions:
    """How to connect. None means "from ~/.ssh/config, else the SSH default".

    `passphrase_env` names an environment variable holding the identity's passphrase (the
    value is read at connect time and not kept); a prompted passphrase is passed to
    `run_on_hosts(passphrase=...)` instead. `config_file=""` disables ssh_config."""

    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    passphrase_env: str | None = None
    use_agent: bool = True
    jump_host: str | None = None
    known_hosts: str | None = None
    host_key_policy: Policy = "strict"
    config_file: str | None = None
    connect_timeout: float = 15.0
    command_timeout: float = 300.0
    keepalive: float = 15.0
    keepalive_count: int = 3


@dataclass(frozen=True)
class HostError:
    kind: ErrorKind
    message: str
    remedy: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass
class HostResult:
    name: str
    address: str
    exit_status: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    error: HostError | None = None
    duration: float = 0.0
    host_key_fingerprint: str | None = None
    accepted_new_key: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.exit_status == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Script:
    """A POSIX sh script plus arguments. It travels as `sh -c <body> gki <args...>` with
    every piece shell-quoted, so arguments (paths, names) are data, never code."""

    body: str
    args: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        return ["sh", "-c", self.body, "gki", *self.args]


Command = str | Script
ResultCallback = Callable[[HostResult], object]
ConfirmHostKey = Callable[[str, str], bool | Awaitable[bool]]

SUDO_FAIL_MARKERS = (b"incorrect password", b"a password is required", b"Sorry, try again",
                     b"is not in the sudoers", b"not allowed to execute", b"no tty present",
                     b"must have a tty", b"a terminal is required")


def build_command(cmd: Command, *, sudo: bool, sudo_password: bool) -> str:
    """The exec string sent over SSH (pure, so tests can assert on quoting)."""
    argv = cmd.argv() if isinstance(cmd, Script) else ["sh", "-c", cmd]
    # `exec`: the login shell that sshd starts replaces itself instead of forking once more.
    if not sudo:
        return cmd if isinstance(cmd, str) else "exec " + shlex.join(argv)
    if sudo_password:
        # -S: password from stdin; -k: ignore cached credentials so sudo always consumes
        # the line we send; -p '': no prompt text. The command then detaches stdin.
        argv[2] = "exec </dev/null\n" + argv[2]
        return "exec " + shlex.join(["sudo", "-S", "-k", "-p", "", "--", *argv])
    return "exec " + shlex.join(["sudo", "-n", "--", *argv])


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
class _Run:
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


def _conn_kwargs(run: _Run, address: str, port: int | None, user: str | None,
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


async def _open(run: _Run, t: HostTarget, result: HostResult
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


async def _jump(run: _Run) -> asyncssh.SSHClientConnection:
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
                    _Run(dataclasses.replace(run.options, jump_host=None),
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
        return HostError("timeout", f"{where}: timed out while {phase}",
                         "Check that the host is up and reachable; raise the timeout for slow "
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


async def _run_one(run: _Run, t: HostTarget, cmd: Command, sudo: bool,
                   sudo_password: str | None, input_data: bytes | None) -> HostResult:
    o = run.options
    res = HostResult(t.name, t.address)
    start = time.monotonic()
    phase = "connecting"
    try:
        t.validate()
        conn, verdict = await _open(run, t, res)
        async with conn:
            use_pw = False
            if sudo and sudo_password is not None:
                phase = "checking sudo"
                probe = await asyncio.wait_for(conn.run("sudo -n true", encoding=None,
                                                        stdin=asyncssh.DEVNULL),
                                               o.command_timeout)
                use_pw = probe.exit_status != 0
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


async def run_on_hosts(
    targets: Sequence[HostTarget],
    command_or_script: Command | Callable[[HostTarget], Command],
    options: SSHOptions,
    *,
    limit: int = 50,
    sudo: bool = False,
    sudo_password: str | None = None,
    passphrase: str | None = None,
    on_result: ResultCallback | None = None,
    confirm_host_key: ConfirmHostKey | None = None,
    input: bytes | None = None,
) -> dict[str, HostResult]:
    """Run a command (str, sent as is) or a Script on every target, at most `limit` at a
    time. Returns {target.name: HostResult}; `on_result` is called as each host finishes
    (it may be a coroutine function). `command_or_script` may be a function of the target
    for per-host scripts.

    `sudo=True` runs it as root: password-less sudo is tried first (`sudo -n true`), and
    `sudo_password`, if given, is used only when needed. `confirm_host_key(host,
    fingerprint) -> bool` (sync or async) decides unknown keys under policy accept-new."""
    if options.user is not None:
        validate_user(options.user)
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError("target names must be unique (results are keyed by name)")
    if passphrase is None and options.passphrase_env:
        passphrase = os.environ.get(options.passphrase_env)
    store = KnownHosts(options.known_hosts)
    try:
        keys = load_identity(options, passphrase)
    except Exception as e:
        err = HostError("identity", f"cannot use identity file {options.identity_file}: "
                        f"{_describe(e)}",
                        "Check the path and the passphrase (passphrase_env or prompt).")
        out = {t.name: HostResult(t.name, t.address, error=err) for t in targets}
        for r in out.values():
            await _callback(on_result, r)
        return out
    run = _Run(options, store, keys, passphrase if keys is None else None, confirm_host_key)
    run.known = store.load()  # parsed once per run, not once per host
    sem = asyncio.Semaphore(max(1, limit))

    async def one(t: HostTarget) -> HostResult:
        async with sem:
            cmd = command_or_script(t) if callable(command_or_script) else command_or_script
            r = await _run_one(run, t, cmd, sudo, sudo_password, input)
        await _callback(on_result, r)
        return r

    try:
        results = await asyncio.gather(*(one(t) for t in targets))
    finally:
        if run.jump is not None:
            run.jump.close()
    return {r.name: r for r in results}


async def _callback(cb: ResultCallback | None, r: HostResult) -> None:
    if cb is None:
        return
    try:
        out = cb(r)
        if inspect.isawaitable(out):
            await out
    except Exception:
        log.exception("on_result callback failed for %s", r.name)
