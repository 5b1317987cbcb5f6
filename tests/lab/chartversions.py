"""The stand-in charts at every supported version, made from one template set.

`tests/lab/charts/<chart>` is one chart whose templates branch on `.Chart.Version` (with
`semverCompare`) wherever the real chart changed between the supported tags; this module
writes a copy per version with that version in Chart.yaml and the values keys and defaults the
real chart had at that tag. Each difference names the upstream file and tag it comes from
(kata-containers `tools/packaging/kata-deploy/helm-chart/kata-deploy/values.yaml` = KD, and
NVIDIA/gpu-operator `deployments/gpu-operator/values.yaml` = GO). Nothing here is upstream text.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import yaml

from installer.answers.versions import GPU_OPERATOR_VERSIONS, KATA_DEPLOY_VERSIONS, parse
from tests.lab.binaries import LAB_DIR

CHARTS_DIR = LAB_DIR / "charts"
# The versions the installer is verified against are the versions the lab can run.
VERSIONS = {"kata-deploy": KATA_DEPLOY_VERSIONS, "gpu-operator": GPU_OPERATOR_VERSIONS}


def _v(version: str | None) -> tuple[int, int, int]:
    found = parse(version)
    return (found.major, found.minor, found.patch) if found else (999, 0, 0)


# --- kata-deploy ----------------------------------------------------------------------------

AMD, ARM, S390, PPC = "amd64", "arm64", "s390x", "ppc64le"
CC_FALSE = {"nvidia.com/cc.ready.state": "false"}
SNP = {"nvidia.com/cc.ready.state": "true", "amd.feature.node.kubernetes.io/snp": "true"}
TDX = {"nvidia.com/cc.ready.state": "true", "intel.feature.node.kubernetes.io/tdx": "true"}

# (shim, supportedArches, runtimeClass.nodeSelector, first tag, last tag or None) in order;
# `cloud-hypervisor` became `clh-runtime-rs` in KD@3.30.0, the *-runtime-rs GPU shims came in
# KD@3.31.0, the azure shims in KD@3.32.0, the nvidia-cpu shims in KD@4.0.0,
# openvmm-azure-runtime-rs in KD@4.1.0 (where qemu-runtime-rs also gained ppc64le).
SHIMS: tuple[tuple[str, tuple[str, ...], dict[str, str], str, str | None], ...] = (
    ("clh", (AMD,), {}, "3.29.0", None),
    ("cloud-hypervisor", (AMD,), {}, "3.29.0", "3.29.0"),
    ("clh-azure", (AMD,), {}, "3.32.0", None),
    ("clh-runtime-rs", (AMD,), {}, "3.30.0", None),
    ("clh-azure-runtime-rs", (AMD,), {}, "3.32.0", None),
    ("dragonball", (AMD,), {}, "3.29.0", None),
    ("fc", (AMD,), {}, "3.29.0", None),
    ("qemu", (AMD, ARM, S390, PPC), {}, "3.29.0", None),
    ("qemu-runtime-rs", (AMD, ARM, S390), {}, "3.29.0", "4.0.0"),
    ("qemu-runtime-rs", (AMD, ARM, S390, PPC), {}, "4.1.0", None),
    ("qemu-nvidia-cpu", (AMD, ARM), {}, "4.0.0", None),
    ("qemu-nvidia-cpu-runtime-rs", (AMD, ARM), {}, "4.0.0", None),
    ("qemu-nvidia-gpu", (AMD,), CC_FALSE, "3.29.0", None),
    ("qemu-nvidia-gpu-runtime-rs", (AMD, ARM), CC_FALSE, "3.31.0", None),
    ("qemu-nvidia-gpu-snp", (AMD,), SNP, "3.29.0", None),
    ("qemu-nvidia-gpu-snp-runtime-rs", (AMD,), SNP, "3.31.0", None),
    ("qemu-nvidia-gpu-tdx", (AMD,), TDX, "3.29.0", None),
    ("qemu-nvidia-gpu-tdx-runtime-rs", (AMD,), TDX, "3.31.0", None),
    ("qemu-snp", (AMD,), {}, "3.29.0", None),
    ("qemu-snp-runtime-rs", (AMD,), {}, "3.29.0", None),
    ("qemu-tdx", (AMD,), {}, "3.29.0", None),
    ("qemu-tdx-runtime-rs", (AMD,), {}, "3.29.0", None),
    ("qemu-se", (S390,), {}, "3.29.0", None),
    ("qemu-se-runtime-rs", (S390,), {}, "3.29.0", None),
    ("qemu-coco-dev", (AMD, S390), {}, "3.29.0", None),
    ("qemu-coco-dev-runtime-rs", (AMD, ARM, S390), {}, "3.29.0", None),
    ("remote", (AMD, PPC, S390), {}, "3.29.0", None),
    ("openvmm-azure-runtime-rs", (AMD,), {}, "4.1.0", None),
)


def kata_deploy_shims(version: str) -> dict[str, Any]:
    shims: dict[str, Any] = {"disableAll": False}
    for name, arches, selector, first, last in SHIMS:
        if _v(first) <= _v(version) <= _v(last):
            shim: dict[str, Any] = {"enabled": False if name == "remote" else None,
                                    "supportedArches": list(arches)}
            if selector:
                shim["runtimeClass"] = {"nodeSelector": dict(selector)}
            shims[name] = shim
    return shims


def kata_deploy_values(version: str) -> dict[str, Any]:
    """The keys that changed from the base values (KD@3.29.0) up to `version`."""
    v = _v(version)
    out: dict[str, Any] = {"shims": kata_deploy_shims(version)}
    if v >= (3, 31):  # KD@3.31.0: priorityClassName, resources, health probes on :8090
        out["priorityClassName"] = "system-node-critical"
        out["resources"] = {"requests": {"cpu": "25m", "memory": "16Mi"}}
        probe = {"enabled": True, "periodSeconds": 10, "failureThreshold": 3, "timeoutSeconds": 3}
        out["health"] = {"port": 8090,
                         "startupProbe": {**probe, "initialDelaySeconds": 1,
                                          "failureThreshold": 60},
                         "livenessProbe": {**probe, "periodSeconds": 30},
                         "readinessProbe": dict(probe)}
    if v >= (3, 32):  # KD@3.32.0: deploymentMode and job.*, monitor.*, logLevel, userDropIn
        out["deploymentMode"] = "daemonset"
        out["logLevel"] = ""
        out["containerd"] = {"userDropIn": ""}
        out["snapshotter"] = {"setup": ["nydus"], "erofsMergeMode": ""}
        out["job"] = {
            "dispatcherImage": {"reference": "quay.io/kata-containers/kata-deploy-job-dispatcher",
                                "tag": ""},
            "parallelism": 100, "nodes": [], "nodeSelector": {},
            "nodeSelectorExpressions": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
                {"key": "node-role.kubernetes.io/master", "operator": "DoesNotExist"}],
            "cleanup": {"nodes": [], "nodeSelector": {}, "nodeSelectorExpressions": [
                {"key": "katacontainers.io/kata-runtime", "operator": "Exists"}]},
            "ttlSecondsAfterFinished": 600, "backoffLimit": 3}
        out["monitor"] = {
            "enabled": False,
            "image": {"reference": "quay.io/kata-containers/kata-monitor", "tag": ""},
            "listenAddress": "0.0.0.0:8090",
            "runtimeEndpoint": "unix:///run/containerd/containerd.sock", "logLevel": "info"}
    if v >= (4, 0):  # KD@4.0.0: startupTaints, podLabels/Annotations, affinity, runtime-rs default
        out.update(startupTaints=[], podLabels={}, podAnnotations={}, affinity={})
        out["containerd"] = {"userDropIn": "", "runtimeSocket": ""}
        out["snapshotter"].update(erofsSnapshotterMode="", erofsDmverity=False)
        out["monitor"].update(runtimeEndpoint="", logLevel="")  # derived from the rest
        out["defaultShim"] = {AMD: "qemu-runtime-rs", ARM: "qemu-runtime-rs",
                              S390: "qemu-runtime-rs", PPC: "qemu"}
    if v >= (4, 1):  # KD@4.1.0: devkit, nodeFeatureRules, job.* reshaped
        out["devkit"] = False
        out["nodeFeatureRules"] = {"create": "auto"}
        out["defaultShim"][PPC] = "qemu-runtime-rs"
        job = out["job"]
        del job["nodeSelector"], job["nodeSelectorExpressions"]
        job.update(dispatcherNodeSelector={}, dispatcherTolerations=[], waitForNodesSeconds=120,
                   nodeSettleSeconds=15, waitNodeReadySeconds=300, activeDeadlineSeconds=3600)
        job["cleanup"] = {"nodes": [], "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "katacontainers.io/kata-runtime",
                                       "operator": "Exists"}]}]}}}
    return out


# --- GPU Operator ---------------------------------------------------------------------------

# GO@<tag>: each component's `version` in values.yaml (the driver manager's - vfioManager's
# image, its init container and the driver's manager - is vfioManager's), and NFD's image tag.
_V26_3_0 = {"driver": "580.126.20", "toolkit": "v1.19.0", "devicePlugin": "v0.19.0",
            "dcgm": "4.5.2-1-ubuntu22.04", "dcgmExporter": "4.5.1-4.8.0-distroless",
            "gfd": "v0.19.0", "migManager": "v0.14.0", "gds": "2.27.3", "gdrcopy": "v2.5.1",
            "vgpuDeviceManager": "v0.4.2", "vfioManager": "v0.10.0",
            "sandboxDevicePlugin": "v1.5.0", "kataSandboxDevicePlugin": "v0.0.2",
            "ccManager": "v0.3.0"}
_V26_3_1 = {**_V26_3_0, "gdrcopy": "v2.5.2", "kataSandboxDevicePlugin": "v0.0.3",
            "ccManager": "v0.4.0"}
_V26_3_2 = {**_V26_3_1, "toolkit": "v1.19.1", "devicePlugin": "v0.19.2", "gfd": "v0.19.2",
            "dcgmExporter": "4.5.3-4.8.2-distroless", "migManager": "v0.14.2",
            "vfioManager": "v0.11.0"}
IMAGE_VERSIONS = {
    "v26.3.0": _V26_3_0,
    "v26.3.1": _V26_3_1,
    "v26.3.2": _V26_3_2,
    "v26.3.3": {**_V26_3_2, "devicePlugin": "v0.19.3", "gfd": "v0.19.3"},
    "v26.7.0": {"driver": "595.91.07", "toolkit": "v1.20.0", "devicePlugin": "v0.20.0",
                "dcgm": "4.6.0-1-ubuntu24.04", "dcgmExporter": "4.6.0-4.8.3-distroless",
                "gfd": "v0.20.0", "migManager": "v0.15.0", "gds": "2.29.4", "gdrcopy": "v2.6",
                "vgpuDeviceManager": "v0.5.0", "vfioManager": "v0.12.0",
                "sandboxDevicePlugin": "v1.6.0", "kataSandboxDevicePlugin": "v0.0.5",
                "ccManager": "v0.4.3"},
}
NFD_TAG = {"v26.7.0": "v0.19.0"}  # v0.18.3 before


def gpu_operator_values(version: str) -> dict[str, Any]:
    images = IMAGE_VERSIONS[version]
    out: dict[str, Any] = {section: {"version": v} for section, v in images.items()}
    manager = {"version": images["vfioManager"]}
    out["vfioManager"]["driverManager"] = manager
    out["driver"]["manager"] = dict(manager)
    out["node-feature-discovery"] = {"image": {"tag": NFD_TAG.get(version, "v0.18.3")}}
    if version == "v26.3.0":  # GO@v26.3.0 still listed the CC-capable device IDs
        out["ccManager"]["env"] = [{"name": "CC_CAPABLE_DEVICE_IDS",
                                    "value": "0x2339,0x2331,0x2330,0x2324,0x2322,0x233d"}]
    else:  # GO@v26.3.1 adds hostNetwork: false to each operand
        for section in ("validator", "driver", "toolkit", "devicePlugin", "vfioManager",
                        "kataManager", "sandboxDevicePlugin", "kataSandboxDevicePlugin",
                        "ccManager"):
            out.setdefault(section, {})["hostNetwork"] = False
    if _v(version) >= (26, 7):  # GO@v26.7.0: the ClusterPolicy can be left out; DRA stack
        out["clusterPolicy"] = {"deployCR": True}
        out["gpuCluster"] = {"deployCR": False}
        out["operator"] = {"nodeSelector": {"kubernetes.io/os": "linux"}, "env": []}
    return out


# --- writing them ---------------------------------------------------------------------------


def _merge(base: dict[str, Any], extra: dict[str, Any], replace: tuple[str, ...]) -> dict:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in replace:
            out[k] = _merge(out[k], v, ())
        else:
            out[k] = copy.deepcopy(v)
    return out


def chart_values(chart: str, version: str) -> dict[str, Any]:
    base = yaml.safe_load((CHARTS_DIR / chart / "values.yaml").read_text())
    if chart == "kata-deploy":
        return _merge(base, kata_deploy_values(version), replace=("shims",))
    return _merge(base, gpu_operator_values(version), replace=())


def write_chart(chart: str, version: str, dest: Path) -> Path:
    """A copy of the stand-in `chart` at `version` under `dest` (replaced if present)."""
    out = dest / chart / version
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(CHARTS_DIR / chart, out)
    meta = yaml.safe_load((out / "Chart.yaml").read_text())
    meta["version"] = version
    meta["appVersion"] = version
    meta["description"] = f"Lab stand-in for {chart} {version} (tests/lab/chartversions.py)."
    (out / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (out / "values.yaml").write_text(
        f"# Lab stand-in values for {chart} {version}: the real chart's keys and defaults at that "
        "tag.\n" + yaml.safe_dump(chart_values(chart, version), sort_keys=False))
    return out


def write_all(dest: Path) -> dict[str, dict[str, str]]:
    """Every supported version of both charts under `dest`: {chart: {version: path}}."""
    return {chart: {v: str(write_chart(chart, v, dest)) for v in versions}
            for chart, versions in VERSIONS.items()}
