"""The support bundle: one archive an operator can attach to a ticket.

Collected text (values, manifests, objects, events, logs, host facts, the run's log) goes in
as files, with a Markdown and an HTML summary of the findings on top. Every byte passes the
redactor on the way in, so a token or password that reached a log never reaches the archive.
"""

from __future__ import annotations

import html
import io
import os
import tarfile
import time
from pathlib import Path

from installer.diagnose import Finding
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


def write_bundle(path: Path, files: dict[str, str], findings: list[Finding],
                 redactor: Redactor, title: str = "gpu-kata-installer support bundle") -> Path:
    """Write a .tar.gz (mode 0600) holding `files` and the two summaries, all redacted."""
    contents = dict(files)
    contents["SUMMARY.md"] = summary_markdown(findings, title)
    contents["summary.html"] = summary_html(findings, title)
    root = f"gpu-kata-bundle-{time.strftime('%Y%m%d-%H%M%S')}"
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, text in sorted(contents.items()):
            data = redactor.text(text).encode("utf-8")
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(path)
    return path
