"""Reading a kubeconfig file without the kubernetes client.

Why a module of its own: the wizard lists a kubeconfig's contexts on its first screen, and
importing `kubernetes` (0.3-0.4 s of CPU here) or `installer.kube` (the engine and planner
with it) for that would compete with the first frame. `installer.kube.connect` checks the
file here too, so both say the same thing about a broken kubeconfig.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from installer.errors import Problem, UserError
from remote.yamlload import YAMLRefused, read_text, safe_load


def kubeconfig_path(explicit: str | None) -> str:
    if explicit:
        return os.path.expanduser(explicit)
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return os.path.expanduser(env or "~/.kube/config")


WHERE = "cluster.kubeconfig"  # the answers' key every kubeconfig problem is reported under
VALID_KUBECONFIG = "point cluster.kubeconfig at a valid kubeconfig (kubectl config view checks it)"


def read_kubeconfig(path: str) -> dict[str, Any]:
    """The kubeconfig's document, checked for the failures the kubernetes client reports
    badly (a traceback for YAML errors, "list indices must be integers" for a list): a
    missing, unreadable, non-text or non-YAML file, or a document that is not a mapping.
    Each becomes a UserError naming the file and the fix."""
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
    if not isinstance(data, dict):
        raise UserError(f"kubeconfig {path} is not a kubeconfig", [Problem(
            WHERE, "the document is not a mapping of clusters, contexts and users",
            VALID_KUBECONFIG)])
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
