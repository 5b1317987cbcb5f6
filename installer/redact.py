"""Keeps secrets out of everything the tool writes: logs, JSON events, bundles, answers.

Known secret values (the sudo password, key passphrase, kubeconfig tokens) are registered
when they are read and replaced wherever they appear; a few patterns catch secrets the
tool never saw as values (a bearer token in a helm error, a password in a URL).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***REDACTED***"
_PATTERNS = [
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"']+"),
    re.compile(r"(?i)((?:password|passphrase|token|secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
    re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)"),
]


class Redactor:
    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        """Register a secret value; very short values are ignored to keep output readable."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def text(self, value: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            value = value.replace(secret, MASK)
        for pattern in _PATTERNS:
            value = pattern.sub(lambda m: m.group(1) + MASK + (m.group(2) if m.re.groups > 1
                                                               else ""), value)
        return value

    def data(self, value: Any) -> Any:
        """Redact every string inside JSON-like data."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
