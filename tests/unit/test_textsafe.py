"""Outside text shown on a terminal: the sanitizer, and the text sink that uses it."""

from __future__ import annotations

import io
import random
import re

import pytest

from installer.engine.events import ChangeEvent, PodLog, StepFinished, WarningEvent
from installer.engine.sinks import TextSink
from installer.redact import Redactor
from installer.textsafe import display, display_lines, escapes
from tests.fixtures.hostile import HOSTILE, RAW, SHOWN


@pytest.mark.parametrize(("text", "shown"), [
    ("[bold red]x[/]", "[bold red]x[/]"),  # markup is not this layer's: kept as it is
    ("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"),  # CSI, OSC ended by BEL
    ("\x1b]8;;https://e.x\x1b\\link\x1b]8;;\x1b\\", "\\x1b]8;;https://e.x\\x1b\\link"
                                                    "\\x1b]8;;\\x1b\\"),  # OSC 8 and ST
    ("a\x9b2Jb", "a\\x9b2Jb"),  # 8-bit CSI
    ("over\rwrite", "over\\rwrite"),
    ("back\x08space", "back\\x08space"),
    ("del\x7f", "del\\x7f"),
    ("abc\u202edcba\u2066x\u2069", "abc\\u202edcba\\u2066x\\u2069"),
    ("line\u2028break", "line\\u2028break"),
    ("crlf line\r", "crlf line"),  # a CRLF log line's CR is its line end
    ("two\nlines\n", "two\\nlines"),  # one line: a newline shows, the last one goes
    ("a\tb", "a       b"),
    ("gpu-node-1 ✓ µs “ok”", "gpu-node-1 ✓ µs “ok”"),
])
def test_controls_are_shown_escaped_on_one_line(text, shown):
    assert display(text) == shown
    assert not RAW.search(display(text))


def test_multiline_text_keeps_its_line_breaks():
    assert display("one\r\ntwo\n\x1b[Kthree\r", multiline=True) == "one\ntwo\n\\x1b[Kthree"
    assert display("a\tb\n\tc", multiline=True) == "a       b\n        c"


def test_clean_text_is_returned_as_it_is():
    text = "2025-01-01T10:00:00Z INFO device bound, CDI spec written"
    assert display(text) is text
    lines = [text] * 100
    assert display_lines(lines) is lines
    unicode = ["µs ✓ “quoted”"] * 10
    assert display_lines(unicode) is unicode


def test_a_batch_with_one_bad_line_cleans_that_line():
    lines = ["plain", "ansi \x1b[31mred\x1b[0m", "bidi \u202e", "tab\there"]
    assert display_lines(lines) == ["plain", "ansi \\x1b[31mred\\x1b[0m", "bidi \\u202e",
                                    "tab     here"]


def test_nothing_is_deleted_between_two_characters():
    """Why escaped, not stripped: deleting a control joins what was around it, so a secret
    the redactor saw in two pieces could meet on screen. Every printable character stays,
    in order, for 2,000 derandomized strings of printable text, controls and tabs."""
    rng = random.Random(17)
    alphabet = ["a", "Z", "0", "[", "]", "\\", " ", "µ", "✓", "\x1b", "\x07", "\x08", "\r",
                "\n", "\x9b", "\x00", "\x7f", "\u202e", "\u2066", "\u2028", "\t"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for multiline in (False, True):
            shown = display(text, multiline=multiline)
            assert not RAW.search(shown.replace("\n", "") if multiline else shown), text
            kept = iter(shown)
            assert all(c in kept for c in text if c.isprintable()), (text, shown)


def test_escapes_say_where_and_what():
    assert escapes("a\x1bb\r\nc\r") == [(1, 2, "\\x1b"), (3, 5, "\\n"), (6, 7, "")]
    assert escapes("a\x1bb\r\nc\r", multiline=True) == [(1, 2, "\\x1b"), (3, 5, "\n"),
                                                          (6, 7, "")]


class _Terminal(io.StringIO):
    """What rich writes to a terminal: colours and all."""

    def isatty(self) -> bool:
        return True


def _events(sink: TextSink) -> None:
    sink.emit(StepFinished(path="install/kata", status="failed", message=HOSTILE,
                           detail="helm said:\n" + HOSTILE))
    sink.emit(ChangeEvent(path="configure/label", message=f"label value {HOSTILE}",
                          target="node/gpu-node-1", applied=False))
    sink.emit(WarningEvent(path="plan", message=HOSTILE))
    sink.emit(PodLog(path="install/kata", namespace="kata-system", pod="kata-deploy-1",
                     container="kube-kata", line=HOSTILE))


@pytest.mark.parametrize("rich", [False, True])
def test_the_text_sink_shows_outside_text_as_data(rich, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one event, one line: rich wraps at the width
    stream = _Terminal() if rich else io.StringIO()
    sink = TextSink(stream, Redactor(), rich=rich, verbose=True)
    _events(sink)
    out = stream.getvalue()
    # Rich's own colours are the only escape sequences: SGR, nothing else, no BEL or CR.
    assert (re.findall(r"\x1b\[[0-9;]*m", out) != []) is rich
    assert not RAW.search(re.sub(r"\x1b\[[0-9;]*m", "", out))
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert plain.count(SHOWN) == 5
    assert "\n    helm said:\n" in plain  # a multi-line detail keeps its lines


def test_the_text_sink_still_redacts_before_it_shows():
    redactor = Redactor()
    redactor.add("s3cr3t-t0ken")
    stream = io.StringIO()
    TextSink(stream, redactor).emit(WarningEvent(path="plan",
                                                 message="token \x1b[2Js3cr3t-t0ken\x07"))
    assert "s3cr3t" not in stream.getvalue()
    assert "\\x1b[2J" in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_the_consent_prompt_shows_a_host_files_preview_as_data():
    """On a terminal the y/N question shows the fix's preview: a host file's own text."""
    import asyncio

    from installer.commands.headless import HeadlessDecider

    class Keyboard(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = _Terminal()
    decider = HeadlessDecider(yes=False, stdin=Keyboard("n\n"), stdout=out)
    assert not asyncio.run(decider.confirm(f"Apply {HOSTILE}?", f"--- grub\n{HOSTILE}\n",
                                           "ask"))
    assert not RAW.search(out.getvalue().replace("\n", ""))
    assert f"--- grub\n{SHOWN}\n" in out.getvalue()
    assert f"Apply {SHOWN}\\r? [y/N]" in out.getvalue()  # a CR inside a line shows
