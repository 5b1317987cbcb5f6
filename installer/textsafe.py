"""Text from outside (hosts, the cluster, tools) made safe to show on a terminal.

Why: a pod log line, an event message, a label value or a host's os-release was written by
someone else. Printed raw, an escape sequence in it clears the screen, retitles the window
or rewrites what was shown; a carriage return or backspace overwrites a line; a bidi
override reorders it. So every place that shows such text passes it through `display` and
renders the result as plain text, never as Rich or Textual markup.

Control characters are shown, not deleted: ESC reads `\\x1b`, a carriage return `\\r`, a
bidi override `\\u202e`. Deleting them would join what was around them - text the redactor
saw as two harmless pieces could meet on screen as a secret - and an operator reading a log
should see that escape codes are in it. Only line breaks at the end go (a CRLF line's
`\\r`), tabs become spaces (a tab's width is the terminal's choice), and in multi-line text
`\\n` and `\\r\\n` stay line breaks. JSON output, the log file and the bundle keep the
original text: they are data, not a terminal.
"""

from __future__ import annotations

import re

TAB_SIZE = 8

# C0 but tab and newline, DEL, C1, and the characters that reorder or break lines
# (Arabic letter mark, LRM/RLM, line and paragraph separators, bidi embeddings, overrides
# and isolates).
_CONTROLS = ([chr(c) for c in range(0x20) if c not in (0x09, 0x0A)] + ["\x7f"]
             + [chr(c) for c in range(0x80, 0xA0)]
             + list("\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
                    "\u2066\u2067\u2068\u2069"))
_NAMED = {"\r": "\\r", "\n": "\\n"}
_ESCAPE = {c: _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
           for c in [*_CONTROLS, "\n"]}
_ASCII_UNSAFE = tuple(c for c in [*_CONTROLS, "\t", "\n"] if c.isascii())
_CLASS = "".join(_CONTROLS) + "\t"
# What `display` changes: a line break ending the text, a CRLF, any control or tab (and,
# on one line, any newline).
_LINE = re.compile(f"(?P<end>(?:\r\n|\n|\r)\\Z)|(?P<crlf>\r\n)|(?P<ch>[{_CLASS}\n])")
_TEXT = re.compile(f"(?P<end>\r\\Z)|(?P<crlf>\r\n)|(?P<ch>[{_CLASS}])")


def _pattern(multiline: bool) -> re.Pattern[str]:
    return _TEXT if multiline else _LINE


def _replacement(match: re.Match[str], multiline: bool) -> str:
    if match.group("end") is not None:
        return ""
    if match.group("crlf") is not None:
        return "\n" if multiline else "\\n"
    ch = match.group("ch")
    return ch if ch == "\t" else _ESCAPE[ch]


def escapes(text: str, *, multiline: bool = False) -> list[tuple[int, int, str]]:
    """Where `display` changes `text`: (start, end, replacement) in order, tabs kept as
    they are (expanding them depends on the column, so the caller does it last). For styled
    text (screens.widgets.datatext), which must keep its spans in place."""
    return [(m.start(), m.end(), _replacement(m, multiline))
            for m in _pattern(multiline).finditer(text)]


def display(text: str, *, multiline: bool = False) -> str:
    """`text` as it may be shown: controls escaped, tabs expanded; one line unless
    `multiline` (then newlines stay line breaks). Text with nothing to change is returned
    as it is (the same object): table cells and labels are short, and for them
    `isprintable` (in C, no call into the regex engine) is the cheaper test."""
    if text.isprintable():
        return text
    pattern = _pattern(multiline)
    if pattern.search(text) is None:
        return text
    shown = pattern.sub(lambda m: _replacement(m, multiline), text)
    return shown.expandtabs(TAB_SIZE) if "\t" in shown else shown


def display_lines(lines: list[str]) -> list[str]:
    """Each line through `display`, cheaply when none needs it (the log pane's hot path:
    hundreds of thousands of lines a second). Why not a regex per line: a character class
    walks every line in Python's regex engine, where one `in` per ASCII control over the
    batch joined is a scan in C, far cheaper a line. The list itself when nothing
    changes."""
    joined = "".join(lines)
    if joined.isascii():
        if not any(map(joined.__contains__, _ASCII_UNSAFE)):
            return lines
    elif _LINE.search(joined) is None:
        return lines
    return [display(line) for line in lines]
