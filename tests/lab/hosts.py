"""Simulated GPU hosts served by a real OpenSSH sshd on loopback.

Each `SimHost` is one machine as the installer sees it over SSH: `ssh labops@127.0.10.N`
lands in a shell whose `/proc/cmdline`, `/sys/bus/pci`, `/etc`, `/var/lib/kubelet` are that
host's fixture tree, and whose `update-grub`, `modprobe`, `systemctl`, `reboot`, `udevadm`...
are lab simulations acting on that tree (see `tests/lab/simbin/labsim.py` and HOSTS.md).

How (why each piece):
- The host's writable root is `state_dir/<name>/root`: a copy of the fixture tree plus a
  small skeleton (bin/lib symlinks into /usr, device-node mount points, passwd, sudoers).
  Tests read and compare files there directly.
- One real `/usr/sbin/sshd` per host, started under `unshare --mount --pid --uts --fork`
  with private propagation, so every mount below exists only in that sshd's namespace and
  vanishes when it dies. Inside, a tmpfs on /mnt holds `/mnt/root` (a bind of the host root)
  used as sshd's `ChrootDirectory`; the real /usr is bind-mounted read-only into it, and the
  simulated commands are mounted over `/usr/local/bin` and `/usr/local/sbin`, which come
  first on sshd's and sudo's PATH.
- Safety: the namespace's bounding set drops CAP_SYS_BOOT and CAP_SYS_MODULE (setpriv), so
  nothing under a simulated host can reboot the machine or load a kernel module even by
  mistake; the PID namespace means `kill -1` in a simulated reboot only reaches that
  host's processes; /usr is read-only; the simulated commands refuse to run outside a root
  that carries the lab marker `/.lab/state.json`.

This module has no pytest dependency: the lab control plane and the integration tests both
use it. It needs root (mounts, namespaces, useradd).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from tests.fixtures.trees import OURS

LAB_USER = "labops"
SSHD = "/usr/sbin/sshd"
HERE = Path(__file__).resolve().parent
SIMBIN = HERE / "simbin"
FIXTURES = OURS  # the repository's host trees (tests.fixtures.trees has them all)
DEFAULT_STATE = Path(os.environ.get("GKI_LAB_STATE", "/var/tmp/gpu-kata-lab/hosts"))

# Names of links that fixture trees store as relative symlinks. Some copies of the trees
# (e.g. the shared plain-vm) arrive with the links flattened into small text files holding
# the target; the lab turns those back into symlinks so sysfs writes through them work.
_LINK_PARENTS = ("sys/bus/pci/drivers/", "sys/kernel/iommu_groups/")
_LINK_NAMES = ("driver", "iommu_group")

_SETUP = r"""
set -eu
root=$1; simbin=$2; cfg=$3; akeys=$4; log=$5; hn=$6; full=$7; ro=$8
hostname "$hn" 2>/dev/null || true
mount -t tmpfs -o mode=0755,size=4m gki-lab /mnt
mkdir /mnt/root /mnt/lab
cp "$akeys" /mnt/lab/authorized_keys
chmod 0644 /mnt/lab/authorized_keys
mount --bind "$root" /mnt/root
if [ -d "$root/.lab/usr-layer" ]; then
  # The tree's own lib/ (e.g. lib/modules/<kernel>) layered over the real /usr, read-only.
  mount -t overlay gki-usr -o "lowerdir=$root/.lab/usr-layer:/usr" /mnt/root/usr
else
  mount --bind /usr /mnt/root/usr
  mount -o remount,bind,ro /mnt/root/usr
fi
for n in null zero urandom random tty full; do
  [ -e "/mnt/root/dev/$n" ] || : > "/mnt/root/dev/$n"
  mount --bind "/dev/$n" "/mnt/root/dev/$n"
done
for d in /mnt/root/usr/local/bin /mnt/root/usr/local/sbin; do
  mount --bind "$simbin" "$d"
  mount -o remount,bind,ro "$d"
done
# Fault injection: a tiny full tmpfs ("disk full") or a read-only bind over some folders.
i=0
for rel in $full; do
  i=$((i + 1)); d=/mnt/root/$rel; keep=/mnt/lab/keep$i
  mkdir -p "$keep" && cp -a "$d/." "$keep/"
  mount -t tmpfs -o size=64k,mode=0755 gki-full "$d"
  cp -a "$keep/." "$d/"
  dd if=/dev/zero of="$d/.lab-filler" bs=4096 2>/dev/null || true
done
for rel in $ro; do
  mount --bind "/mnt/root/$rel" "/mnt/root/$rel"
  mount -o remount,bind,ro "/mnt/root/$rel"
done
exec setpriv --bounding-set -sys_boot,-sys_module,-sys_time -- \
  /usr/sbin/sshd -D -E "$log" -f "$cfg"
"""


class LabError(RuntimeError):
    """The lab could not be set up; the message says what is missing and how to fix it."""


# ----------------------------------------------------------------------------- prerequisites

def ensure(*, install: bool = True) -> None:
    """Make this machine able to run simulated hosts: root, OpenSSH server, sudo,
    util-linux tools, the lab user. Installs missing packages with apt when allowed, since
    CI runs on a fresh machine as root."""
    if os.geteuid() != 0:
        raise LabError("the SSH lab needs root (mount namespaces, chroot, useradd)")
    # sshd and sudo are the real programs under test; the simulated host commands run on
    # the system's /usr/bin/python3; openssl hashes the lab's sudo passwords.
    missing = [p for p, path in (("openssh-server", SSHD), ("sudo", "/usr/bin/sudo"),
                                 ("python3", "/usr/bin/python3"), ("openssl", "/usr/bin/openssl"))
               if not os.path.exists(path)]
    if missing:
        if not install or not shutil.which("apt-get"):
            raise LabError(f"missing {', '.join(missing)}: run `apt-get install -y "
                           f"{' '.join(missing)}`")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=False, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env,
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(SSHD) or not os.path.exists("/usr/bin/python3"):
            raise LabError(f"apt-get install {' '.join(missing)} failed:\n{r.stderr[-2000:]}")
    for tool in ("unshare", "setpriv", "mount", "useradd"):
        if not shutil.which(tool):
            raise LabError(f"{tool} not found (util-linux / passwd packages)")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    ensure_user(LAB_USER)


def ensure_user(name: str) -> tuple[int, int]:
    """Create `name` on the real system if absent (sshd looks users up before chroot) and
    give it a non-locked, password-less entry so key login works with UsePAM=no."""
    try:
        import pwd
        pw = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--home-dir", f"/home/{name}",
                        "--shell", "/bin/sh", "--user-group", name], check=True)
        import pwd
        pw = pwd.getpwnam(name)
    # '!' would lock the account for sshd; '*' means "no password" but not locked.
    with open("/etc/shadow") as f:
        locked = any(line.startswith(f"{name}:!") for line in f)
    if locked:
        subprocess.run(["usermod", "-p", "*", name], check=True)
    return pw.pw_uid, pw.pw_gid


# ----------------------------------------------------------------------------- keys

@dataclass
class LabKeys:
    """The client identities the lab authorizes: a plain key and a passphrase-protected one
    (for the passphrase tests). Generated once per state dir."""

    dir: Path
    passphrase: str = "lab-passphrase"

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        if not self.identity.exists():
            _write_key(asyncssh.generate_private_key("ssh-ed25519", comment="labops@lab"),
                       self.identity)
        if not self.encrypted_identity.exists():
            _write_key(asyncssh.generate_private_key("ssh-ed25519", comment="labops-enc@lab"),
                       self.encrypted_identity, self.passphrase)
        keys = [self.identity.with_suffix(".pub").read_text().strip(),
                self.encrypted_identity.with_suffix(".pub").read_text().strip()]
        self.authorized_keys.write_text("\n".join(keys) + "\n")

    @property
    def identity(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def encrypted_identity(self) -> Path:
        return self.dir / "id_ed25519_enc"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "authorized_keys"


def _write_key(key: asyncssh.SSHKey, path: Path, passphrase: str | None = None) -> None:
    data = key.export_private_key("openssh", passphrase=passphrase) if passphrase else \
        key.export_private_key("openssh")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.with_suffix(".pub").write_bytes(key.export_public_key("openssh"))


# ----------------------------------------------------------------------------- host

@dataclass
class SimHost:
    """One simulated host. `tree` is the fixture folder it is built from; `state_dir`
    holds its writable root, host key, sshd config and log under `state_dir/<name>/`.

    `sudo_password`: None gives the lab user password-less sudo; a string makes sudo ask
    for that password (the hash is stored in the chroot's /etc/shadow, the clear text
    nowhere on disk).

    Fault injection (inside the host's namespace only): `full_dirs` become a 64 KiB tmpfs
    holding their original files plus a filler that uses up the space ("disk full");
    `readonly_dirs` become read-only bind mounts. Paths are relative to the host root."""

    name: str
    address: str
    port: int = 22
    tree: Path = FIXTURES / "gpu-vfio-ready"
    state_dir: Path = DEFAULT_STATE
    sudo_password: str | None = None
    keys: LabKeys | None = None
    users: tuple[str, ...] = (LAB_USER,)
    full_dirs: tuple[str, ...] = ()
    readonly_dirs: tuple[str, ...] = ()
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _host_key: asyncssh.SSHKey | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.address)  # only literal loopback addresses here
        if not ipaddress.ip_address(self.address).is_loopback:
            raise LabError(f"{self.address} is not a loopback address; the lab binds to 127/8")
        self.tree = Path(self.tree)
        self.state_dir = Path(self.state_dir)
        for rel in (*self.full_dirs, *self.readonly_dirs):
            if not re.fullmatch(r"[A-Za-z0-9._/-]+", rel) or rel.startswith("/") or ".." in rel:
                raise LabError(f"fault-injection folder {rel!r} must be a plain relative path")
        if self.keys is None:
            self.keys = LabKeys(self.state_dir / "lab")

    # -- paths
    @property
    def dir(self) -> Path:
        return self.state_dir / self.name

    @property
    def root(self) -> Path:
        """The host's filesystem as its shell sees it (`/` inside the chroot)."""
        return self.dir / "root"

    @property
    def host_key_path(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def log_path(self) -> Path:
        return self.dir / "sshd.log"

    # -- build
    def build(self, *, fresh: bool = True) -> None:
        """(Re)create the host root from the fixture tree. `fresh=False` keeps an existing
        root (e.g. to restart sshd on a host whose files a test changed)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        if fresh or not self.root.exists():
            if self.root.exists():
                shutil.rmtree(self.root)
            _copy_tree(self.tree, self.root)
            _assemble_root(self.root, self.users, self.sudo_password)
        if not self.host_key_path.exists():
            _write_key(asyncssh.generate_private_key("ssh-ed25519",
                                                     comment=f"host-{self.name}"),
                       self.host_key_path)
        self._host_key = None
        (self.dir / "sshd_config").write_text(self._sshd_config())

    def _sshd_config(self) -> str:
        return "\n".join([
            f"ListenAddress {self.listen_address}",
            f"HostKey {self.host_key_path}",
            "PidFile none",
            "AuthorizedKeysFile /mnt/lab/authorized_keys",
            "StrictModes no",
            "UsePAM no",
            "UseDNS no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin no",
            f"AllowUsers {' '.join(self.users)}",
            "ChrootDirectory /mnt/root",
            "MaxStartups 200:30:400",
            "MaxSessions 200",
            "LoginGraceTime 30",
            "X11Forwarding no",
            "AllowTcpForwarding yes",
            "PrintMotd no",
            "PrintLastLog no",
            "Subsystem sftp internal-sftp",
            "LogLevel INFO",
            "",
        ])

    # -- lifecycle
    def spawn(self) -> None:
        """Start sshd without waiting for it to listen (see `wait_ready`)."""
        if self.running:
            return
        if not self.root.exists():
            self.build()
        with open(self.dir / "lab-setup.log", "ab") as log:
            self._proc = subprocess.Popen(
                ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child=SIGKILL",
                 "--propagation", "private", "/bin/sh", "-c", _SETUP, "lab-setup",
                 str(self.root), str(SIMBIN), str(self.dir / "sshd_config"),
                 str(self.keys.authorized_keys), str(self.log_path),
                 _hostname(self.root, self.name), " ".join(self.full_dirs),
                 " ".join(self.readonly_dirs)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Block until sshd answers with its SSH banner."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise LabError(f"sshd for {self.name} exited ({self._proc.returncode}): "
                               f"{self._tail()}")
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise LabError(f"sshd for {self.name} on {self.address}:{self.port} not ready: "
                       f"{last}; {self._tail()}")

    def start(self, timeout: float = 20.0) -> SimHost:
        self.spawn()
        self.wait_ready(timeout)
        return self

    def stop(self) -> None:
        """Stop sshd; the namespace and every mount and session in it go with it.
        (unshare ignores SIGTERM while it waits, so the signal goes to sshd, the
        namespace's init; when init exits the kernel kills the rest of the namespace.)"""
        p = self._proc
        if p is None:
            return
        if p.poll() is None:
            for child in _children(p.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()  # --kill-child SIGKILLs the namespace's init
                p.wait(5)
        self._proc = None

    def kill(self) -> None:
        """Hard-kill sshd (the namespace's PID 1) and with it every session: what a host
        crash looks like from the client."""
        p = self._proc
        if p is None or p.poll() is not None:
            return
        for child in _children(p.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        p.kill()
        p.wait(5)
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- identity
    @property
    def host_key(self) -> asyncssh.SSHKey:
        if self._host_key is None:
            self._host_key = asyncssh.read_private_key(str(self.host_key_path))
        return self._host_key

    @property
    def listen_address(self) -> str:
        """sshd's `ListenAddress`: an IPv6 literal goes in brackets before its port."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def known_hosts_line(self, *, hashed: bool = False) -> str:
        """The line `ssh` would record for this host (bracketed when the port is not 22)."""
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        pub = self.host_key.export_public_key("openssh").decode().split()
        return f"{host} {pub[0]} {pub[1]}"

    def host_key_fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    def regenerate_host_key(self) -> None:
        """Give the host a new key (a reinstalled or impersonated host). Takes effect at
        the next start."""
        _write_key(asyncssh.generate_private_key("ssh-ed25519", comment=f"host-{self.name}"),
                   self.host_key_path)
        self._host_key = None

    # -- observation
    def events(self) -> list[str]:
        """What the simulated commands recorded (`systemctl restart kubelet`, `reboot`...)."""
        p = self.root / ".lab" / "events"
        return p.read_text().splitlines() if p.exists() else []

    def _tail(self) -> str:
        out = []
        for p in (self.dir / "lab-setup.log", self.log_path):
            if p.exists():
                out.append(p.read_text(errors="replace")[-1500:])
        return " | ".join(out)


def _hostname(root: Path, default: str) -> str:
    for rel in ("etc/hostname", "proc/sys/kernel/hostname"):
        p = root / rel
        if p.is_file():
            name = p.read_text(errors="replace").strip()
            if name:
                return name[:64]
    return default[:64]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    task = Path(f"/proc/{pid}/task")
    with contextlib.suppress(OSError):
        for t in task.iterdir():
            with contextlib.suppress(OSError):
                out += [int(x) for x in (t / "children").read_text().split()]
    return out


# ----------------------------------------------------------------------------- assembly

def _copy_tree(src: Path, dst: Path) -> None:
    """Copy a fixture tree, normalising modes (the shared trees are read-only) and turning
    flattened link files back into symlinks."""
    if not src.is_dir():
        raise LabError(f"fixture tree {src} does not exist")
    shutil.copytree(src, dst, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(dst):
        os.chmod(dirpath, 0o755)
        rel_dir = os.path.relpath(dirpath, dst)
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            if os.path.islink(p):
                continue
            os.chmod(p, 0o644)
            rel = os.path.join(rel_dir, fn)
            if fn == ".gitkeep":
                os.unlink(p)
                continue
            if fn in _LINK_NAMES or any(rel.startswith(x) for x in _LINK_PARENTS):
                with open(p, "rb") as f:
                    head = f.read(300)
                text = head.decode(errors="replace").strip()
                if text.startswith("../") and "\n" not in text:
                    os.unlink(p)
                    os.symlink(text, p)
    os.chmod(dst, 0o755)


def _assemble_root(root: Path, users: tuple[str, ...], sudo_password: str | None) -> None:
    """Add what a shell needs around the host's own files: /usr mount point, merged-/usr
    symlinks, device-node mount points, accounts, sudo and PAM config, lab state."""
    import grp
    import pwd

    (root / "usr").mkdir(exist_ok=True)
    own_lib = root / "lib"
    if own_lib.is_dir() and not own_lib.is_symlink():
        # A tree with lib/ (lib/modules/<kernel>/...): its files appear under /usr/lib in the
        # chroot through an overlay, since /lib must stay a link to the real /usr/lib.
        layer = root / ".lab" / "usr-layer"
        layer.mkdir(parents=True, exist_ok=True)
        os.chmod(root / ".lab", 0o700)
        shutil.move(str(own_lib), str(layer / "lib"))
    for link in ("bin", "sbin", "lib", "lib64"):
        p = root / link
        if p.is_symlink() or not p.exists():
            if p.is_symlink():
                p.unlink()
            if os.path.exists(f"/usr/{link}"):
                os.symlink(f"usr/{link}", p)
        else:
            raise LabError(f"fixture tree has a real {link}/ directory; not supported")
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    for n in ("null", "zero", "urandom", "random", "tty", "full"):
        (dev / n).touch()
    for d, mode in (("tmp", 0o1777), ("var/tmp", 0o1777), ("run", 0o755), ("root", 0o700),
                    ("etc", 0o755), ("home", 0o755), ("opt", 0o755), ("boot", 0o755)):
        (root / d).mkdir(parents=True, exist_ok=True)
        os.chmod(root / d, mode)
    etc = root / "etc"
    passwd = ["root:x:0:0:root:/root:/bin/sh", "nobody:x:65534:65534:nobody:/nonexistent:"
              "/usr/sbin/nologin"]
    group = ["root:x:0:", "shadow:x:42:", "nogroup:x:65534:"]
    shadow = ["root:*:19800:0:99999:7:::"]
    hashed = _sha512_crypt(sudo_password) if sudo_password is not None else "*"
    sudoers = [
        'Defaults env_reset',
        'Defaults secure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"',
        'Defaults !fqdn, !lecture, !syslog, !use_pty',
        'root ALL=(ALL:ALL) ALL',
    ]
    for u in users:
        ensure_user(u)  # sshd resolves users on the real system before it chroots
        pw = pwd.getpwnam(u)
        gname = grp.getgrgid(pw.pw_gid).gr_name
        home = root / pw.pw_dir.lstrip("/")
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        passwd.append(f"{u}:x:{pw.pw_uid}:{pw.pw_gid}::{pw.pw_dir}:/bin/sh")
        group.append(f"{gname}:x:{pw.pw_gid}:")
        shadow.append(f"{u}:{hashed}:19800:0:99999:7:::")
        tag = "" if sudo_password is not None else "NOPASSWD: "
        sudoers.append(f"{u} ALL=(ALL:ALL) {tag}ALL")
    _write(etc / "passwd", "\n".join(passwd) + "\n", 0o644)
    _write(etc / "group", "\n".join(group) + "\n", 0o644)
    _write(etc / "shadow", "\n".join(shadow) + "\n", 0o640)
    _write(etc / "sudoers", "\n".join(sudoers) + "\n", 0o440)
    _write(etc / "nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
           0o644)
    (etc / "pam.d").mkdir(exist_ok=True)
    _write(etc / "pam.d" / "sudo",
           "auth required pam_unix.so\naccount required pam_permit.so\n"
           "session required pam_permit.so\n", 0o644)
    _write(etc / "pam.d" / "other",
           "auth required pam_deny.so\naccount required pam_deny.so\n"
           "session required pam_permit.so\n", 0o644)
    # Debian resolves awk, which, pager... through /etc/alternatives; the chroot's /etc is
    # the host tree's, so mirror the real links (they point into /usr, which is shared).
    alt = etc / "alternatives"
    if not alt.exists() and os.path.isdir("/etc/alternatives"):
        alt.mkdir()
        for name in os.listdir("/etc/alternatives"):
            src = os.path.join("/etc/alternatives", name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), alt / name)
    if os.path.exists("/etc/ld.so.cache") and not (etc / "ld.so.cache").exists():
        shutil.copyfile("/etc/ld.so.cache", etc / "ld.so.cache")
    if not (etc / "hosts").exists():
        _write(etc / "hosts", "127.0.0.1 localhost\n", 0o644)
    boot_id = root / "proc/sys/kernel/random/boot_id"
    if not boot_id.exists():
        _write(boot_id, str(uuid.uuid4()) + "\n", 0o444)
    _write_lab_state(root)


def require_sudo_password(root: Path, password: str, users: tuple[str, ...] = (LAB_USER,)
                          ) -> None:
    """Make sudo on a built host ask `password` for `users`, as `SimHost(sudo_password=...)`
    does at build time, without a rebuild or an sshd restart (sudo reads /etc/shadow and
    /etc/sudoers on every call). Used to plant a sudo password on the cluster lab's hosts."""
    etc = Path(root) / "etc"
    hashed = _sha512_crypt(password)
    shadow = []
    for line in (etc / "shadow").read_text().splitlines():
        user = line.split(":", 1)[0]
        shadow.append(f"{user}:{hashed}:19800:0:99999:7:::" if user in users else line)
    sudoers = []
    for line in (etc / "sudoers").read_text().splitlines():
        user = (line.split() or [""])[0]
        sudoers.append(f"{user} ALL=(ALL:ALL) ALL" if user in users else line)
    _write(etc / "shadow", "\n".join(shadow) + "\n", 0o640)
    _write(etc / "sudoers", "\n".join(sudoers) + "\n", 0o440)


def _write(p: Path, text: str, mode: int) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    os.chmod(p, mode)


def _sha512_crypt(password: str) -> str:
    """SHA-512 crypt hash for /etc/shadow, computed with `openssl passwd -6 -stdin` so the
    clear text never appears in any process's argv."""
    r = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def _write_lab_state(root: Path) -> None:
    """Record what a simulated boot needs to know about the host's "hardware" and installed
    system: the modules it loads at boot, which driver claims each device natively, the
    drivers built into the kernel, the IOMMU groups the hardware forms."""
    pci = root / "sys/bus/pci"
    modules_file = root / "proc/modules"
    boot_modules = None
    if modules_file.exists():
        boot_modules = [ln for ln in modules_file.read_text().splitlines() if ln.strip()]
    loaded = {ln.split()[0] for ln in boot_modules or []}
    native: dict[str, str] = {}
    groups: dict[str, str] = {}
    devices = sorted(p.name for p in (pci / "devices").iterdir()) if (pci / "devices").is_dir() \
        else []
    for bdf in devices:
        d = pci / "devices" / bdf
        drv = d / "driver"
        if drv.is_symlink():
            name = os.path.basename(os.readlink(drv))
            if name != "vfio-pci":
                native[bdf] = name
        grp_link = d / "iommu_group"
        if grp_link.is_symlink():
            groups[bdf] = os.path.basename(os.readlink(grp_link))
    drivers = sorted(p.name for p in (pci / "drivers").iterdir()) if (pci / "drivers").is_dir() \
        else []
    builtin = [dr for dr in drivers if dr.replace("-", "_") not in loaded]
    cpuinfo = (root / "proc/cpuinfo").read_text(errors="replace") \
        if (root / "proc/cpuinfo").exists() else ""
    state = {
        "boot_modules": boot_modules,
        "native_drivers": native,
        "builtin_drivers": builtin,
        "iommu_groups": groups,
        "cpu_vendor": "amd" if "AuthenticAMD" in cpuinfo else "intel",
        "dynamic_ids": {},
    }
    lab = root / ".lab"
    lab.mkdir(exist_ok=True)
    os.chmod(lab, 0o700)
    (lab / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))
    (lab / "events").touch()


# ----------------------------------------------------------------------------- fleet

def address_for(index: int, first: str = "127.0.10.1") -> str:
    """The index-th loopback address from `first`, skipping .0 and .255 of every /24."""
    base = int(ipaddress.ip_address(first))
    a = base
    for _ in range(index):
        a += 1
        while a & 0xFF in (0, 255):
            a += 1
    addr = ipaddress.ip_address(a)
    if not addr.is_loopback:
        raise LabError(f"ran out of loopback addresses at {addr}")
    return str(addr)


class SimHostFleet:
    """Many simulated hosts started together. `trees` is a list of fixture folders, used
    round-robin (or a single folder for all). Hosts are named `<prefix><n>`.

    Starting is parallel: building roots runs in a thread pool and all sshds are spawned
    before waiting on any, so 100 hosts start in seconds."""

    def __init__(self, count: int, trees: list[Path] | Path, *, state_dir: Path = DEFAULT_STATE,
                 first_address: str = "127.0.10.1", port: int = 22, prefix: str = "sim-",
                 sudo_password: str | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.keys = LabKeys(self.state_dir / "lab")
        tree_list = [Path(trees)] if isinstance(trees, str | Path) else [Path(t) for t in trees]
        self.hosts = [
            SimHost(f"{prefix}{i + 1}", address_for(i, first_address), port,
                    tree_list[i % len(tree_list)], self.state_dir, sudo_password, self.keys)
            for i in range(count)
        ]
        _raise_fd_limit(count * 8 + 1024)

    def __iter__(self):
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def __getitem__(self, i: int) -> SimHost:
        return self.hosts[i]

    def start(self, timeout: float = 60.0) -> SimHostFleet:
        for h in self.hosts:  # pure-Python file copying: threads only add GIL contention
            h.build()
        for h in self.hosts:
            h.spawn()
        deadline = time.monotonic() + timeout
        for h in self.hosts:
            h.wait_ready(max(1.0, deadline - time.monotonic()))
        return self

    def stop(self) -> None:
        for h in self.hosts:  # signal all first, then reap: stopping 500 hosts is quick
            p = h._proc
            if p is not None and p.poll() is None:
                for child in _children(p.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGTERM)
        for h in self.hosts:
            h.stop()

    def known_hosts(self) -> str:
        return "".join(h.known_hosts_line() + "\n" for h in self.hosts)

    def write_known_hosts(self, path: Path) -> Path:
        Path(path).write_text(self.known_hosts())
        return Path(path)


def _raise_fd_limit(want: int) -> None:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(want, soft), hard), hard))


def cleanup_state(state_dir: Path = DEFAULT_STATE) -> None:
    """Remove a lab state dir (host roots, keys). Stop the hosts first."""
    shutil.rmtree(state_dir, ignore_errors=True)


def tree_mode_ok(p: Path) -> bool:
    """True when a path is root-owned and not group/world-writable (what sshd demands of
    every component of a ChrootDirectory)."""
    st = p.stat()
    return st.st_uid == 0 and not (st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
