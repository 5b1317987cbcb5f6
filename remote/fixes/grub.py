"""Adding kernel arguments through GRUB's defaults file, and regenerating the boot config
the way each distribution family does it.

Why GRUB_CMDLINE_LINUX (not _DEFAULT): it applies to every boot entry including recovery,
and cloud images commonly override _DEFAULT from /etc/default/grub.d/*.cfg, which would
silently win over an edit of /etc/default/grub. grub-mkconfig sources /etc/default/grub
and then grub.d/*.cfg in order, so we edit the LAST file that assigns GRUB_CMDLINE_LINUX
(or append to /etc/default/grub when none does). Values with shell expansions are not
edited automatically: we refuse rather than guess.
"""

from __future__ import annotations

import re

from remote.fixes.base import FileView, FixBlocked, ScriptBuilder
from remote.hostfacts import HostFacts

GRUB = "etc/default/grub"
VAR = "GRUB_CMDLINE_LINUX"
# ASCII: `\s` is the shell's blanks, not Unicode's (a no-break space is part of a word to
# sh); `\Z`: a line ends at its end, not before a final newline.
_ASSIGN = re.compile(rf"^(\s*(?:export\s+)?{VAR}=)(.*)\Z", re.ASCII)
_DQ = re.compile(r'^"([^"$`\\]*)"(\s*(?:#.*)?)\Z', re.ASCII)
_SQ = re.compile(r"^'([^']*)'(\s*(?:#.*)?)\Z", re.ASCII)
_BARE = re.compile(r"^([^\s\"'$`\\;&|<>()#]*)(\s*(?:#.*)?)\Z", re.ASCII)


def grub_files(view: FileView) -> list[str]:
    files = [GRUB] if view.get(GRUB) is not None else []
    d = sorted(p for p in set(view.facts.grub_d) | {k for k in view.overrides
                                                       if k.startswith("etc/default/grub.d/")}
               if p.endswith(".cfg") and view.get(p) is not None)
    return files + d


def current_args(view: FileView) -> list[str]:
    """Every argument GRUB_CMDLINE_LINUX and _DEFAULT will carry (best effort: the literal
    values of their last assignments)."""
    out: list[str] = []
    for var in (VAR, VAR + "_DEFAULT"):
        pat = re.compile(rf"^\s*(?:export\s+)?{var}=(.*)\Z", re.ASCII)
        last = None
        for f in grub_files(view):
            for ln in (view.get(f) or "").splitlines():
                m = pat.match(ln)
                if m:
                    last = m.group(1)
        if last is not None:
            val = _value(last)
            if val is not None:
                out += val.split()
    return out


def _value(raw: str) -> str | None:
    for rx in (_DQ, _SQ, _BARE):
        m = rx.match(raw.strip())
        if m:
            return m.group(1)
    return None


def add_args(b: ScriptBuilder, facts: HostFacts, view: FileView, args: list[str],
             fix: str) -> list[str]:
    """Plan the edit that adds `args` (those not already present) to GRUB_CMDLINE_LINUX.
    Returns the args added (empty: nothing to do)."""
    if view.get(GRUB) is None:
        raise FixBlocked(fix, f"/{GRUB} not found",
                         "This host does not boot through GRUB's defaults file; add "
                         f"{' '.join(args)} to its boot loader's kernel command line by hand.")
    have = current_args(view)
    keys = {a.split("=", 1)[0] for a in have}
    missing = [a for a in args if a not in have]
    conflicting = [a for a in missing if a.split("=", 1)[0] in keys]
    if conflicting:
        raise FixBlocked(fix, "the GRUB defaults already set "
                         + ", ".join(a.split("=", 1)[0] for a in conflicting)
                         + " to another value",
                         f"Edit /{GRUB} by hand to {' '.join(conflicting)}.")
    if not missing:
        return []
    target, idx = None, -1
    for f in grub_files(view):
        for i, ln in enumerate((view.get(f) or "").splitlines()):
            if _ASSIGN.match(ln):
                target, idx = f, i
    if target is None:
        old = view.get(GRUB) or ""
        sep = "" if old.endswith("\n") or not old else "\n"
        new = f'{old}{sep}{VAR}="{" ".join(missing)}"\n'
        b.edit(GRUB, view.get(GRUB), new)
        view.set(GRUB, new)
        return missing
    old = view.get(target) or ""
    lines = old.splitlines(keepends=True)
    line = lines[idx]
    eol = line[len(line.rstrip("\r\n")):]
    m = _ASSIGN.match(line.rstrip("\r\n"))
    assert m
    prefix, raw = m.group(1), m.group(2)
    for rx, q in ((_DQ, '"'), (_SQ, "'"), (_BARE, '"')):
        mm = rx.match(raw)
        if mm:
            inner, tail = mm.group(1), mm.group(2)
            joined = " ".join([inner.strip(), *missing]).strip() if inner.strip() \
                else " ".join(missing)
            lines[idx] = f"{prefix}{q}{joined}{q}{tail}{eol}"
            break
    else:
        raise FixBlocked(fix, f"/{target}: cannot edit `{line.strip()}` safely (shell "
                         "expansion or unusual quoting)",
                         f"Add {' '.join(missing)} to {VAR} in /{target} by hand, then "
                         "regenerate the GRUB config.")
    new = "".join(lines)
    b.edit(target, old, new)
    view.set(target, new)
    return missing


def regenerate(b: ScriptBuilder, facts: HostFacts, fix: str, added: list[str]) -> None:
    """Regenerate the boot configuration after editing the GRUB defaults.

    Debian/Ubuntu: update-grub (or grub-mkconfig -o /boot/grub/grub.cfg).
    RHEL family: grubby --update-kernel=ALL --args=... when grubby exists (BLS entries keep
    their own options; grub2-mkconfig alone does not update them before EL 9.3), else
    grub2-mkconfig -o /boot/grub2/grub.cfg. Undo mirrors it."""
    fam = facts.os_family
    if fam == "debian":
        if facts.has_tool("update-grub") or not facts.has_tool("grub-mkconfig"):
            b.run(["update-grub"], undo=["update-grub"])
        else:
            b.run(["grub-mkconfig", "-o", "/boot/grub/grub.cfg"],
                  undo=["grub-mkconfig", "-o", "/boot/grub/grub.cfg"])
    elif fam == "rhel":
        if facts.has_tool("grubby") or not facts.has_tool("grub2-mkconfig"):
            b.run(["grubby", "--update-kernel=ALL", "--args=" + " ".join(added)],
                  undo=["grubby", "--update-kernel=ALL", "--remove-args=" + " ".join(added)])
        else:
            b.run(["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"],
                  undo=["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"])
    else:
        raise FixBlocked(fix, f"unknown distribution (os-release ID={facts.os_id!r}, "
                         f"ID_LIKE={' '.join(facts.os_like)!r})",
                         "Add the kernel arguments with your distribution's tool and reboot.")
