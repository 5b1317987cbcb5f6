"""What the Kata sandbox device plugin advertises and the CDI spec it writes for it.

The plugin (NVIDIA sandbox-device-plugin, the same logic in v0.0.2, v0.0.3 and v0.0.5, the
tags the GPU Operator versions ship) names one resource per class and writes one CDI spec
per class under the same name (cmd/main.go, pkg/device_plugin/device_plugin.go and cdi.go):

- `P_GPU_ALIAS` unset: every GPU is `nvidia.com/pgpu`; set to "" (the installer's per-model
  naming): one class per GPU model, the model's name in the plugin's PCI ID database
  (`GH100 [H100 SXM5 80GB]`) upper-cased, `/` `.` and whitespace turned to `_`, anything but
  letters, digits, `_` and `-` dropped: `nvidia.com/GH100_H100_SXM5_80GB`
  (formatDeviceName, device_plugin.go@v0.0.5). NVSwitches are classes of their own
  (`nvidia.com/nvswitch`, or per model with `NVSWITCH_ALIAS=""`).
- The spec is `/var/run/cdi/nvidia.com-<class>.yaml` (cdiRoot in constants.go; the name is
  the CDI library's vendor-class spec name written as YAML: GenerateNameForSpec and
  Cache.WriteSpec, container-device-interface pkg/cdi vendored at v0.0.5), `cdiVersion`
  0.5.0, `kind: nvidia.com/<class>`, one device per IOMMU group named by the group number
  with device nodes /dev/vfio/vfio and /dev/vfio/<group> - or, where /dev/iommu exists, named
  by the vfio device number with the node /dev/vfio/devices/vfio<N> (generateCDISpecForClass,
  cdi.go@v0.0.5).

So the spec to verify on a host is the one of the resource its node advertises, and it must
list every GPU's IOMMU group: a pod given a device the spec lacks fails with "unresolvable
CDI devices". Pure: host facts and node allocatable in, a verdict out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from remote.hostfacts import HostFacts, PciDevice
from remote.yamlload import safe_load

VENDOR = "nvidia.com"
PGPU = "nvidia.com/pgpu"
CDI_DIR = "var/run/cdi"  # relative to the host root, as the probe reports paths
# /var/run is /run on current distributions: the probe may list the same file under both.
_CDI_DIRS = (CDI_DIR, "run/cdi")
IOMMUFD_NODES = "/dev/vfio/devices/"


def model_class(pci_name: str) -> str:
    """The class the plugin derives from a PCI ID database name (formatDeviceName,
    pkg/device_plugin/device_plugin.go@v0.0.5): "GH100 [H100 SXM5 80GB]" ->
    "GH100_H100_SXM5_80GB"."""
    name = pci_name.upper().replace("/", "_").replace(".", "_")
    name = re.sub(r"\s+", "_", name, flags=re.ASCII)
    return re.sub(r"[^a-zA-Z0-9_-]+", "", name)


def is_per_model_gpu(resource: str) -> bool:
    """`nvidia.com/<MODEL>` as the plugin names a GPU model: upper case, since the name is
    upper-cased - unlike the aliases and the other device plugins' names (`pgpu`, `gpu`,
    `nvswitch`, `mig-1g.10gb`, `gpu.shared`) - and not an NVSwitch model (`..._NVSWITCH`)."""
    vendor, _, name = resource.partition("/")
    return (vendor == VENDOR and bool(name) and name == name.upper()
            and any(c.isalnum() for c in name) and "NVSWITCH" not in name)


def _count(value: Any) -> int:
    text = str(value)
    return int(text) if text.isascii() and text.isdigit() else 0


def gpu_resources(allocatable: Mapping[str, Any], resource: str | None) -> dict[str, int]:
    """The node's GPU resources with a count above 0: `resource` (e.g. nvidia.com/pgpu), or
    with per-model naming (None) every per-model GPU name it advertises."""
    if resource:
        n = _count(allocatable.get(resource, "0"))
        return {resource: n} if n > 0 else {}
    return {k: n for k, v in sorted(allocatable.items())
            if is_per_model_gpu(k) and (n := _count(v)) > 0}


def spec_path(cls: str) -> str:
    """Where the plugin writes the spec of a class, relative to the host root."""
    return f"{CDI_DIR}/{VENDOR}-{cls}.yaml"


@dataclass(frozen=True)
class Expected:
    """The classes whose specs a host must have, and where that knowledge came from."""

    classes: tuple[str, ...]
    source: str  # for messages: "advertised by the node", "the host's GPU models"
    unknown: tuple[PciDevice, ...] = ()  # GPUs whose model name this tool does not know


def expected_classes(resource: str | None, allocatable: Mapping[str, Any] | None,
                     gpus: Sequence[PciDevice]) -> Expected:
    """Which specs to look for: the fixed name's; or with per-model naming the models the
    node advertises (what the plugin really registered - the cluster knows the name the
    plugin derived), else the names the plugin derives from the host's GPU device IDs."""
    if resource:
        return Expected((resource.partition("/")[2],), f"the resource {resource}")
    advertised = gpu_resources(allocatable or {}, None)
    if advertised:
        return Expected(tuple(k.partition("/")[2] for k in advertised),
                        "the per-model resources the node advertises")
    known = [model_class(g.model.name) for g in gpus if g.model]
    return Expected(tuple(dict.fromkeys(known)), "the host's GPU models",
                    tuple(g for g in gpus if not g.model))


@dataclass(frozen=True)
class CdiVerdict:
    ok: bool
    message: str
    cause: str = ""
    fix: str = ""


FIX = ("check the nvidia-kata-sandbox-device-plugin pod on the node: its log names each spec "
       "it wrote (troubleshoot shows it)")


def _find(host: HostFacts, cls: str) -> str | None:
    names = [f"{d}/{VENDOR}-{cls}.yaml" for d in _CDI_DIRS]
    return next((n for n in names if n in host.cdi_specs or n in host.files), None)


@dataclass(frozen=True)
class _Spec:
    kind: Any
    devices: tuple[str, ...]
    iommufd: bool  # devices named by vfio device number (/dev/vfio/devices/vfio<N>)


def _read_spec(text: str) -> _Spec | str:
    """A spec's kind and device names from its text, or what is wrong with it."""
    try:
        doc = safe_load(text)
    except yaml.YAMLError as exc:
        return f"it is not valid YAML ({type(exc).__name__})"
    if not isinstance(doc, dict):
        return "it holds no CDI spec"
    names: list[str] = []
    iommufd = False
    for dev in doc.get("devices") or []:
        if not isinstance(dev, dict):
            continue
        names.append(str(dev.get("name", "")))
        edits = dev.get("containerEdits") or {}
        for node in (edits.get("deviceNodes") if isinstance(edits, dict) else None) or []:
            if isinstance(node, dict) and str(node.get("path", "")).startswith(IOMMUFD_NODES):
                iommufd = True
    return _Spec(doc.get("kind"), tuple(names), iommufd)


def check_specs(host: HostFacts, expected: Expected, node: str) -> CdiVerdict:
    """Each expected class has its spec on the host, of its kind, and together they list
    every GPU's IOMMU group (by count where the host uses iommufd device numbers)."""
    present = sorted({p.rpartition("/")[2] for p in host.cdi_specs
                      if p.rpartition("/")[2].startswith(f"{VENDOR}-")})
    if not expected.classes:
        models = ", ".join(g.label for g in expected.unknown) or "none"
        return CdiVerdict(False, f"{node}: cannot tell which CDI spec to verify: the node "
                          "advertises no per-model GPU resource and this tool does not know the "
                          f"model name of its GPUs ({models})",
                          f"specs present: {', '.join(present) or 'none'}", FIX)
    specs: list[_Spec] = []
    found: list[str] = []
    for cls in expected.classes:
        path = _find(host, cls)
        if path is None:
            others = f"; specs present: {', '.join(present)}" if present else \
                "; no nvidia.com spec is present"
            return CdiVerdict(False, f"{node}: no CDI spec /{spec_path(cls)} "
                              f"(for {VENDOR}/{cls}, {expected.source})",
                              "the Kata sandbox device plugin writes one spec per resource it "
                              f"advertises and has not written this one{others}", FIX)
        found.append(path.rpartition("/")[2])
        text = host.files.get(path)
        if text is None:
            continue  # listed but not read (unreadable to this user): presence is all we know
        spec = _read_spec(text)
        if isinstance(spec, str):
            return CdiVerdict(False, f"{node}: CDI spec /{path} is unusable: {spec}",
                              "a pod given its devices fails with 'unresolvable CDI devices'",
                              FIX)
        if spec.kind != f"{VENDOR}/{cls}":
            return CdiVerdict(False, f"{node}: CDI spec /{path} has kind {spec.kind!r}, not "
                              f"{VENDOR}/{cls}", "its devices cannot be resolved under the "
                              "advertised resource's name", FIX)
        specs.append(spec)
    named = ", ".join(found)
    if not specs:
        return CdiVerdict(True, f"CDI spec {named} present (its contents could not be read)")
    gpus = [g for g in host.gpus if g.iommu_group is not None]
    names = [n for s in specs for n in s.devices]
    if any(s.iommufd for s in specs):  # vfio device numbers: the probe does not map them
        if len(names) < len(gpus):
            return CdiVerdict(False, f"{node}: CDI spec {named} lists {len(names)} device(s) "
                              f"for {len(gpus)} GPU(s)",
                              "the plugin did not find every GPU bound to vfio-pci", FIX)
        return CdiVerdict(True, f"CDI spec {named} lists {len(names)} iommufd device(s)")
    missing = [g for g in gpus if g.iommu_group not in names]
    if missing:
        return CdiVerdict(False, f"{node}: CDI spec {named} does not list the IOMMU group of "
                          + ", ".join(f"{g.bdf} (group {g.iommu_group})" for g in missing)
                          + f"; it lists {', '.join(names) or 'no device'}",
                          "a pod given that GPU fails with 'unresolvable CDI devices': the "
                          "plugin wrote the spec before the GPU was bound to vfio-pci, or the "
                          "spec is left from another install",
                          FIX + "; restarting that pod rewrites the spec")
    groups = ", ".join(g.iommu_group or "" for g in gpus)
    return CdiVerdict(True, f"CDI spec {named} lists IOMMU group(s) {groups}")
