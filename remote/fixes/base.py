"""What every host fix shares: the HostChange value, the shell library its scripts use,
and running a change over SSH.

Why this shape: a fix is planned purely from HostFacts into a value whose `preview` is the
exact diff and commands, so the engine's dry-run prints what a real run would do and a
review screen can show it; only the engine decides when `apply_script` runs. The scripts
are plain POSIX sh + coreutils, run as root with sudo, and are safe to re-run:

- every edited file is guarded by the sha256 of the content the plan was made from, so a
  file that changed since the probe is never overwritten ("re-probe and plan again");
- re-running finds the new content already there and changes nothing (not even mtime);
- the first run keeps a backup `<file>.gpu-kata-installer.<fix>.bak` (or an `.absent`
  marker for files it creates) and never overwrites an existing one;
- writes go to a temp file in the same directory, are verified by checksum (a full disk
  shows up here), then renamed over the target, so a failure never leaves a half-written
  file; the temp files of a script killed mid-write are removed by the next run;
- undo puts the backup back byte for byte (or removes a created file).

Commands that act on the running system (update-grub, modprobe, systemctl, sysfs writes)
run only when the host root is `/`; against a mounted or captured tree the scripts edit
files only and say what they skipped.
"""

from __future__ import annotations

import difflib
import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from remote.hostfacts import HostFacts
from remote.ssh import Connections, HostResult, Script, SSHOptions, run_on_hosts
from remote.targets import HostTarget, validate_host_root


@dataclass(frozen=True)
class HostChange:
    """One planned change on one host. `preview` is the unified diff of every file it
    edits plus the exact commands it runs; `apply_script`/`undo_script` are complete
    POSIX sh scripts (host root embedded) to run as root."""

    name: str
    host: str
    description: str
    preview: str
    apply_script: str
    undo_script: str
    needs_reboot: bool = False
    needs_consent: bool = False
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class AfterReboot:
    """What a fix that waits for a reboot will do then, as far as it is known now."""

    description: str
    preview: str


class FixBlocked(Exception):
    """The fix cannot be planned safely on this host; `remedy` says what to do instead.

    `after_reboot` is set when the fix waits only for a reboot the same plan makes: it is
    what the fix will do then, shown before consent, since the re-probe after the reboot
    plans it for real and the operator must have seen it first."""

    def __init__(self, fix: str, reason: str, remedy: str = "", *,
                 after_reboot: AfterReboot | None = None) -> None:
        super().__init__(f"{fix}: {reason}")
        self.fix, self.reason, self.remedy = fix, reason, remedy
        self.after_reboot = after_reboot


@dataclass
class FileView:
    """File contents as planned so far (path relative to the host root -> text, None when
    absent). Planning several fixes in a row threads one view through them, so a second
    edit of the same file is planned against the first one's result."""

    facts: HostFacts
    overrides: dict[str, str | None] = field(default_factory=dict)

    def get(self, path: str) -> str | None:
        if path in self.overrides:
            return self.overrides[path]
        return self.facts.files.get(path)

    def set(self, path: str, text: str | None) -> None:
        self.overrides[path] = text


def sha256(text: str | None) -> str:
    if text is None:
        return "absent"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


# The shell library every fix script starts with. $ROOT ends in "/".
LIB = r"""
gki_fail() { printf 'gpu-kata-installer: %s\n' "$*" >&2; exit 1; }
gki_live() { [ "$ROOT" = / ]; }
gki_run() {
  if gki_live; then
    printf '+ %s\n' "$*"
    "$@" || gki_fail "command failed: $*"
  else
    printf 'skipped on a host tree (%s): %s\n' "$ROOT" "$*"
  fi
}
gki_sum() {
  if [ -e "$1" ]; then s=$(sha256sum < "$1") || return 1; echo "${s%% *}"; else echo absent; fi
}
# gki_tidy DIR: remove temp files a script killed mid-write left (never a target or backup)
gki_tidy() { rm -f "$1"/.gki-bak.* "$1"/.gki-new.* "$1"/.gki-undo.*; }
# gki_write FILE OLD_SHA NEW_SHA FIX: install $GKI_NEW as FILE
gki_write() {
  f=$1; cur=$(gki_sum "$f") || gki_fail "cannot read $f"
  d=${f%/*}; [ -n "$d" ] || d=/
  gki_tidy "$d"
  if [ "$cur" = "$3" ]; then printf 'unchanged: %s\n' "$f"; return 0; fi
  [ "$cur" = "$2" ] || gki_fail "$f changed since it was read (sha256 $cur); probe again"
  if [ "$2" = absent ]; then
    mkdir -p "$d" || gki_fail "cannot create $d"
    [ -e "$f.gpu-kata-installer.$4.absent" ] || : > "$f.gpu-kata-installer.$4.absent" \
      || gki_fail "cannot write $f.gpu-kata-installer.$4.absent"
  elif [ ! -e "$f.gpu-kata-installer.$4.bak" ]; then
    b=$(mktemp "$d/.gki-bak.XXXXXX") || gki_fail "cannot create a temp file in $d"
    if cp -p "$f" "$b" && [ "$(gki_sum "$b")" = "$2" ]; then
      mv -f "$b" "$f.gpu-kata-installer.$4.bak" || { rm -f "$b"; gki_fail "cannot back up $f"; }
    else
      rm -f "$b"; gki_fail "cannot back up $f (disk full?)"
    fi
  fi
  t=$(mktemp "$d/.gki-new.XXXXXX") || gki_fail "cannot create a temp file in $d"
  if ! printf '%s' "$GKI_NEW" > "$t" || [ "$(gki_sum "$t")" != "$3" ]; then
    rm -f "$t"; gki_fail "cannot write $f (disk full or read-only?); $f is unchanged"
  fi
  if [ -e "$f" ]; then
    chmod --reference="$f" "$t" && chown --reference="$f" "$t" \
      || { rm -f "$t"; gki_fail "cannot copy the mode of $f"; }
  else
    chmod 0644 "$t" || { rm -f "$t"; gki_fail "cannot chmod $t"; }
  fi
  mv -f "$t" "$f" || { rm -f "$t"; gki_fail "cannot replace $f"; }
  printf 'changed: %s\n' "$f"
}
# gki_restore FILE FIX: undo gki_write
gki_restore() {
  f=$1; d=${f%/*}; [ -n "$d" ] || d=/
  gki_tidy "$d"
  if [ -e "$f.gpu-kata-installer.$2.bak" ]; then
    t=$(mktemp "$d/.gki-undo.XXXXXX") || gki_fail "cannot create a temp file in $d"
    if cp -p "$f.gpu-kata-installer.$2.bak" "$t" && \
       [ "$(gki_sum "$t")" = "$(gki_sum "$f.gpu-kata-installer.$2.bak")" ]; then
      mv -f "$t" "$f" || { rm -f "$t"; gki_fail "cannot restore $f"; }
      rm -f "$f.gpu-kata-installer.$2.bak"
      printf 'restored: %s\n' "$f"
    else
      rm -f "$t"; gki_fail "cannot restore $f (disk full?); backup kept"
    fi
  elif [ -e "$f.gpu-kata-installer.$2.absent" ]; then
    rm -f "$f" && rm -f "$f.gpu-kata-installer.$2.absent" || gki_fail "cannot remove $f"
    printf 'removed: %s\n' "$f"
  else
    printf 'nothing to undo: %s\n' "$f"
  fi
}
"""


class ScriptBuilder:
    """Collects the steps of one fix: file edits (with their preview diff) and commands."""

    def __init__(self, fix: str, host_root: str = "/") -> None:
        validate_host_root(host_root)
        self.fix = fix
        self.root = host_root if host_root.endswith("/") else host_root + "/"
        self.apply: list[str] = []
        self.undo: list[str] = []
        self.diffs: list[str] = []
        self.commands: list[str] = []
        self.undo_commands: list[str] = []
        self.files: list[str] = []

    def path(self, rel: str) -> str:
        """Shell expression for a path under the host root (rel has no leading /)."""
        return '"${ROOT}"' + shlex.quote(rel)

    def edit(self, rel: str, old: str | None, new: str) -> None:
        self.files.append("/" + rel)
        self.diffs.append(unified_diff(rel, old, new))
        self.apply.append(f"GKI_NEW={shlex.quote(new)}")
        self.apply.append(f"gki_write {self.path(rel)} {sha256(old)} {sha256(new)} {self.fix}")
        self.undo.insert(0, f"gki_restore {self.path(rel)} {self.fix}")

    def run(self, argv: list[str], *, undo: list[str] | None = None,
            when: str | None = None) -> None:
        """A command on the live system. `when` is an optional shell condition."""
        cmd = "gki_run " + shlex.join(argv)
        self.commands.append(shlex.join(argv) + (f"   (if {when})" if when else ""))
        self.apply.append(f"if {when}; then {cmd}; fi" if when else cmd)
        if undo is not None:
            ucmd = "gki_run " + shlex.join(undo)
            self.undo_commands.append(shlex.join(undo) + (f"   (if {when})" if when else ""))
            self.undo.append(f"if {when}; then {ucmd}; fi" if when else ucmd)

    def raw(self, apply_sh: str, undo_sh: str | None = None, shown: str | None = None,
            shown_undo: str | None = None) -> None:
        """A shell fragment (already quoted by the caller) for live-system steps."""
        self.apply.append(apply_sh)
        if shown:
            self.commands.append(shown)
        if undo_sh:
            self.undo.append(undo_sh)
            if shown_undo:
                self.undo_commands.append(shown_undo)

    def _script(self, body: list[str]) -> str:
        head = ["#!/bin/sh", f"# gpu-kata-installer fix: {self.fix}", "set -u",
                f"ROOT={shlex.quote(self.root)}", "umask 022"]
        return "\n".join([*head, LIB.strip("\n"), *body, ""])

    def change(self, host: str, description: str, *, needs_reboot: bool = False,
               needs_consent: bool = False) -> HostChange:
        host = host or "(unnamed host)"
        preview = [f"# {self.fix} on {host}: {description}"]
        if self.root != "/":
            preview.append(f"# host root {self.root}: files only, live commands skipped")
        preview += self.diffs
        if self.commands:
            preview.append("# then run:")
            preview += [f"$ {c}" for c in self.commands]
        if needs_reboot:
            preview.append("# takes effect after a reboot")
        return HostChange(
            name=self.fix, host=host, description=description,
            preview="\n".join(p.rstrip("\n") for p in preview) + "\n",
            apply_script=self._script(self.apply),
            undo_script=self._script(self.undo),
            needs_reboot=needs_reboot, needs_consent=needs_consent,
            files=tuple(self.files))


def unified_diff(rel: str, old: str | None, new: str) -> str:
    a = (old or "").splitlines(keepends=True)
    b = new.splitlines(keepends=True)
    lines = list(difflib.unified_diff(a, b, fromfile="/dev/null" if old is None else f"a/{rel}",
                                      tofile=f"b/{rel}"))
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n"
                   for ln in lines)


# ----------------------------------------------------------------------------- over SSH

async def apply_change(change: HostChange, target: HostTarget, options: SSHOptions, *,
                       sudo_password: str | None = None, passphrase: str | None = None,
                       confirm_host_key: Callable | None = None,
                       connections: Connections | None = None) -> HostResult:
    """Run a change's apply script on its host as root. The engine calls this from its
    single mutation point; nothing else in the installer runs apply scripts."""
    res = await run_on_hosts([target], Script(change.apply_script), options, sudo=True,
                             sudo_password=sudo_password, passphrase=passphrase,
                             confirm_host_key=confirm_host_key,
                             connections=connections)
    return res[target.name]


async def undo_change(change: HostChange, target: HostTarget, options: SSHOptions, *,
                      sudo_password: str | None = None, passphrase: str | None = None,
                      confirm_host_key: Callable | None = None,
                      connections: Connections | None = None) -> HostResult:
    res = await run_on_hosts([target], Script(change.undo_script), options, sudo=True,
                             sudo_password=sudo_password, passphrase=passphrase,
                             confirm_host_key=confirm_host_key,
                             connections=connections)
    return res[target.name]
