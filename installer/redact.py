"""Keeps secrets out of everything the tool writes: logs, JSON events, bundles, answers.

Three rules, all here so every output passes the same ones:

- Known secret values (the sudo password, key passphrase, kubeconfig tokens) are registered
  when they are read and replaced wherever they appear.
- Content patterns catch secrets the tool never saw as values, in any text: a password in a
  URL (`scheme://user:password@host`), a PEM private key block, a bearer token, a
  JWT-looking string, and `key: value` / `key=value` where the key is a credential key.
- Structured values (event payloads, and every JSON or YAML file of a support bundle) are
  redacted by key name: under a credential key (see `is_credential_key`) every string and
  number is masked, however deep. A Kubernetes Secret keeps only its name, namespace, type
  and the names of its keys; a helm release record (`sh.helm.release.v1.*`, in a Secret or a
  ConfigMap) loses its payload entirely.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import yaml

MASK = "***REDACTED***"

# A key is a credential key when its name, lower-cased and with everything but letters and
# digits removed, contains one of these: `registry.password`, `imagePullSecrets`, `api_key`,
# `AWS_SECRET_ACCESS_KEY`, `Authorization`, `tls-private-key` all are. Over-masking a
# harmless value (`secretName`) costs a little evidence; missing a credential costs a leak.
# A name ending in `env` is a reference to an environment variable (the answers file's
# `passwordEnv`), not a credential.
CREDENTIAL_WORDS = ("password", "passwd", "passphrase", "secret", "token", "apikey",
                    "accesskey", "privatekey", "credential", "auth", "cookie")
_NOT_WORD = re.compile(r"[^a-z0-9]")


def is_credential_key(key: str) -> bool:
    name = _NOT_WORD.sub("", key.lower())
    return not name.endswith("env") and any(word in name for word in CREDENTIAL_WORDS)


_KEY_WORDS = r"(?:pass(?:word|wd|phrase)|secret|token|api[_-]?key|access[_-]?key" \
             r"|private[_-]?key|credentials?|auth|cookie)"
# Each match is masked; its group 1, when it has one, is kept in front of the mask.
_PATTERNS: list[re.Pattern[str]] = [
    # A PEM private key block (RSA, EC, OPENSSH, ENCRYPTED, PGP ...), also inside a JSON
    # string (lines joined by a literal \n), and one cut short by a log tail: from BEGIN to
    # END, or through the base64 and header lines that follow.
    re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
               r"(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
               r"|(?:(?:\\n|\r?\n)(?:[A-Za-z-]+: [A-Za-z0-9,-]+|[A-Za-z0-9+/=]{16,}"
               r"|[A-Za-z0-9+/=]+(?=\\n|\r?\n|$)))*)"),
    # user:password@ in a URL of any scheme
    re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^/\s:@\"']*:)[^@\s/\"']+(?=@)"),
    # an Authorization header's credentials, whatever the scheme
    re.compile(r"(?i)(authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:basic|bearer|token)?[ \t]*)"
               r"[^\s\"',}]+"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # a JWT (three base64url parts, the first a JSON header): service-account tokens
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    # key: value, key=value, "key": "value" where the key names a credential (not a mapping
    # or list that follows: the data rule masks inside those). Bounded and from the start of
    # a word: unbounded repeats would try every position of a long base64 line against
    # every other (minutes for a megabyte).
    re.compile(rf"(?i)((?<![a-z0-9_.-])[a-z0-9_.-]{{0,40}}{_KEY_WORDS}[a-z0-9_.-]{{0,40}}"
               r"(?<!env)[\"']?[ \t]*[:=][ \t]*[\"']?)"
               r"(?!\*\*\*REDACTED)(?![\[{])[^\s\"',}]+"),
]

HELM_RELEASE_PREFIX = "sh.helm.release.v1."


def _is_secret(obj: dict[str, Any]) -> bool:
    """A Secret object: by kind, or (an item of a SecretList, which has no kind) by shape."""
    if obj.get("kind") == "Secret":
        return True
    return ("kind" not in obj and isinstance(obj.get("metadata"), dict)
            and isinstance(obj.get("type"), str) and ("data" in obj or "stringData" in obj))


def _is_helm_release_record(obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata")
    return isinstance(meta, dict) and str(meta.get("name", "")).startswith(HELM_RELEASE_PREFIX)


def _keys_only(value: Any) -> Any:
    return {str(k): MASK for k in value} if isinstance(value, dict) else MASK


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (a ConfigMap's files) stay block literals, readable as they were."""


_BlockDumper.add_representer(str, lambda d, s: d.represent_scalar(
    "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


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
            value = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + MASK, value)
        return value

    def data(self, value: Any, *, masked: bool = False) -> Any:
        """Redact JSON-like data: every string by `text`, every value under a credential key,
        Secrets down to their name, type and key names. `masked`: under a credential key."""
        if isinstance(value, dict):
            if _is_secret(value):
                return self._secret(value)
            if _is_helm_release_record(value):
                value = {**value, "data": _keys_only(value.get("data") or {})}
            return {k: self.data(v, masked=masked or (isinstance(k, str)
                                                      and is_credential_key(k)))
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v, masked=masked) for v in value]
        if masked and isinstance(value, str | int | float) and not isinstance(value, bool) \
                and value != "":
            return MASK
        if isinstance(value, str):
            return self.text(value)
        return value

    def _secret(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        kept: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", "type") if k in obj}
        kept["metadata"] = {k: self.data(meta[k]) for k in ("name", "namespace") if k in meta}
        for field in ("data", "stringData"):
            if field in obj:
                kept[field] = _keys_only(obj[field])
        return kept

    def file(self, name: str, text: str) -> str:
        """A bundle file redacted: JSON and YAML documents as data (by key name and Secret
        shape), then every file as text. A document that does not parse is redacted as text,
        which still masks `key: value` lines of credential keys."""
        if name.endswith(".json"):
            with contextlib.suppress(ValueError):
                text = json.dumps(self.data(json.loads(text)), indent=2)
        elif name.endswith((".yaml", ".yml")):
            text = self._yaml(text)
        return self.text(text)

    def _yaml(self, text: str) -> str:
        """Each document of a YAML stream redacted as data; the comments before a document
        (helm's `# Source: chart/templates/...`) are kept, being the manifest's map."""
        out = []
        for doc in re.split(r"(?m)^---[ \t]*$\n?", text):
            head = []
            lines = doc.splitlines(keepends=True)
            while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
                head.append(lines.pop(0))
            try:
                value = yaml.safe_load("".join(lines))
            except yaml.YAMLError:
                return text  # not YAML after all (helm's error text): redacted as text
            if isinstance(value, dict | list):
                lines = [yaml.dump(self.data(value), Dumper=_BlockDumper, sort_keys=False,
                                   allow_unicode=True)]
            out.append("".join(head + lines))
        return "---\n".join(out)
