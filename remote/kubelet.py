"""Where each Kubernetes distribution keeps its kubelet: the root directory, the files its
settings are read from, and where an operator (or the `kubelet-gate` fix) sets them.

Why a table: kubeadm's layout (root /var/lib/kubelet, settings in config.yaml there) is one
of five. k0s and MicroK8s move the root; k3s and RKE2 keep the root but never read
/var/lib/kubelet/config.yaml; k0s rewrites its kubelet config file at every start. A check
that reads the wrong file reports a setting that is not in force, and a fix that edits it
changes nothing - or, worse, edits a file the kubelet does not read while saying it fixed
the node. Pure data and pure functions of HostFacts: no I/O.

Sources, one per layout:
- kubeadm: /var/lib/kubelet/config.yaml (kubeadm's kubelet drop-in, `--config`).
- k3s / RKE2: root /var/lib/kubelet (k3s moved it back there from its data dir, by design:
  k3s-io/k3s#901, #3801); the kubelet runs with
  `--config-dir=/var/lib/rancher/<k3s|rke2>/agent/etc/kubelet.conf.d` and takes operator
  flags from `kubelet-arg` in /etc/rancher/<k3s|rke2>/config.yaml (not read here: that file
  also holds the cluster join token).
- k0s: `--root-dir` /var/lib/k0s/kubelet unless `--kubelet-root-dir` moves it
  (pkg/config/cfgvars.go; a recorded facts file's kubeletRoot can say so), `--config` written from
  the cluster's worker profile at every start (pkg/component/worker/kubelet.go):
  /var/lib/k0s/kubelet-config.yaml up to v1.32, /run/k0s/kubelet/config.yaml from v1.33;
  kata-deploy sets `kubelet_root_dir = "/var/lib/k0s/kubelet"` for k0s
  (tools/packaging/kata-deploy/binary/src/artifacts/install.rs@4.1.0).
- MicroK8s: root /var/snap/microk8s/common/var/lib/kubelet, flags one per line in
  $SNAP_DATA/args/kubelet (/var/snap/microk8s/current/args/kubelet), read by kubelite.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from remote.hostfacts import HostFacts
from remote.yamlload import safe_load

DEFAULT_ROOT = "/var/lib/kubelet"


@dataclass(frozen=True)
class KubeletLayout:
    """One distribution's kubelet on disk. Paths in `configs` and `args` are relative to the
    host root; a config ending in `/*.conf` is a drop-in folder merged in name order."""

    distribution: str
    root: str
    configs: tuple[str, ...] = ()
    args: str = ""
    # How an operator sets a kubelet setting here; {yaml} and {flag} are filled in.
    by_hand: str = ""
    # Why the kubelet-gate fix does not edit this distribution's files ("" when it does).
    no_fix: str = ""
    restart: tuple[str, ...] = ("systemctl", "restart", "kubelet")

    def how_to_set(self, yaml_setting: str, flag: str) -> str:
        return self.by_hand.format(yaml=yaml_setting, flag=flag, arg=flag.removeprefix("--"))


def _rancher(name: str, server: str) -> KubeletLayout:
    return KubeletLayout(
        name, DEFAULT_ROOT, (f"var/lib/rancher/{name}/agent/etc/kubelet.conf.d/*.conf",),
        by_hand=f"add `kubelet-arg: [\"{{arg}}\"]` to /etc/rancher/{name}/config.yaml (beside "
                f"any kubelet-arg already there) and restart {name} (`systemctl restart "
                f"{server}`, or {name}-agent on an agent)",
        no_fix=f"{name}'s kubelet takes its flags from /etc/rancher/{name}/config.yaml, which "
               "also holds the cluster's join token: the installer neither reads nor edits it")


LAYOUTS: dict[str, KubeletLayout] = {
    "k8s": KubeletLayout(
        "k8s", DEFAULT_ROOT, ("var/lib/kubelet/config.yaml",),
        by_hand="set `{yaml}` in /var/lib/kubelet/config.yaml and restart the kubelet "
                "(`systemctl restart kubelet`)"),
    "k3s": _rancher("k3s", "k3s"),
    "rke2": _rancher("rke2", "rke2-server"),
    "k0s": KubeletLayout(
        "k0s", "/var/lib/k0s/kubelet",
        ("run/k0s/kubelet/config.yaml", "var/lib/k0s/kubelet-config.yaml"),
        by_hand="set `{yaml}` in a worker profile's values (spec.workerProfiles of the k0s "
                "configuration, from which k0s writes the kubelet config at every start) or "
                "pass `--kubelet-extra-args={flag}` to the worker, then restart it (`systemctl "
                "restart k0sworker`)",
        no_fix="k0s writes its kubelet config from the cluster's worker profile at every "
               "start: an edit on the host would be lost"),
    "microk8s": KubeletLayout(
        "microk8s", "/var/snap/microk8s/common/var/lib/kubelet",
        args="var/snap/microk8s/current/args/kubelet",
        by_hand="add `{flag}` to /var/snap/microk8s/current/args/kubelet and restart kubelite "
                "(`snap restart microk8s.daemon-kubelite`)",
        restart=("snap", "restart", "microk8s.daemon-kubelite")),
}
KUBELET_ROOTS: dict[str, str] = {d: layout.root for d, layout in LAYOUTS.items()}

# Folders that only a distribution's own install creates, newest-layout first.
_MARKERS: tuple[tuple[str, str], ...] = (
    ("var/snap/microk8s", "microk8s"), ("var/lib/k0s", "k0s"),
    ("var/lib/rancher/rke2", "rke2"), ("var/lib/rancher/k3s", "k3s"))
MARKER_PATHS: tuple[str, ...] = tuple(p for p, _ in _MARKERS)


def host_distribution(facts: HostFacts) -> str:
    """The distribution a host's own files show (k8s when none of the others' folders is
    there). The cluster's word (the node's kubelet version and labels) wins over this; it is
    what `check --local` and a host without node information go by."""
    return next((d for p, d in _MARKERS if p in facts.markers), "k8s")


def layout(distribution: str | None) -> KubeletLayout:
    return LAYOUTS.get(distribution or "k8s", LAYOUTS["k8s"])


@dataclass(frozen=True)
class KubeletSettings:
    """What the kubelet of one layout is configured with, as far as the host's files say.

    `config` is the KubeletConfiguration read (drop-ins merged; None: no config file found),
    `flags` the flags of an args file ({"--feature-gates": "A=true"}). `sources` are the
    files read, for evidence; `error` says why a config file could not be read."""

    layout: KubeletLayout
    sources: tuple[str, ...] = ()
    config: dict[str, Any] | None = None
    flags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    from_node: bool = False  # the distribution came from the cluster, not the host's files

    @property
    def found(self) -> bool:
        return self.config is not None or bool(self.flags) or bool(self.sources)

    @property
    def shown(self) -> str:
        """The file(s) to name in messages: what was read, else where it would be."""
        if self.sources:
            return ", ".join(self.sources)
        return self.layout.args or " or ".join(self.layout.configs)

    def feature_gates(self) -> dict[str, bool]:
        """featureGates of the config, overridden by a --feature-gates flag (flags win)."""
        gates = (self.config or {}).get("featureGates")
        out = {str(k): v for k, v in gates.items() if isinstance(v, bool)} \
            if isinstance(gates, dict) else {}
        out.update(parse_gate_flag(self.flags.get("--feature-gates", "")))
        return out

    def setting(self, key: str, flag: str) -> tuple[Any, str] | None:
        """(value, where) of a setting: the flag if given, else the config key."""
        if flag in self.flags:
            return self.flags[flag], self.layout.args
        if self.config is not None and key in self.config:
            return self.config[key], ", ".join(s for s in self.sources if s != self.layout.args)
        return None


def parse_gate_flag(value: str) -> dict[str, bool]:
    """`A=true,B=false` -> {"A": True, "B": False}; malformed entries are skipped."""
    out: dict[str, bool] = {}
    for item in value.split(","):
        k, sep, v = item.strip().partition("=")
        if sep and k and v.strip().lower() in ("true", "false"):
            out[k.strip()] = v.strip().lower() == "true"
    return out


def parse_args_file(text: str) -> dict[str, str]:
    """A kubelet flags file (one `--name=value` or `--name value` per line, `#` comments):
    the last value of each flag, as the kubelet's flag parser keeps it."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("--"):
            continue
        m = re.match(r"(--[^=\s]+)(?:[=\s]\s*(.*))?\Z", line)
        if not m:
            continue
        name, value = m.group(1), (m.group(2) or "").strip()
        try:
            words = shlex.split(value) if value else []
        except ValueError:
            words = [value]
        out[name] = words[0] if len(words) == 1 else value
    return out


def _config_files(facts: HostFacts, lay: KubeletLayout) -> list[str]:
    """The config files of a layout found on the host: every drop-in of a folder, in name
    order; of plain paths, the first one present."""
    for pattern in lay.configs:
        if pattern.endswith("/*.conf"):
            folder = pattern[: -len("*.conf")]
            found = sorted(p for p in facts.files
                           if p.startswith(folder) and "/" not in p[len(folder):]
                           and p.endswith(".conf"))
            if found:
                return found
        elif _text(facts, lay, pattern) is not None:
            return [pattern]
    return []


def _text(facts: HostFacts, lay: KubeletLayout, path: str) -> str | None:
    # kubeadm's file is also HostFacts.kubelet_config, which callers may have replaced.
    if lay.distribution == "k8s" and path == facts.kubelet_config_path:
        return facts.kubelet_config
    return facts.files.get(path)


def read_settings(facts: HostFacts, distribution: str | None = None) -> KubeletSettings:
    """The kubelet settings of `distribution` (None: what the host's files show) on this
    host. Drop-ins merge key by key, featureGates gate by gate, later files winning."""
    lay = layout(distribution or host_distribution(facts))
    from_node = distribution is not None
    sources: list[str] = []
    config: dict[str, Any] | None = None
    error = None
    for path in _config_files(facts, lay):
        sources.append(path)
        try:
            data = safe_load(_text(facts, lay, path) or "")
        except yaml.YAMLError as e:
            error = f"{path}: not valid YAML: {str(e).splitlines()[0]}"
            break
        if data is None:
            data = {}
        if not isinstance(data, dict):
            error = f"{path}: not a mapping"
            break
        merged = dict(config or {})
        for k, v in data.items():
            if k == "featureGates" and isinstance(v, dict) and \
                    isinstance(merged.get(k), dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        config = merged
    flags: dict[str, str] = {}
    if lay.args and (text := facts.files.get(lay.args)) is not None:
        sources.append(lay.args)
        flags = parse_args_file(text)
    if error:
        config = None
    return KubeletSettings(lay, tuple(sources), config, flags, error, from_node)


def evidence_lines(facts: HostFacts, settings: KubeletSettings, *words: str) -> list[str]:
    """`<path>: <line>` for every line of the files read that mentions one of `words`."""
    out = []
    for path in settings.sources:
        text = _text(facts, settings.layout, path) or ""
        out += [f"{path}: {ln}" for ln in text.splitlines()
                if any(w in ln for w in words) and not ln.lstrip().startswith("#")]
    return out


def layout_evidence(settings: KubeletSettings) -> list[str]:
    """One line naming the layout read, unless it is kubeadm's (the usual case)."""
    lay = settings.layout
    if lay.distribution == "k8s":
        return []
    how = "from the node" if settings.from_node else "from the host's files"
    return [f"kubelet layout: {lay.distribution} ({how}), root {lay.root}, settings in "
            f"{settings.shown}"]
