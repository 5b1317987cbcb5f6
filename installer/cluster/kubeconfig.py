"""Reading a kubeconfig file without the kubernetes client.

Why a module of its own: the wizard lists a kubeconfig's contexts on its first screen, and
importing `kubernetes` (expensive: BENCHMARKS.md section 3) or `installer.cluster.kube` (the
engine and planner with it) for that would compete with the first frame.
`installer.cluster.kube.connect` checks the file here too, so both say the same thing about
a broken kubeconfig.

The files are read and merged as kubectl reads them (client-go's loading rules), so the
installer reaches the cluster kubectl would: `cluster.kubeconfig` alone, else every file
KUBECONFIG lists - missing ones skipped, the first to name a cluster, user or context (or to
set current-context) winning - else ~/.kube/config. Each file is checked whole before it is
used, like client-go decodes it whole: booleans must be YAML booleans (a quoted "false" is a
string, which client-go refuses and Python would read as true), and the shapes and types the
installer relies on must be what they claim, so no entry reaches a reader that would
misread it or fail with a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from installer.errors import Problem, UserError
from remote.yamlload import YAMLRefused, read_text, safe_load

WHERE = "cluster.kubeconfig"  # the answers' key every kubeconfig problem is reported under
VALID_KUBECONFIG = "point cluster.kubeconfig at a valid kubeconfig (kubectl config view checks it)"


def read_kubeconfig(path: str) -> dict[str, Any]:
    """One kubeconfig file's document, checked for the failures the kubernetes client reports
    badly (a traceback for YAML errors, "list indices must be integers" for a list): a
    missing, unreadable, non-text or non-YAML file, a document that is not a mapping, and
    the malformed entries _check_document finds. Each becomes a UserError naming the file
    and the fix."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"kubeconfig {path} is a directory", [Problem(
            WHERE, f"{path} is a directory, not a kubeconfig file",
            "point cluster.kubeconfig (or KUBECONFIG) at the kubeconfig file itself")])
    if not p.is_file():
        raise UserError(f"kubeconfig {path} not found", [Problem(
            WHERE, f"no file at {path}",
            "set cluster.kubeconfig in the answers file or KUBECONFIG to your kubeconfig")])
    try:
        text = read_text(p)
    except PermissionError:
        raise UserError(f"kubeconfig {path} cannot be read", [Problem(
            WHERE, "permission denied",
            f"run as the user who owns it, or let this user read it (chmod 600 {path} as "
            "its owner)")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"kubeconfig {path} cannot be read", [Problem(
            WHERE, f"not a readable text file ({type(exc).__name__})", VALID_KUBECONFIG)]
        ) from None
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1} of the file: " if mark else ""
        what, fix = (("not read", exc.fix) if isinstance(exc, YAMLRefused)
                     else ("not valid YAML", VALID_KUBECONFIG))
        raise UserError(f"kubeconfig {path} is {what}", [Problem(
            WHERE, at + (getattr(exc, "problem", None) or "YAML syntax error"), fix)]) from None
    if data is None:  # an empty file: kubectl reads it as an empty kubeconfig
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"kubeconfig {path} is not a kubeconfig", [Problem(
            WHERE, "the document is not a mapping of clusters, contexts and users",
            VALID_KUBECONFIG)])
    _check_document(path, data)
    return data


def context_names(data: dict[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """(the contexts' names, the current context) of a kubeconfig read by read_kubeconfig."""
    contexts = data.get("contexts") or []
    if not isinstance(contexts, list):
        raise UserError("the kubeconfig's contexts are not a list", [Problem(
            WHERE, "'contexts' is not a list", VALID_KUBECONFIG)])
    names = tuple(str(c["name"]) for c in contexts if isinstance(c, dict) and c.get("name"))
    current = data.get("current-context")
    return names, str(current) if current else None


def kubeconfig_files(explicit: str | None) -> tuple[str, ...]:
    """The files kubectl would read, in order: `explicit` (cluster.kubeconfig, --kubeconfig)
    alone, else KUBECONFIG's entries (empty ones and repeats dropped), else ~/.kube/config."""
    if explicit:
        return (os.path.expanduser(explicit),)
    listed = [os.path.expanduser(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep)
              if p]
    return tuple(dict.fromkeys(listed)) or (os.path.expanduser("~/.kube/config"),)


def helm_kubeconfig(files: tuple[str, ...]) -> str | None:
    """The file to name to helm's --kubeconfig (it takes one); None for several, which helm
    then reads from KUBECONFIG and merges as kubectl does."""
    return files[0] if len(files) == 1 else None


@dataclass(frozen=True)
class Kubeconfig:
    """The kubeconfig as kubectl sees it: the files read and their merged document, whose
    file references (certificates, keys, token files) are absolute."""

    files: tuple[str, ...]
    data: dict[str, Any]

    @property
    def source(self) -> str:
        """For messages: the file, or the files in KUBECONFIG's form."""
        return os.pathsep.join(self.files)


def load_kubeconfig(explicit: str | None) -> Kubeconfig:
    """The kubeconfig of kubeconfig_files(explicit), merged. A missing file in a KUBECONFIG
    list is skipped (kubectl does); a missing file alone, or every file of the list missing,
    is a UserError naming them; so is any file that cannot be read or is malformed."""
    files = kubeconfig_files(explicit)
    present = tuple(f for f in files if os.path.exists(f))
    if len(files) > 1 and not present:
        raise UserError("none of the kubeconfig files KUBECONFIG lists exists", [Problem(
            "KUBECONFIG", f"no file at any of: {', '.join(files)}",
            "set KUBECONFIG (or cluster.kubeconfig in the answers file) to your kubeconfig")])
    docs = [read_kubeconfig(f) for f in present or files]
    return Kubeconfig(present or files, merge(docs))


_ENTRIES = ("clusters", "users", "contexts")


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """client-go's merge: per name, the first file's cluster, user or context wins, and the
    first current-context set wins."""
    out: dict[str, Any] = {kind: [] for kind in _ENTRIES}
    seen: dict[str, set[str]] = {kind: set() for kind in _ENTRIES}
    for doc in docs:
        for kind in _ENTRIES:
            for item in doc.get(kind) or []:
                if item["name"] not in seen[kind]:
                    seen[kind].add(item["name"])
                    out[kind].append(item)
        if doc.get("current-context") and not out.get("current-context"):
            out["current-context"] = doc["current-context"]
    return out


# Typed fields, as client-go's kubeconfig types declare them: (entry kind, key, type).
_BOOLEANS = {("cluster", "insecure-skip-tls-verify"), ("cluster", "disable-compression")}
_STRINGS = {
    ("cluster", k) for k in ("server", "certificate-authority", "certificate-authority-data",
                             "tls-server-name", "proxy-url")} | {
    ("user", k) for k in ("client-certificate", "client-certificate-data", "client-key",
                          "client-key-data", "token", "tokenFile", "username", "password",
                          "as", "as-uid")} | {
    ("context", k) for k in ("cluster", "user", "namespace")}
# File references, resolved against the folder of the file that names them (kubectl does).
_FILES = {"cluster": ("certificate-authority",),
          "user": ("client-certificate", "client-key", "tokenFile")}


def _type_problem(where: str, value: Any, want: str) -> Problem:
    shown = f"the string {value!r}" if isinstance(value, str) else \
        f"{type(value).__name__} {value!r:.60}"
    if want != "boolean":
        return Problem(WHERE, f"{where} is {shown}, not a {want}", VALID_KUBECONFIG)
    key, word = where.rsplit(".", 1)[-1], str(value).strip().lower()
    return Problem(WHERE, f"{where} is {shown}, not a boolean (kubectl refuses it too"
                   + ("; read as text it would mean true)" if isinstance(value, str) and value
                      else ")"),
                   f"write {key}: {word if word in ('true', 'false') else 'true or false'} "
                   "without quotes")


def _check_entry(kind: str, name: str, entry: dict[str, Any], base: Path,
                 problems: list[Problem]) -> None:
    where = f"{kind}s[{name}].{kind}"
    for key, value in entry.items():
        if value is None:
            continue
        if (kind, key) in _BOOLEANS and not isinstance(value, bool):
            problems.append(_type_problem(f"{where}.{key}", value, "boolean"))
        elif (kind, key) in _STRINGS and not isinstance(value, str):
            problems.append(_type_problem(f"{where}.{key}", value, "string"))
    if kind == "user":
        _check_impersonation(where, entry, problems)
    exec_ = entry.get("exec")
    if kind == "user" and exec_ is not None and not isinstance(exec_, dict):
        problems.append(_type_problem(f"{where}.exec", exec_, "mapping"))
    elif kind == "user" and exec_ is not None and not isinstance(
            exec_.get("provideClusterInfo", False), bool):
        problems.append(_type_problem(f"{where}.exec.provideClusterInfo",
                                      exec_["provideClusterInfo"], "boolean"))
    for key in _FILES.get(kind, ()):
        if isinstance(entry.get(key), str) and entry[key]:
            entry[key] = str(base / os.path.expanduser(entry[key]))


def _check_impersonation(where: str, entry: dict[str, Any], problems: list[Problem]) -> None:
    """as-groups is a list of strings, as-user-extra a mapping of strings to lists of strings
    (client-go's AuthInfo): each becomes a header installer.cluster.kubeauth sends, and a number or
    a lone string there would be sent as something the operator did not write."""
    groups = entry.get("as-groups")
    if groups is not None and not (isinstance(groups, list)
                                   and all(isinstance(g, str) for g in groups)):
        problems.append(_type_problem(f"{where}.as-groups", groups, "list of strings"))
    extra = entry.get("as-user-extra")
    if extra is None:
        return
    if not isinstance(extra, dict):
        problems.append(_type_problem(f"{where}.as-user-extra", extra,
                                      "mapping of strings to lists of strings"))
        return
    for key, values in extra.items():
        if not isinstance(key, str) or not (isinstance(values, list) and all(
                isinstance(v, str) for v in values)):
            problems.append(_type_problem(f"{where}.as-user-extra.{key}", values,
                                          "list of strings"))


def _check_document(path: str, data: dict[str, Any]) -> None:
    """Refuse a kubeconfig client-go would refuse to decode, or whose values the installer
    would misread; make its file references absolute. Every problem is reported at once."""
    problems: list[Problem] = []
    base = Path(path).absolute().parent
    for kind in _ENTRIES:
        items = data.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append(_type_problem(kind, items, "list"))
            continue
        names: set[str] = set()
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                    or not item["name"]:
                problems.append(Problem(WHERE, f"{kind}[{i}] is not a mapping with a name",
                                        VALID_KUBECONFIG))
                continue
            if item["name"] in names:
                problems.append(Problem(WHERE, f"{kind} has two entries named "
                                        f"'{item['name']}' (kubectl refuses the file)",
                                        "keep one of them"))
            names.add(item["name"])
            entry = item.get(kind[:-1])
            if entry is not None and not isinstance(entry, dict):
                problems.append(_type_problem(f"{kind}[{item['name']}].{kind[:-1]}", entry,
                                              "mapping"))
            elif entry:
                _check_entry(kind[:-1], item["name"], entry, base, problems)
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        problems.append(_type_problem("current-context", current, "string"))
    prefs = data.get("preferences")
    if isinstance(prefs, dict) and not isinstance(prefs.get("colors", False), bool):
        problems.append(_type_problem("preferences.colors", prefs["colors"], "boolean"))
    if problems:
        raise UserError(f"kubeconfig {path} is not a valid kubeconfig", problems)
