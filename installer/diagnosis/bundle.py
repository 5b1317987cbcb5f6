"""The support bundle: one archive an operator can attach to a ticket.

Collected text (values, manifests, objects, events, logs, node describes, versions, host
facts, the run's log) goes in as files, with a Markdown and an HTML summary on top (the
findings, then the versions and the last run's per-node progress) and MANIFEST.txt, the index
of every file and of what could not be read. Every byte passes the redactor on the way in, so
a token or password that reached a log never reaches the archive.
"""

from __future__ import annotations

import html
import io
import os
import stat
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from installer.diagnosis.progress import Cell, NodeGrid, duration
from installer.diagnosis.rules import Finding
from installer.errors import EXIT_STEP_FAILED, Problem, UserError, os_problem
from installer.redact import Redactor


@dataclass(frozen=True)
class RunProgress:
    """The last install run on this machine, as its log recorded it: the per-node grid the
    install screen showed (installer.diagnosis.progress), and which log it was drawn from."""

    grid: NodeGrid
    source: str


def _grid_cell(cell: Cell) -> str:
    return f"{cell.status} {duration(cell.seconds)}".strip() if cell.status else ""


def summary_markdown(findings: list[Finding], title: str, *,
                     versions: Sequence[tuple[str, str]] = (),
                     run: RunProgress | None = None, notes: Sequence[str] = ()) -> str:
    """Findings first, most likely first (what the reader came for), then the versions and
    the last run's per-node progress: the context a finding is read in."""
    lines = [f"# {title}", "", f"{len(findings)} finding(s), most likely first.", ""]
    for i, f in enumerate(findings, 1):
        lines += [f"## {i}. {f.cause}", "", f"- **symptom:** {f.symptom}",
                  f"- **rule:** `{f.rule}` (likelihood {f.score})", f"- **fix:** {f.fix}",
                  "- **evidence:**"]
        lines += [f"  - `{e}`" for e in f.evidence] or ["  - (none)"]
        lines.append("")
    if not findings:
        lines += ["No problem found in the collected state.", ""]
    if versions:
        lines += ["## Versions", "", "| component | version |", "| --- | --- |",
                  *(f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in versions),
                  "", "All of them: `versions.json`.", ""]
    if run is not None:
        lines += ["## Last run, per node", "", f"From `{run.source}` on this machine.", "",
                  "| node | " + " | ".join(run.grid.columns) + " |",
                  "| --- |" + " --- |" * len(run.grid.columns),
                  *(f"| {_md_cell(r.node)} | " + " | ".join(_grid_cell(c) for c in r.cells)
                    + " |" for r in run.grid.rows), ""]
    if notes:
        lines += [f"{len(notes)} thing(s) were left out or could not be read: see "
                  "`MANIFEST.txt`.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


_STATUS_COLOURS = {"ok": "#cfc", "failed": "#f99", "cancelled": "#f99", "running": "#ff9",
                   "warn": "#fd8", "pending": "#eee", "skipped": "#f6f6f6", "dry-run": "#cef"}


def summary_html(findings: list[Finding], title: str, *,
                 versions: Sequence[tuple[str, str]] = (),
                 run: RunProgress | None = None, notes: Sequence[str] = ()) -> str:
    esc = html.escape
    items = []
    for f in findings:
        evidence = "".join(f"<li><code>{esc(e)}</code></li>" for e in f.evidence)
        items.append(
            f"<section><h2>{esc(f.cause)}</h2><p><b>Symptom:</b> {esc(f.symptom)}</p>"
            f"<p><b>Fix:</b> {esc(f.fix)}</p><p><b>Rule:</b> <code>{esc(f.rule)}</code> "
            f"(likelihood {f.score})</p><ul>{evidence}</ul></section>")
    body = "".join(items) or "<p>No problem found in the collected state.</p>"
    if versions:
        body += ("<h2>Versions</h2><table class='versions'>"
                 + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in versions)
                 + "</table><p>All of them: <code>versions.json</code>.</p>")
    if run is not None:
        head = "".join(f"<th>{esc(c)}</th>" for c in run.grid.columns)
        rows = "".join(
            f"<tr><th>{esc(r.node)}</th>" + "".join(
                f"<td class='{esc(c.status)}' title='{esc(c.note)}'>{esc(_grid_cell(c))}</td>"
                if c.status else "<td></td>" for c in r.cells) + "</tr>"
            for r in run.grid.rows)
        body += (f"<h2>Last run, per node</h2><p>From <code>{esc(run.source)}</code> on this "
                 f"machine.</p><table class='grid'><tr><th>node</th>{head}</tr>{rows}</table>")
    if notes:
        body += (f"<p>{len(notes)} thing(s) were left out or could not be read: see "
                 "<code>MANIFEST.txt</code>.</p>")
    colours = "".join(f"td.{s}{{background:{c}}}" for s, c in _STATUS_COLOURS.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
            "section{border-left:4px solid #c33;padding-left:1em;margin:1em 0}"
            "code{background:#eee}table{border-collapse:collapse}"
            "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left}"
            f"{colours}</style></head>"
            f"<body><h1>{esc(title)}</h1>{body}</body></html>\n")


def manifest(sizes: Mapping[str, int], notes: Sequence[str]) -> str:
    """MANIFEST.txt: every file of the bundle with its size in bytes (as written, after
    redaction), then what the collection left out or could not read."""
    width = max((len(str(n)) for n in sizes.values()), default=1)
    lines = ["Files (bytes, name):", *(f"{size:>{width}}  {name}"
                                       for name, size in sorted(sizes.items())),
             "", "Left out or not read:" if notes else "Nothing was left out; every read "
             "succeeded.", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


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
                 redactor: Redactor, title: str = "gpu-kata-installer support bundle", *,
                 versions: Sequence[tuple[str, str]] = (), run: RunProgress | None = None,
                 notes: Sequence[str] = ()) -> Path:
    """Write a .tar.gz (mode 0600) holding `files`, the two summaries and MANIFEST.txt, all
    redacted. `notes`: what the collection left out or could not read, for the manifest.

    Written to a temporary file beside the target, then renamed over it: a reader never
    sees half an archive, and an old bundle is replaced only by a whole new one. The target
    is checked again just before (bundle_target) - it may have changed while collecting."""
    path = bundle_target(path)
    contents = dict(files)
    contents["SUMMARY.md"] = summary_markdown(findings, title, versions=versions, run=run,
                                              notes=notes)
    contents["summary.html"] = summary_html(findings, title, versions=versions, run=run,
                                            notes=notes)
    redacted = {name: redactor.file(name, text).encode("utf-8")
                for name, text in contents.items()}
    redacted["MANIFEST.txt"] = redactor.text(manifest(
        {name: len(data) for name, data in redacted.items()}, notes)).encode("utf-8")
    root = f"gpu-kata-bundle-{time.strftime('%Y%m%d-%H%M%S')}"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, data in sorted(redacted.items()):
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
