"""The support bundle: one archive an operator can attach to a ticket.

Collected text (values, manifests, objects, events, logs, host facts, the run's log) goes in
as files, with a Markdown and an HTML summary of the findings on top. Every byte passes the
redactor on the way in, so a token or password that reached a log never reaches the archive.
"""

from __future__ import annotations

import html
import io
import os
import stat
import tarfile
import tempfile
import time
from pathlib import Path

from installer.diagnosis.rules import Finding
from installer.errors import EXIT_STEP_FAILED, Problem, UserError, os_problem
from installer.redact import Redactor


def summary_markdown(findings: list[Finding], title: str) -> str:
    lines = [f"# {title}", "", f"{len(findings)} finding(s), most likely first.", ""]
    for i, f in enumerate(findings, 1):
        lines += [f"## {i}. {f.cause}", "", f"- **symptom:** {f.symptom}",
                  f"- **rule:** `{f.rule}` (likelihood {f.score})", f"- **fix:** {f.fix}",
                  "- **evidence:**"]
        lines += [f"  - `{e}`" for e in f.evidence] or ["  - (none)"]
        lines.append("")
    if not findings:
        lines.append("No problem found in the collected state.")
    return "\n".join(lines) + "\n"


def summary_html(findings: list[Finding], title: str) -> str:
    esc = html.escape
    items = []
    for f in findings:
        evidence = "".join(f"<li><code>{esc(e)}</code></li>" for e in f.evidence)
        items.append(
            f"<section><h2>{esc(f.cause)}</h2><p><b>Symptom:</b> {esc(f.symptom)}</p>"
            f"<p><b>Fix:</b> {esc(f.fix)}</p><p><b>Rule:</b> <code>{esc(f.rule)}</code> "
            f"(likelihood {f.score})</p><ul>{evidence}</ul></section>")
    body = "".join(items) or "<p>No problem found in the collected state.</p>"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
            "section{border-left:4px solid #c33;padding-left:1em;margin:1em 0}"
            "code{background:#eee}</style></head>"
            f"<body><h1>{esc(title)}</h1>{body}</body></html>\n")


def default_name() -> str:
    return f"gpu-kata-bundle-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"


def _refuse(path: Path, problem: str, fix: str) -> UserError:
    return UserError(f"cannot write the bundle to {path}", [Problem("--output", problem, fix)])


def bundle_target(output: Path | None) -> Path:
    """Where the bundle goes, checked before anything is collected: a new file, or a regular
    file to replace, in an existing directory; a directory gets the default name inside it.

    Checked with lstat, never opened: opening a FIFO would block until a reader came, writing
    to a device or through a symlink would write somewhere the operator did not name.
    """
    path = output if output is not None else Path(default_name())
    st = _lstat(path)
    if st is not None and stat.S_ISDIR(st.st_mode):
        path = path / default_name()
        st = _lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
        if stat.S_ISLNK(st.st_mode):
            kind = f"a symbolic link to {os.readlink(path)}"
        raise _refuse(path, f"is {kind}: only a new or a regular file is written",
                      "name a new file (or a directory to put the bundle in)")
    parent = path.parent  # followed: a directory reached through a link is still one
    if not parent.is_dir():
        said = "is not a directory" if parent.exists() else "does not exist"
        raise _refuse(path, f"directory {parent} {said}",
                      f"create it (mkdir -p {parent}) or name a file in an existing directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _refuse(path, f"directory {parent} is not writable",
                      "name a file in a directory you may write")
    if st is not None and not os.access(path, os.W_OK):
        raise _refuse(path, "the file exists and is not writable: it may not be replaced",
                      "name a new file, or remove that one first")
    return path


_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:  # a path through a file (ENOTDIR), too long, a loop of links
        raise _refuse(path, os_problem(exc, path), "name a file in an existing directory") from None


def write_bundle(path: Path, files: dict[str, str], findings: list[Finding],
                 redactor: Redactor, title: str = "gpu-kata-installer support bundle") -> Path:
    """Write a .tar.gz (mode 0600) holding `files` and the two summaries, all redacted.

    Written to a temporary file beside the target, then renamed over it: a reader never
    sees half an archive, and an old bundle is replaced only by a whole new one. The target
    is checked again just before (bundle_target) - it may have changed while collecting."""
    path = bundle_target(path)
    contents = dict(files)
    contents["SUMMARY.md"] = summary_markdown(findings, title)
    contents["summary.html"] = summary_html(findings, title)
    root = f"gpu-kata-bundle-{time.strftime('%Y%m%d-%H%M%S')}"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, text in sorted(contents.items()):
                data = redactor.file(name, text).encode("utf-8")
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                tar.addfile(info, io.BytesIO(data))
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # disk full, an I/O error: the machine's, not the input's
            raise UserError(f"could not write the bundle {path}", [Problem(
                str(path), os_problem(exc, path),
                "free space on that file system or name another --output")],
                exit_code=EXIT_STEP_FAILED) from None
        raise
    return path
