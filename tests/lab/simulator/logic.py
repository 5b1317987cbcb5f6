"""What kata-deploy, the GPU Operator, its operands and the Kata runtime would do.

Pure functions: (values, node labels, host state, time) -> labels, resources, pod outcomes,
log lines. No I/O here; `runner` reads the cluster and the host trees and writes the results.
The behaviour follows docs/domain.md sections 2, 3, 4 and 6; each symptom a real cluster shows
for a wrong value or an unprepared host is produced here, with the message users report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from installer.answers.versions import parse

from .hoststate import HostState, PciDevice

# --- label keys -------------------------------------------------------------------------

NFD_NVIDIA = "feature.node.kubernetes.io/pci-10de.present"
GPU_PRESENT = "nvidia.com/gpu.present"
WORKLOAD_CONFIG = "nvidia.com/gpu.workload.config"
DEPLOY = "nvidia.com/gpu.deploy."
DEPLOY_OPERANDS = DEPLOY + "operands"
DEPLOY_DRIVER = DEPLOY + "driver"
CC_MODE = "nvidia.com/cc.mode"
CC_MODE_STATE = "nvidia.com/cc.mode.state"
CC_READY_STATE = "nvidia.com/cc.ready.state"
KATA_RUNTIME = "katacontainers.io/kata-runtime"
KATA_INSTANCE = "kata-deploy.katacontainers.io/default"  # 4.1.0: the install's own marker

VALID_WORKLOADS = ("container", "vm-passthrough", "vm-vgpu")

CONTAINER_COMPONENTS = (
    "driver",
    "gpu-feature-discovery",
    "container-toolkit",
    "device-plugin",
    "dcgm",
    "dcgm-exporter",
    "node-status-exporter",
    "operator-validator",
    "mig-manager",
)
VGPU_COMPONENTS = (
    "sandbox-device-plugin",
    "sandbox-validator",
    "vgpu-manager",
    "vgpu-device-manager",
)
ALL_COMPONENTS = tuple(
    dict.fromkeys(
        (
            *CONTAINER_COMPONENTS,
            "sandbox-device-plugin",
            "kata-sandbox-device-plugin",
            "sandbox-validator",
            "vfio-manager",
            "kata-manager",
            "cc-manager",
            *VGPU_COMPONENTS,
            "client",
        )
    )
)


def _truthy(v: object, default: bool) -> bool:
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("true", "1", "yes", "on")


def _enabled(spec: Mapping, key: str, default: bool) -> bool:
    section = spec.get(key) or {}
    return _truthy(section.get("enabled") if isinstance(section, Mapping) else None, default)


def _env(section: object) -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(section, Mapping):
        for item in section.get("env") or []:
            if isinstance(item, Mapping) and "name" in item:
                value = item.get("value")
                out[str(item["name"])] = "" if value is None else str(value)
    return out


# --- the ClusterPolicy, as the operator reads it ---------------------------------------------


@dataclass(frozen=True)
class PolicyConfig:
    sandbox_enabled: bool = False
    mode: str = "kubevirt"
    default_workload: str = "container"
    kata_device_plugin: bool = True
    kata_device_plugin_env: tuple[tuple[str, str], ...] = ()
    sandbox_device_plugin: bool = True
    vfio_manager: bool = True
    cc_manager: bool = True
    cc_default_mode: str = "on"
    kata_manager: bool = False
    driver: bool = True
    toolkit: bool = True
    device_plugin: bool = True
    # The operator's own version, from its image tag: behaviours differ between v26.3.x and
    # v26.7.0 (see `client_label`, `kata_manager_deployed`, `prestop_unbinds`).
    version: tuple[int, int, int] = (26, 3, 1)

    @classmethod
    def from_spec(cls, spec: Mapping | None, operator_image: str = "") -> PolicyConfig:
        spec = spec or {}
        sw = spec.get("sandboxWorkloads") or {}
        cc = spec.get("ccManager") or {}
        return cls(
            sandbox_enabled=_truthy(sw.get("enabled"), False),
            mode=str(sw.get("mode") or "kubevirt"),
            default_workload=str(sw.get("defaultWorkload") or "container"),
            kata_device_plugin=_enabled(spec, "kataSandboxDevicePlugin", True),
            kata_device_plugin_env=tuple(sorted(_env(spec.get("kataSandboxDevicePlugin")).items())),
            sandbox_device_plugin=_enabled(spec, "sandboxDevicePlugin", True),
            vfio_manager=_enabled(spec, "vfioManager", True),
            cc_manager=_enabled(spec, "ccManager", True),
            cc_default_mode=str(cc.get("defaultMode") or "on") if isinstance(cc, Mapping) else "on",
            kata_manager=_enabled(spec, "kataManager", False),
            driver=_enabled(spec, "driver", True),
            toolkit=_enabled(spec, "toolkit", True),
            device_plugin=_enabled(spec, "devicePlugin", True),
            version=image_version(operator_image) or (26, 3, 1),
        )

    @property
    def kata(self) -> bool:
        return self.sandbox_enabled and self.mode == "kata"

    @property
    def env(self) -> dict[str, str]:
        return dict(self.kata_device_plugin_env)

    @property
    def client_label(self) -> bool:
        """v26.7.0 adds nvidia.com/gpu.deploy.client=true to every workload's label set
        (controllers/state_manager.go `gpuStateLabels`, v26.7.0)."""
        return self.version >= (26, 7, 0)

    @property
    def kata_manager_deployed(self) -> bool:
        """v26.7.0 never deploys kata-manager, whatever kataManager.enabled says
        (controllers/state_manager.go `isStateEnabled`, v26.7.0)."""
        return self.kata_manager and self.version < (26, 7, 0)


def vfio_manager_prestop(cfg: PolicyConfig) -> tuple[str, ...]:
    """The vfio-manager's preStop command (assets/state-vfio-manager/0500_daemonset.yaml):
    v26.3.0 - v26.3.3 give `vfio-manage unbind --all` as ONE exec string, v26.7.0 runs it
    through `/bin/sh -c`."""
    if cfg.version >= (26, 7, 0):
        return ("/bin/sh", "-c", "vfio-manage unbind --all")
    return ("vfio-manage unbind --all",)


def prestop_command(pod_spec: Mapping) -> tuple[str, ...]:
    for c in pod_spec.get("containers") or ():
        cmd = (((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command")
        if cmd:
            return tuple(str(x) for x in cmd)
    return ()


def prestop_unbinds(command: tuple[str, ...]) -> bool:
    """Does this preStop exec unbind the GPUs? The kubelet execs argv[0] as a file: a first
    element holding spaces names no executable, so the hook fails and nothing is unbound."""
    return bool(command) and " " not in command[0] and "unbind" in " ".join(command)


def image_version(image: str) -> tuple[int, int, int] | None:
    """The version in an image's tag (`nvcr.io/nvidia/gpu-operator:v26.7.0` -> (26, 7, 0))."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
    found = parse(tag)
    return (found.major, found.minor, found.patch) if found else None


# ClusterPolicy section each operand's image comes from (api/nvidia/v1/clusterpolicy_types.go:
# repository/image/version joined as repository/image:version).
IMAGE_SECTIONS = {
    "nvidia-vfio-manager": "vfioManager",
    "nvidia-cc-manager": "ccManager",
    "nvidia-kata-sandbox-device-plugin-daemonset": "kataSandboxDevicePlugin",
    "nvidia-sandbox-validator": "validator",
    "nvidia-sandbox-device-plugin-daemonset": "sandboxDevicePlugin",
    "nvidia-driver-daemonset": "driver",
    "nvidia-container-toolkit-daemonset": "toolkit",
    "nvidia-device-plugin-daemonset": "devicePlugin",
    "nvidia-operator-validator": "validator",
}


def spec_image(section: object, fallback: str) -> str:
    if not isinstance(section, Mapping) or not section.get("repository"):
        return fallback
    version = str(section.get("version") or "")
    image = f"{section['repository']}/{section.get('image', '')}"
    return f"{image}@{version}" if version.startswith("sha256:") else f"{image}:{version}"


def operand_images(name: str, spec: Mapping | None, fallback: str) -> tuple[str, str]:
    """(main image, init image) of an operand, as the operator fills them in from its
    ClusterPolicy: vfio-manager's init container is the driver manager, the others' init
    containers run the validator image (assets/state-*/0500_daemonset.yaml)."""
    spec = spec or {}
    main = spec_image(spec.get(IMAGE_SECTIONS.get(name, "")), fallback)
    if name == "nvidia-vfio-manager":
        init = spec_image((spec.get("vfioManager") or {}).get("driverManager"),
                          DRIVER_MANAGER_IMAGE)
    else:
        init = spec_image(spec.get("validator"), OPERANDS["nvidia-sandbox-validator"].image)
    return main, init


# --- operands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operand:
    name: str  # DaemonSet name
    component: str  # nvidia.com/gpu.deploy.<component>
    pod_labels: tuple[tuple[str, str], ...]
    container: str
    image: str


# The init containers each operand's pod runs before its main container, as the operator's
# assets declare them (identical in v26.3.0 - v26.7.0): the operands fail here first.
INIT_CONTAINERS = {
    # assets/state-vfio-manager/0500_daemonset.yaml: `driver-manager uninstall_driver`
    "nvidia-vfio-manager": ("k8s-driver-manager",),
    # assets/state-kata-device-plugin/0500_daemonset.yaml: waits for vfio-pci-ready
    "nvidia-kata-sandbox-device-plugin-daemonset": ("vfio-pci-validation",),
    # assets/state-sandbox-validation/0500_daemonset.yaml (cc-manager-validation is removed
    # when ccManager is disabled: TransformValidatorComponent, controllers/object_controls.go)
    "nvidia-sandbox-validator": ("cc-manager-validation", "vfio-pci-validation",
                                 "vgpu-manager-validation", "vgpu-devices-validation"),
}


DRIVER_MANAGER_IMAGE = "nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.10.0"


def _op(name: str, component: str, label: tuple[str, str], image: str) -> Operand:
    return Operand(name, component, (label,), name, image)


def init_containers(operand: str, cfg: PolicyConfig) -> tuple[str, ...]:
    names = INIT_CONTAINERS.get(operand, ())
    return tuple(n for n in names if cfg.cc_manager or n != "cc-manager-validation")


OPERANDS: dict[str, Operand] = {
    o.name: o
    for o in (
        _op(
            "nvidia-vfio-manager",
            "vfio-manager",
            ("name", "nvidia-vfio-manager"),
            DRIVER_MANAGER_IMAGE,
        ),
        _op(
            "nvidia-cc-manager",
            "cc-manager",
            ("name", "nvidia-cc-manager"),
            "nvcr.io/nvidia/cloud-native/k8s-cc-manager:v0.4.0",
        ),
        _op(
            "nvidia-kata-sandbox-device-plugin-daemonset",
            "kata-sandbox-device-plugin",
            ("app", "nvidia-kata-sandbox-device-plugin-daemonset"),
            "nvcr.io/nvidia/cloud-native/nvidia-sandbox-device-plugin:v0.0.3",
        ),
        _op(
            "nvidia-sandbox-validator",
            "sandbox-validator",
            ("app", "nvidia-sandbox-validator"),
            "nvcr.io/nvidia/gpu-operator:v26.3.1",
        ),
        _op(
            "nvidia-sandbox-device-plugin-daemonset",
            "sandbox-device-plugin",
            ("app", "nvidia-sandbox-device-plugin-daemonset"),
            "nvcr.io/nvidia/kubevirt-gpu-device-plugin:v1.5.0",
        ),
        _op(
            "nvidia-kata-manager",
            "kata-manager",
            ("name", "nvidia-kata-manager"),
            "nvcr.io/nvidia/cloud-native/k8s-kata-manager:v0.2.3",
        ),
        _op(
            "nvidia-driver-daemonset",
            "driver",
            ("app", "nvidia-driver-daemonset"),
            "nvcr.io/nvidia/driver:580.126.20",
        ),
        _op(
            "nvidia-container-toolkit-daemonset",
            "container-toolkit",
            ("app", "nvidia-container-toolkit-daemonset"),
            "nvcr.io/nvidia/k8s/container-toolkit:v1.19.0",
        ),
        _op(
            "nvidia-device-plugin-daemonset",
            "device-plugin",
            ("app", "nvidia-device-plugin-daemonset"),
            "nvcr.io/nvidia/k8s-device-plugin:v0.19.0",
        ),
        _op(
            "nvidia-operator-validator",
            "operator-validator",
            ("app", "nvidia-operator-validator"),
            "nvcr.io/nvidia/gpu-operator:v26.3.1",
        ),
    )
}


def enabled_operands(cfg: PolicyConfig) -> list[str]:
    """DaemonSets the operator creates for this ClusterPolicy (names, in a stable order)."""
    out = []
    if cfg.driver:
        out.append("nvidia-driver-daemonset")
    if cfg.toolkit:
        out.append("nvidia-container-toolkit-daemonset")
    if cfg.device_plugin:
        out.append("nvidia-device-plugin-daemonset")
    out.append("nvidia-operator-validator")
    if cfg.sandbox_enabled:
        if cfg.vfio_manager:
            out.append("nvidia-vfio-manager")
        if cfg.mode == "kata":
            if cfg.kata_device_plugin:
                out.append("nvidia-kata-sandbox-device-plugin-daemonset")
            if cfg.kata_manager_deployed:
                out.append("nvidia-kata-manager")
        elif cfg.sandbox_device_plugin:
            out.append("nvidia-sandbox-device-plugin-daemonset")
        out.append("nvidia-sandbox-validator")
        if cfg.cc_manager:
            out.append("nvidia-cc-manager")
    return out


def workload_components(workload: str, cfg: PolicyConfig) -> tuple[str, ...]:
    """The gpu.deploy.* components labelled "true" for a workload (controllers/state_manager.go
    `gpuStateLabels` and `getEffectiveStateLabels`, v26.3.0 - v26.7.0): a vm-passthrough node
    gets kata-manager's label even though nothing deploys it, and kata mode swaps the
    KubeVirt device plugin's label for the Kata one."""
    if workload == "vm-passthrough":
        plugin = "kata-sandbox-device-plugin" if cfg.mode == "kata" else "sandbox-device-plugin"
        comps: tuple[str, ...] = ("vfio-manager", plugin, "sandbox-validator", "kata-manager",
                                  "cc-manager")
    elif workload == "vm-vgpu":
        comps = (*VGPU_COMPONENTS, "cc-manager")
    else:
        comps = CONTAINER_COMPONENTS
    return (*comps, "client") if cfg.client_label else comps


def node_workload(labels: Mapping[str, str], cfg: PolicyConfig) -> tuple[str, str | None]:
    """(workload, error) as `getWorkloadConfig` resolves it (controllers/state_manager.go,
    v26.3.0 - v26.7.0): sandbox off -> container; a valid label -> its value; an invalid or
    missing label -> the ClusterPolicy's defaultWorkload, with the error it logs."""
    if not cfg.sandbox_enabled:
        return "container", None
    value = labels.get(WORKLOAD_CONFIG)
    if value is None:
        return cfg.default_workload, "no GPU workload config found"
    if value not in VALID_WORKLOADS:
        return cfg.default_workload, f"invalid GPU workload config: {value}"
    return value, None


def is_gpu_node(labels: Mapping[str, str]) -> bool:
    return labels.get(NFD_NVIDIA) == "true"


def operator_node_labels(labels: Mapping[str, str], cfg: PolicyConfig) -> dict[str, str | None]:
    """Label changes the operator makes on one node: value to set, or None to remove. From
    the node's labels alone: the operator does not look at the host.

    controllers/state_manager.go `labelGPUNodes` (v26.3.x) and
    controllers/nodelabeling_controller.go (v26.7.0): state labels outside the workload's set
    are removed; missing ones are added "true" - an existing value is honoured (v26.3.x keeps
    any, v26.7.0 overwrites only an empty one); gpu.deploy.operands=false removes them all; a
    node that lost its GPUs gets gpu.present=false and no state labels."""
    keys = [DEPLOY + comp for comp in ALL_COMPONENTS]
    if not is_gpu_node(labels):
        # v26.3.x clears on the true -> false change; v26.7.0 on every pass without GPUs
        if labels.get(GPU_PRESENT) == "true" or (cfg.version >= (26, 7, 0)
                                                 and GPU_PRESENT in labels):
            return {GPU_PRESENT: "false", **{k: None for k in keys if k in labels}}
        return {}
    out: dict[str, str | None] = {GPU_PRESENT: "true"}
    if labels.get(DEPLOY_OPERANDS) == "false":
        return {**out, **{k: None for k in keys if k in labels}}
    workload, _ = node_workload(labels, cfg)
    wanted = {DEPLOY + comp for comp in workload_components(workload, cfg)}
    for key in keys:
        if key not in wanted:
            if key in labels:
                out[key] = None
        elif key not in labels or (labels[key] == "" and cfg.version >= (26, 7, 0)):
            out[key] = "true"
    # gpu.deploy.driver=pre-installed is not the operator's: the vfio-manager's init
    # container sets it (vfio_manager), and the operator removes it again here, as a state
    # label outside a vm-passthrough node's set.
    return out


def label_patch(current: Mapping[str, str], desired: Mapping[str, str | None]) -> dict:
    """Only the changes: {} when the node already carries the desired labels."""
    return {
        k: v
        for k, v in desired.items()
        if current.get(k) != v and not (v is None and k not in current)
    }


# --- what each operand does on its node ------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How an operand or workload pod behaves on its node."""

    healthy: bool
    logs: tuple[str, ...] = ()
    reason: str = ""  # waiting reason when not healthy (CrashLoopBackOff, ContainerCreating...)
    message: str = ""
    bind_vfio: tuple[str, ...] = ()  # BDFs the vfio manager binds to vfio-pci
    labels: tuple[tuple[str, str], ...] = ()  # node labels written by the operand
    resources: tuple[tuple[str, int], ...] = ()  # extended resources it advertises
    files: tuple[tuple[str, str], ...] = ()  # host files it writes (path, content)
    # The init container the pod is held in ("" when its main container runs), and whether
    # it is looping on a wait (Init:N/M) rather than failing (Init:CrashLoopBackOff).
    init: str = ""
    init_waiting: bool = False


GPU_MODELS = {
    "0x2331": "GH100_H100_PCIE",
    "0x2330": "GH100_H100_SXM5_80GB",
    "0x2321": "GH100_H100L_94GB",
    "0x2335": "GH100_H200_SXM_141GB",
    "0x2901": "GB100_B200",
    "0x20b5": "GA100_A100_PCIE_80GB",
    "0x20f1": "GA100_A100_PCIE_40GB",
    "0x20b2": "GA100_A100_SXM4_80GB",
    "0x26b5": "AD102GL_L40",
    "0x26b9": "AD102GL_L40S",
    "0x27b8": "AD104GL_L4",
    "0x1eb8": "TU104GL_TESLA_T4",
    "0x2236": "GA102GL_A10",
}
CC_CAPABLE_PREFIXES = ("0x23", "0x29")  # Hopper (GH100/GH200) and Blackwell (GB100/GB200)


def gpu_model(dev: PciDevice) -> str:
    return GPU_MODELS.get(dev.device, f"NVIDIA_{dev.device.removeprefix('0x').upper()}")


def cc_capable(dev: PciDevice) -> bool:
    return dev.device.startswith(CC_CAPABLE_PREFIXES)


def vfio_bound(host: HostState) -> tuple[PciDevice, ...]:
    return tuple(g for g in host.gpus if g.driver in ("vfio-pci", "nvgrace_gpu_vfio_pci"))


def vfio_manager(host: HostState, node: str = "") -> Outcome:
    """The vfio-manager pod: its init container `k8s-driver-manager` runs
    `driver-manager uninstall_driver` (k8s-driver-manager cmd/driver-manager/main.go,
    v0.10.0 - v0.12.0): a host driver that answers `nvidia-smi` makes it label the node
    gpu.deploy.driver=pre-installed and fail, so the pod crash-loops in that init container.
    Then `vfio-manage bind --all` (cmd/vfio-manage/bind.go): a device that will not bind is
    only a warning, so the container stays Running with the error in its log."""
    if host.host_driver_loaded and host.gpus:
        msg = "driver is pre-installed on host"
        logs = ("NVIDIA GPU driver is already pre-installed on the node, disabling the "
                "containerized driver",
                f"Labeling node {node} with {DEPLOY_DRIVER}=pre-installed", msg)
        return Outcome(False, logs, "CrashLoopBackOff", msg, init="k8s-driver-manager",
                       labels=((DEPLOY_DRIVER, "pre-installed"),))
    logs = []
    binds: list[str] = []
    for gpu in host.gpus:
        logs.append(f"Binding device {gpu.bdf}")
        if gpu.driver in ("vfio-pci", "nvgrace_gpu_vfio_pci"):
            logs.append(f"Binding device {gpu.bdf} to driver: {gpu.driver}")
            continue
        if not host.iommu_enabled or gpu.iommu_group is None:
            logs.append(f"Failed to bind device {gpu.bdf}: device has no IOMMU group "
                        "(/sys/kernel/iommu_groups is empty)")
            continue
        if not host.group_viable(gpu):
            others = ", ".join(
                m for m in host.iommu_groups.get(gpu.iommu_group, ()) if m[:-2] != gpu.bdf[:-2]
            )
            logs.append(f"Failed to bind device {gpu.bdf}: vfio: group {gpu.iommu_group} is "
                        f"not viable (shared with {others})")
            continue
        logs.append(f"Binding device {gpu.bdf} to driver: vfio-pci")
        binds.append(gpu.bdf)
    return Outcome(True, tuple(logs), bind_vfio=tuple(binds))


def gpu_classes(cfg: PolicyConfig, gpus: tuple[PciDevice, ...]) -> dict[str, list[PciDevice]]:
    """The classes the kata sandbox device plugin sorts GPUs into: `pgpu` (P_GPU_ALIAS unset),
    the alias, or with P_GPU_ALIAS="" one per model (cmd/main.go, createDevicePlugins in
    pkg/device_plugin/device_plugin.go@v0.0.5)."""
    env = cfg.env
    out: dict[str, list[PciDevice]] = {}
    for gpu in gpus:
        if "P_GPU_ALIAS" not in env:
            name = "pgpu"
        elif env["P_GPU_ALIAS"] == "":
            name = gpu_model(gpu)
        else:
            name = env["P_GPU_ALIAS"]
        out.setdefault(name, []).append(gpu)
    return out


def resource_names(
    host: HostState, cfg: PolicyConfig, gpus: tuple[PciDevice, ...]
) -> dict[str, int]:
    """nvidia.com/pgpu (or the alias / per-model names) for the kata sandbox device plugin."""
    return {f"nvidia.com/{c}": len(members) for c, members in gpu_classes(cfg, gpus).items()}


def cdi_spec(cls: str, gpus: list[PciDevice]) -> str:
    """The CDI spec the kata sandbox device plugin writes for one class: cdiVersion 0.5.0,
    kind nvidia.com/<class>, one device per IOMMU group named by the group, with the legacy
    VFIO device nodes (generateCDISpecForClass, pkg/device_plugin/cdi.go@v0.0.5; a host
    without /dev/iommu, as the lab's hosts are)."""
    lines = ['cdiVersion: "0.5.0"', f"kind: nvidia.com/{cls}", "devices:"]
    groups = sorted({g.iommu_group or "" for g in gpus}, key=lambda g: (len(g), g))
    for group in groups:
        lines += [
            f'- name: "{group}"',
            "  containerEdits:",
            "    deviceNodes:",
            "    - path: /dev/vfio/vfio",
            f"    - path: /dev/vfio/{group}",
        ]
    return "\n".join(lines) + "\n"


def kata_device_plugin(host: HostState, cfg: PolicyConfig) -> Outcome:
    """Its init container `vfio-pci-validation` loops until the sandbox validator wrote
    vfio-pci-ready (assets/state-kata-device-plugin/0500_daemonset.yaml, v26.3.0 - v26.7.0)."""
    if not sandbox_validator(host, cfg).healthy:
        return Outcome(False, ("waiting for vfio-pci driver ...",) * 3, "PodInitializing",
                       "waiting for vfio-pci driver ...", init="vfio-pci-validation",
                       init_waiting=True)
    gpus = vfio_bound(host)
    logs = [
        "Starting NVIDIA sandbox device plugin (kata)",
        f"Discovered {len(gpus)} GPU(s) bound to vfio-pci",
    ]
    if not gpus:
        return Outcome(True, (*logs, "No devices found. Waiting indefinitely."))
    classes = gpu_classes(cfg, gpus)
    files = []
    for cls, members in classes.items():
        # One spec per class, the CDI library's vendor-class name (cdi.go@v0.0.5).
        path = f"var/run/cdi/nvidia.com-{cls}.yaml"
        logs.append(f"Generated CDI spec: nvidia.com-{cls} with {len(members)} devices")
        files.append((path, cdi_spec(cls, members)))
    res = resource_names(host, cfg, gpus)
    for name, count in res.items():
        logs.append(f"Registered device plugin for '{name}' with Kubelet ({count} device(s))")
    return Outcome(True, tuple(logs), resources=tuple(res.items()), files=tuple(files))


def kubevirt_device_plugin(host: HostState) -> Outcome:
    gpus = vfio_bound(host)
    res: dict[str, int] = {}
    for gpu in gpus:
        res[f"nvidia.com/{gpu_model(gpu)}"] = res.get(f"nvidia.com/{gpu_model(gpu)}", 0) + 1
    logs = ["Starting KubeVirt GPU device plugin", f"Discovered {len(gpus)} passthrough GPU(s)"]
    logs += [
        f"Registered {name} with {n} device(s) (no CDI spec in this mode)"
        for name, n in res.items()
    ]
    return Outcome(True, tuple(logs), resources=tuple(res.items()))


def sandbox_validator(host: HostState, cfg: PolicyConfig) -> Outcome:
    """Init container `vfio-pci-validation` (cmd/nvidia-validator/main.go, v26.3.0 -
    v26.7.0): writes workload-type, checks every GPU once and exits 1 on the first not on
    vfio-pci (the kubelet restarts it); on success writes vfio-pci-ready. The main container
    only prints that all validations passed."""
    workload = ("run/nvidia/validations/workload-type", "vm-passthrough\n")
    for gpu in host.gpus:
        if gpu.driver not in ("vfio-pci", "nvgrace_gpu_vfio_pci"):
            msg = ("Error: error validating vfio-pci driver installation: device not bound to "
                   f"'vfio-pci'; device: {gpu.bdf} driver: '{gpu.driver or ''}'")
            return Outcome(False, ("GPU workload configuration: vm-passthrough", msg),
                           "CrashLoopBackOff", msg, files=(workload,),
                           init="vfio-pci-validation")
    files = (workload, ("run/nvidia/validations/vfio-pci-ready", ""))
    return Outcome(True, ("all validations are successful",), files=files)


def cc_manager(host: HostState, cfg: PolicyConfig, labels: Mapping[str, str]) -> Outcome:
    mode = labels.get(CC_MODE, cfg.cc_default_mode)
    logs = [
        f"Starting k8s-cc-manager, default CC mode '{cfg.cc_default_mode}'",
        f"Requested CC mode: {mode}",
    ]
    if mode == "on" and host.tee and host.gpus:
        incapable = [g.bdf for g in host.gpus if not cc_capable(g)]
        if incapable:
            msg = f"Some GPUs are not cc-capable: {', '.join(incapable)}"
            return Outcome(False, (*logs, msg), "CrashLoopBackOff", msg)
        logs.append("CC mode set to 'on' on all GPUs")
        return Outcome(True, tuple(logs), labels=((CC_MODE_STATE, "on"), (CC_READY_STATE, "true")))
    if mode == "on":
        logs.append(
            "Confidential computing is not enabled on this host (no TDX/SEV-SNP); leaving CC off"
        )
    logs.append("CC mode set to 'off'")
    return Outcome(True, tuple(logs), labels=((CC_MODE_STATE, "off"), (CC_READY_STATE, "false")))


def container_operand(name: str, host: HostState) -> Outcome:
    """The container stack on a GPU node: it needs an NVIDIA driver and GPUs not on vfio-pci."""
    on_vfio = vfio_bound(host)
    if name == "nvidia-driver-daemonset":
        if on_vfio:
            msg = f"Could not load NVIDIA driver: device {on_vfio[0].bdf} is bound to vfio-pci"
            return Outcome(
                False, ("Starting NVIDIA driver installation", msg), "CrashLoopBackOff", msg
            )
        return Outcome(
            True, ("Starting NVIDIA driver installation", "Done, now waiting for signal")
        )
    if name == "nvidia-container-toolkit-daemonset":
        return Outcome(
            True, ("Installing NVIDIA container toolkit", "Setting up runtime: containerd")
        )
    if not host.host_driver_loaded:
        msg = "Failed to initialize NVML: could not load NVML library"
        return Outcome(False, (msg,), "CrashLoopBackOff", msg)
    n = sum(1 for g in host.gpus if g.driver == "nvidia")
    if name == "nvidia-device-plugin-daemonset":
        return Outcome(
            True,
            ("Starting NVIDIA device plugin", f"Registered nvidia.com/gpu with {n} device(s)"),
            resources=(("nvidia.com/gpu", n),) if n else (),
        )
    return Outcome(True, ("all validations are successful",))


def operand_outcome(
    name: str, host: HostState, cfg: PolicyConfig, labels: Mapping[str, str]
) -> Outcome:
    if name == "nvidia-vfio-manager":
        return vfio_manager(host, labels.get("kubernetes.io/hostname", ""))
    if name == "nvidia-kata-sandbox-device-plugin-daemonset":
        return kata_device_plugin(host, cfg)
    if name == "nvidia-sandbox-device-plugin-daemonset":
        return kubevirt_device_plugin(host)
    if name == "nvidia-sandbox-validator":
        return sandbox_validator(host, cfg)
    if name == "nvidia-cc-manager":
        return cc_manager(host, cfg, labels)
    if name == "nvidia-kata-manager":
        return Outcome(True, ("kata-manager is deprecated; use kata-deploy",))
    return container_operand(name, host)


def operator_logs(cfg: PolicyConfig, node_errors: Mapping[str, str], state: str) -> tuple[str, ...]:
    lines = [
        f"Starting GPU Operator v{'.'.join(map(str, cfg.version))}",
        "Found ClusterPolicy cluster-policy",
        f"Sandbox workloads: enabled={str(cfg.sandbox_enabled).lower()} mode={cfg.mode} "
        f"defaultWorkload={cfg.default_workload}",
    ]
    if cfg.kata_manager:
        lines.append(
            "WARNING: kataManager is deprecated; do not enable it together with kata-deploy"
        )
    for node, err in sorted(node_errors.items()):
        lines.append(f'WARNING: failed to get GPU workload config for node; using default '
                     f'NodeName="{node}" Error="{err}" '
                     f'defaultGPUWorkloadConfig="{cfg.default_workload}"')
    lines.append(f"ClusterPolicy is {state}")
    return tuple(lines)


def cluster_policy_state(daemonsets: list[Mapping]) -> str:
    """ready when every operand DaemonSet has all its scheduled pods ready."""
    for ds in daemonsets:
        st = ds.get("status") or {}
        desired = st.get("desiredNumberScheduled", 0) or 0
        if (st.get("numberReady", 0) or 0) < desired or (
            st.get("updatedNumberScheduled") or 0
        ) < desired:
            return "notReady"
    return "ready"


# --- kata-deploy ------------------------------------------------------------------------------

KATA_INSTALL_SECONDS = 2.0


def kata_shims_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    return tuple((env.get("SHIMS_X86_64") or env.get("SHIMS") or "").split())


def kata_install_logs(node: str, shims: tuple[str, ...], default_shim: str,
                      version: tuple[int, int, int]) -> tuple[str, ...]:
    """The installer's log as each tag prints it (binary/src/config.rs `print_info`,
    binary/src/main.rs): from 3.31.0 it re-execs into a post-install waiter that serves the
    health probes; before, it waits for SIGTERM."""
    lines = [
        "Action:",
        "* install",
        "Environment variables passed to this script",
        f"* NODE_NAME: {node}",
        f"* SHIMS: {' '.join(shims)}",
        f"* DEFAULT_SHIM: {default_shim}",
        "copying kata artifacts onto host",
    ]
    lines += [f"Adding runtime kata-{s} to containerd configuration" for s in shims]
    lines += ["Restarting CRI runtime", f"Labelling node {node} with {KATA_RUNTIME}=true",
              "Kata Containers installation completed successfully"]
    if version >= (3, 31, 0):
        lines.append("Install completed, re-exec'ing into post-install waiter")
    else:
        lines.append("Install completed, daemonset mode: waiting for SIGTERM")
    return tuple(lines)


def kata_node_labels(version: tuple[int, int, int], done: bool,
                     current: Mapping[str, str]) -> dict[str, str]:
    """kata-deploy's node labels. Up to 4.0.0 only katacontainers.io/kata-runtime=true once
    installed. 4.1.0 first claims the node - kata-runtime and its own instance marker set to
    "false" where absent, so an uninstall finds a half-installed node - and sets both "true"
    when done (binary/src/main.rs `claim_node`, `install_stage_label`, 4.1.0)."""
    if version < (4, 1, 0):
        return {KATA_RUNTIME: "true"} if done else {}
    keys = (KATA_RUNTIME, KATA_INSTANCE)
    if done:
        return dict.fromkeys(keys, "true")
    return {k: "false" for k in keys if k not in current}


def kata_shim_config(shim: str) -> str:
    hypervisor = "qemu" if shim.startswith("qemu") else shim.split("-")[0]
    return f"# Kata Containers configuration for {shim} (lab stand-in)\n[hypervisor.{hypervisor}]\n"


# --- workload pods in a Kata RuntimeClass -----------------------------------------------------

VECTORADD_LOG = (
    "[Vector addition of 50000 elements]",
    "Copy input data from the host memory to the CUDA device",
    "CUDA kernel launch with 196 blocks of 256 threads",
    "Copy output data from the CUDA device to the host memory",
    "Test PASSED",
)
RUN_SECONDS = 2.0


def _minor(version: str) -> int | None:
    m = re.match(r"v?1\.(\d+)", version or "")
    return int(m.group(1)) if m else None


def pod_resources_get_enabled(kubelet_version: str, kubelet_config: str) -> bool:
    minor = _minor(kubelet_version)
    if minor is None or minor >= 34:
        return True
    return bool(re.search(r"^\s*KubeletPodResourcesGet:\s*true\s*$", kubelet_config, re.M))


def requested_device_resources(pod: Mapping) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for bucket in ("limits", "requests"):
            for k, v in (res.get(bucket) or {}).items():
                if k.startswith("nvidia.com/"):
                    try:
                        out[k] = max(out.get(k, 0), int(str(v)))
                    except ValueError:
                        out[k] = max(out.get(k, 0), 1)
    return out


@dataclass(frozen=True)
class PodPlan:
    """Where a Kata pod goes next: phase, the container's waiting reason, logs, an event."""

    phase: str  # Pending | Running | Succeeded
    reason: str = ""
    message: str = ""
    event_reason: str = ""
    logs: tuple[str, ...] = ()
    completes: bool = False


def kata_pod_plan(
    pod: Mapping,
    handler: str | None,
    host: HostState,
    kubelet_version: str,
    kata_installed: bool,
) -> PodPlan:
    """What containerd + the Kata shim do with a pod of a Kata RuntimeClass on this node."""
    rc = (pod.get("spec") or {}).get("runtimeClassName") or ""
    shim = (handler or rc).removeprefix("kata-")
    if not kata_installed or shim not in host.kata_shims:
        msg = (
            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox "
            f'runtime: no runtime for "{handler or rc}" is configured'
        )
        return PodPlan("Pending", "ContainerCreating", msg, "FailedCreatePodSandBox")
    devices = requested_device_resources(pod)
    if devices and not pod_resources_get_enabled(kubelet_version, host.kubelet_config):
        msg = "PodResources API Get method disabled"
        return PodPlan("Pending", "ContainerCreating", msg, "FailedCreatePodSandBox")
    for res in devices:
        kind = res.removeprefix("nvidia.com/")
        if res == "nvidia.com/gpu":
            continue
        if f"nvidia.com-{kind}.yaml" not in host.cdi_specs:
            msg = (
                "failed to create containerd task: failed to create shim task: "
                f"unresolvable CDI devices {res}=0"
            )
            return PodPlan("Pending", "CreateContainerError", msg, "Failed")
    image = " ".join(c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or [])
    if "vectoradd" in image:
        return PodPlan("Succeeded", logs=VECTORADD_LOG, completes=True)
    return PodPlan("Running", logs=("Kata sandbox started",))


# --- crash loops ------------------------------------------------------------------------------


def crashloop_restarts(elapsed: float) -> int:
    """Restarts a crash-looping container has had after `elapsed` seconds (kubelet back-off
    10s, 20s, 40s ... capped at 300s; each run itself takes ~1s)."""
    restarts, t, backoff = 0, 1.0, 10.0
    while t <= elapsed:
        restarts += 1
        t += backoff + 1.0
        backoff = min(backoff * 2, 300.0)
    return restarts


def crashloop_backoff(restarts: int) -> int:
    return int(min(10 * 2 ** max(restarts - 1, 0), 300))
