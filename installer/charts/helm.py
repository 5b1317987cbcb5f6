"""The chart service: the real `helm` binary (3 or 4), run as a child process.

Why the binary and not a library: operators trust helm's own behaviour and errors, and
air-gapped sites already have it. Each helm runs in its own process group so a cancel
stops it (and any plugin it started) at once; its output streams line by line.

One runner for every helm this tool starts (`run_helm`), reads included. pyhelm3 0.5.8 (the
design card's helm library) drives the same binary, and its argument lists are right, but
its one runner, `Command.run` (pyhelm3/command.py:179-255), is not sound here for any
operation, reads by name included:
- command.py:200 starts helm with `create_subprocess_shell` and no `env=`: helm inherits the
  whole environment, so the variables that held the sudo password or the key passphrase,
  which `installer.childenv` keeps from every child, reach helm (and its /proc/<pid>/environ)
  again; nothing in its API passes an environment. (The shell itself is not an injection risk:
  command.py:195 quotes every argument with `shlex.join`.)
- command.py:209-217 answers a cancel with `terminate()` of that shell's pid, no process
  group, then waits without limit: a helm (or plugin) the shell forked keeps running, and
  one that ignores SIGTERM hangs the cancel; a read has no time limit at all.
- command.py:208 holds helm's output until it exits: no live lines for an install's log.
- `import pyhelm3.command` runs pyhelm3/__init__.py, which imports client.py and
  pydantic, a cost every process calling helm would pay. Its token option (command.py:191,
  `--kube-token` on argv, visible in `ps`) is not a problem for us only because the
  kubeconfig carries the credentials.
So reads (`list_releases`) run here too, with the flags pyhelm3 gets wrong by
default fixed: `helm list --max 0` (its `max_releases=256`, command.py:645, is helm's own
default cap, which could hide our releases on a busy cluster).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from installer.childenv import child_env
from installer.cluster.apierrors import refusal_in
from installer.cluster.facts import ReleaseFacts
from installer.errors import Problem, StepFailed, UserError
from installer.permit import Permit, require_permit

CANCEL_GRACE_SECONDS = 3.0
# How far past its own --timeout (helm's default 5m when none is given) a helm may run
# before we stop it: helm's own timeout error, which says more, comes first.
OUTER_MARGIN_SECONDS = 30.0
VALUES_AT_ONCE = 4  # `helm get values` processes at once during discovery


@dataclass(frozen=True)
class Helm:
    binary: str
    kubeconfig: str | None  # None: the files KUBECONFIG lists (helm merges them as kubectl)
    context: str | None

    def base_args(self) -> list[str]:
        args = ["--kubeconfig", self.kubeconfig] if self.kubeconfig else []
        return args + (["--kube-context", self.context] if self.context else [])


def find_helm(kubeconfig: str | None, context: str | None) -> Helm:
    binary = os.environ.get("GPU_KATA_HELM") or shutil.which("helm")
    if not binary:
        raise UserError("helm not found", [Problem(
            "PATH", "no `helm` executable on PATH",
            "install helm 3 or 4, or set GPU_KATA_HELM to its path")])
    return Helm(binary, kubeconfig, context)


SUPPORTED_MAJORS = ("3", "4")


async def helm_version(helm: Helm) -> str:
    """`helm version --short` (e.g. `v3.19.0+g3d8990f`), refusing a major this tool does not
    drive: helm 2's commands and flags differ, and a future major may too, so failing here
    names the problem before any change rather than in the middle of an install."""
    code, out, err = await run_helm(helm, ["version", "--short"])
    said = " ".join(f"{out}\n{err}".split())
    found = re.search(r"\bv(\d+)\.\d+\.\d+\S*", said, re.ASCII)  # helm 2 adds "Client: " and tiller
    if code != 0 or found is None or found.group(1) not in SUPPORTED_MAJORS:
        raise UserError(f"unsupported helm at {helm.binary}", [Problem(
            "helm", f"`helm version --short` said {said[:200]!r}" if said else
            f"`helm version --short` said nothing (exit {code})",
            "install helm 3 or 4, or set GPU_KATA_HELM to its path")])
    return found.group(0)


def seconds(duration: str) -> int:
    """Helm-style duration ('10m', '90s', '1h') in seconds."""
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


async def run_helm(helm: Helm, args: list[str], on_line: Callable[[str, str], None] | None = None,
                   ) -> tuple[int, str, str]:
    """Run helm, streaming lines to `on_line(stream, line)`; kill its group on cancel, and
    when it runs past its own --timeout by OUTER_MARGIN_SECONDS (a helm that hangs)."""
    timeout = args[args.index("--timeout") + 1] if "--timeout" in args else "5m"
    limit = seconds(timeout) + OUTER_MARGIN_SECONDS
    try:
        return await asyncio.wait_for(_run(helm, args, on_line), limit)
    except TimeoutError:
        raise StepFailed(
            f"helm {args[0]} did not finish within {limit:g} s (its --timeout {timeout} "
            f"and {OUTER_MARGIN_SECONDS:g} s more); it was stopped",
            cause="helm stopped answering: the API server or the chart source did not respond",
            fix="check that the API server answers (`kubectl get --raw /readyz`) and the chart "
                "source is reachable; then run again") from None


async def _run(helm: Helm, args: list[str], on_line: Callable[[str, str], None] | None,
               ) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        helm.binary, *args, *helm.base_args(), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        env=child_env())
    out: list[str] = []
    err: list[str] = []

    async def pump(stream: asyncio.StreamReader, sink: list[str], name: str) -> None:
        async for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append(line)
            if on_line:
                on_line(name, line)

    try:
        assert proc.stdout and proc.stderr
        await asyncio.gather(pump(proc.stdout, out, "stdout"), pump(proc.stderr, err, "stderr"))
        code = await proc.wait()
    except asyncio.CancelledError:
        await _stop_group(proc)
        raise
    return code, "\n".join(out), "\n".join(err)


async def _stop_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the whole process group, then SIGKILL after a short grace."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), CANCEL_GRACE_SECONDS)
            return
        except TimeoutError:
            continue


# The charts this tool installs: their releases (under any name) are the ones whose values
# discovery reads - the plan compares them with the values it would install.
MANAGED_CHARTS = ("kata-deploy", "gpu-operator")
# helm's `<chart>-<version>`: the version is the first `-`-suffix that is a SemVer (with the
# `v` the GPU Operator's chart versions carry), so `gpu-operator-v26.3.0-rc.1` keeps its `-rc.1`.
_CHART_VERSION = re.compile(r"(.+?)-(v?\d+\.\d+\.\d+(?:[-+].*)?)", re.ASCII)


def split_chart(chart: str) -> tuple[str, str]:
    """(name, version) of helm list's `chart` field."""
    found = _CHART_VERSION.fullmatch(chart)
    if found:
        return found.group(1), found.group(2)
    name, _, version = chart.rpartition("-")
    return name, version


def manages(release: ReleaseFacts, names: Collection[str] = ()) -> bool:
    """Whether `release` is one this tool installs: one of its charts, or a release named as
    the answers name kata-deploy's or the GPU Operator's (a mirrored or stand-in chart may
    carry another chart name). Default release names count without answers."""
    return release.chart in MANAGED_CHARTS or release.name in {*MANAGED_CHARTS, *names}


async def list_releases(helm: Helm, managed: Collection[str] = ()) -> list[ReleaseFacts]:
    """Every release (name, namespace, chart, version, status), and the values of the ones
    `manages` (release names from the answers in `managed`): the others' values are nobody's
    business here, and reading them cost one helm process each."""
    # Status filters rather than --all, which helm 4 dropped; these mean the same in 3 and 4.
    # --max 0: no cap (helm's default is 256 releases); pkg/action/list.go in helm 3 and 4
    # truncates only when the limit is above 0.
    code, out, err = await run_helm(helm, ["list", "--all-namespaces", "--deployed", "--failed",
                                           "--pending", "--max", "0", "-o", "json"])
    if code != 0:
        # helm keeps releases in secrets: a context that may not list them is refused by
        # the API server, and says so like any refused read (installer.cluster.apierrors).
        refused = refusal_in(err or out, helm.context)
        if refused is not None:
            raise refused
        raise StepFailed(f"helm list failed: {err.strip() or out.strip()}",
                         fix="check the kubeconfig and that helm can reach the cluster")
    listed = []
    for r in json.loads(out or "[]"):
        chart, version = split_chart(r.get("chart", ""))
        listed.append(ReleaseFacts(name=r["name"], namespace=r["namespace"], chart=chart,
                                   version=version, status=r.get("status", ""),
                                   app_version=r.get("app_version") or "",
                                   revision=int(r.get("revision") or 0)))
    # The managed releases' values side by side (a few helm processes at a time).
    limit = asyncio.Semaphore(VALUES_AT_ONCE)

    async def with_values(r: ReleaseFacts) -> ReleaseFacts:
        if not manages(r, managed):
            return r
        async with limit:
            return replace(r, values=await _release_values(helm, r.name, r.namespace))

    return list(await asyncio.gather(*(with_values(r) for r in listed)))


async def _release_values(helm: Helm, name: str, namespace: str) -> dict[str, Any]:
    """The values a release was installed with ({} when helm cannot say)."""
    code, out, _ = await run_helm(helm, ["get", "values", name, "--namespace", namespace,
                                         "-o", "json"])
    return (json.loads(out or "{}") or {}) if code == 0 else {}


@dataclass(frozen=True)
class Revision:
    """One entry of `helm history`."""

    revision: int
    status: str
    chart: str
    app_version: str
    description: str


async def history(helm: Helm, release: str, namespace: str) -> list[Revision]:
    """A release's revisions, oldest first (helm keeps the last 10 by default; `--max` is
    left at helm's 256: in helm's history command 0 means none, not all)."""
    code, out, err = await run_helm(helm, ["history", release, "--namespace", namespace,
                                           "-o", "json"])
    if code != 0:
        raise StepFailed(f"helm history {release} failed: {(err or out).strip()}",
                         fix=f"check that release {namespace}/{release} exists "
                             f"(`helm list -n {namespace}`) and helm can reach the cluster")
    return [Revision(int(r["revision"]), r.get("status", ""), r.get("chart", ""),
                     r.get("app_version", ""), r.get("description", ""))
            for r in json.loads(out or "[]")]


async def rollback(helm: Helm, permit: Permit, release: str, namespace: str,
                   revision: int, on_line: Callable[[str, str], None] | None = None,
                   *, timeout: str = "5m") -> str:
    """`helm rollback` to `revision`, a change like an install: a Permit first, our runner
    (streamed, cancellable), helm's error with its fix. Without --wait: helm 4 waits by
    kstatus, which never calls an OnDelete DaemonSet's rollout done."""
    require_permit(permit)
    args = ["rollback", release, str(revision), "--namespace", namespace,
            "--timeout", timeout]
    code, out, err = await run_helm(helm, args, on_line)
    if code != 0:
        raise StepFailed(f"helm rollback failed: {helm_error(code, out, err)}",
                         cause="helm's own error above",
                         fix=f"see `helm history {release} --namespace {namespace}` and the "
                             f"release's pods (`kubectl get pods -n {namespace}`); fix the "
                             "cause and roll back again")
    return out


# What helm's error says -> (cause, fix). `{section}` is the chart's key in the answers.
_HELM_FAILURES = (
    (("not found", "no such file", "cannot be reached", "connection refused", "failed to fetch",
      "failed to do request", "no such host", "not a valid chart"),
     "helm could not get the chart",
     "check {section}.chart (path, repo and name, or oci) and {section}.version, and that "
     "this machine can reach the chart; then run again"),
    # helm 3 says `template: <file>: executing ...`; helm 4 drops the `template:` word
    (("template:", 'executing "', "values don't meet", "schema", "error converting yaml",
      "cannot unmarshal"),
     "the chart rejected the values",
     "correct {section}.values (the error names the key and the type the chart expects); "
     "then run again"),
    (("context deadline exceeded", "timed out", "not ready"),
     "the release did not become ready within its timeout",
     "find why its pods do not start (`kubectl get pods -n {namespace}`), or raise "
     "{section}.timeout; then run again - the failed release is upgraded in place"),
)


def helm_error(code: int, out: str, err: str) -> str:
    """helm's own error on one line, from `Error:` on (its last line when it says none)."""
    lines = (err or out).strip().splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.startswith("Error:")),
                 max(len(lines) - 1, 0))
    return " ".join(ln.strip() for ln in lines[first:])[:1000] or f"exit {code}"


def install_failure(code: int, out: str, err: str, section: str, namespace: str) -> StepFailed:
    """helm's own error, whole (from `Error:` on), with the likely cause and its fix."""
    error = helm_error(code, out, err)
    low = error.lower()
    cause, fix = next(((c, f) for marks, c, f in _HELM_FAILURES if any(m in low for m in marks)),
                      ("helm's own error above", "fix the cause and run again; the run "
                       "resumes from here"))
    return StepFailed(f"helm failed: {error}", cause=cause,
                      fix=fix.format(section=section, namespace=namespace))


async def install(helm: Helm, permit: Permit, args_without_values: list[str],
                  values: dict[str, Any], on_line: Callable[[str, str], None],
                  section: str = "the chart", namespace: str = "") -> str:
    """Run `helm upgrade --install` with the values in a private temporary file.
    `section` (the chart's key in the answers) and `namespace` make a failure's fix exact."""
    require_permit(permit)
    code, out, err = await run_with_values(helm, args_without_values, values, on_line)
    if code != 0:
        raise install_failure(code, out, err, section, namespace)
    return out


async def run_with_values(helm: Helm, args_without_values: list[str], values: dict[str, Any],
                          on_line: Callable[[str, str], None] | None = None,
                          ) -> tuple[int, str, str]:
    """Run helm with `<values.yaml>` in its arguments replaced by a private temporary file
    holding `values` (mode 0600: values may name Secrets and hosts), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gpu-kata-values-") as tmp:
        path = Path(tmp) / "values.yaml"
        path.write_text(yaml.safe_dump(values, sort_keys=True))
        path.chmod(0o600)
        args = [str(path) if a == "<values.yaml>" else a for a in args_without_values]
        return await run_helm(helm, args, on_line)


async def uninstall(helm: Helm, permit: Permit, args: list[str],
                    on_line: Callable[[str, str], None]) -> str:
    """`helm uninstall` or `helm rollback` (args start with the verb); a missing release is fine."""
    require_permit(permit)
    code, out, err = await run_helm(helm, args, on_line)
    if code != 0 and "not found" not in err:
        raise StepFailed(f"helm {args[0]} failed: {(err or out).strip()}",
                         fix=f"fix the cause and run again (or `helm {args[0]}` by hand)")
    return out
