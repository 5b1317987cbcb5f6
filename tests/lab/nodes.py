"""The simulated nodes: which host each one is, and the Node objects that describe them.

A Node carries what a real kubelet and NFD would publish: NFD-style labels derived from the
node's host tree (PCI vendors of display/accelerator devices, CPU virtualization flag, OS and
kernel), kubelet and containerd versions, capacity and an InternalIP - the loopback address where
that host's sshd answers. KWOK plays the kubelet (conditions, leases); the kubelet endpoint is the
KWOK controller's port, reached at the node's InternalIP through the lab's forwarder.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KUBELET_VERSION = "v1.35.4"
CONTAINERD_VERSION = "containerd://2.1.4"

# Where fixture host trees are looked up, first match wins.
FIXTURE_DIRS = [
    *(Path(p) for p in os.environ.get("LAB_FIXTURES_DIR", "").split(os.pathsep) if p),
    REPO / "tests" / "fixtures" / "hosts",
]
PROFILE_FALLBACKS = {"cpu-only": ["cpu-only", "plain-vm"]}

# NFD's default PCI device class whitelist: display (03), accelerators (0b40), processing (12).
NFD_PCI_CLASSES = ("0x03", "0x0b40", "0x12")


def fixture_dir(profile: str) -> Path:
    for name in PROFILE_FALLBACKS.get(profile, [profile]):
        for base in FIXTURE_DIRS:
            if (base / name).is_dir():
                return base / name
    raise FileNotFoundError(
        f"no fixture host tree for profile {profile!r} in {[str(d) for d in FIXTURE_DIRS]}"
    )


@dataclass
class NodeSpec:
    name: str
    profile: str  # fixture tree name: gpu-vfio-ready, gpu-host-driver, cpu-only ...
    address: str  # InternalIP (a loopback address)
    ssh: bool = True  # a real sshd serves this host
    cpu: str = "64"
    memory: str = "512Gi"
    pods: str = "110"
    kubelet_version: str = KUBELET_VERSION
    labels: dict[str, str] = field(default_factory=dict)
    # (key, value, effect) as spec.taints has them, e.g. a tainted GPU pool
    taints: tuple[tuple[str, str, str], ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)


def address_prefix() -> str:
    """First three octets of the default nodes' addresses; two labs on one machine need
    different prefixes (LAB_ADDRESS_PREFIX=127.0.11), since each host's sshd owns address:22."""
    prefix = os.environ.get("LAB_ADDRESS_PREFIX", "127.0.10")
    if not prefix.startswith("127.") or prefix.count(".") != 2:
        raise ValueError(f"LAB_ADDRESS_PREFIX must look like 127.X.Y, not {prefix!r}")
    return prefix


def default_nodes() -> list[NodeSpec]:
    """Two Kata-ready GPU hosts, one GPU host as most clusters start, one CPU-only node."""
    p = address_prefix()
    return [
        NodeSpec("gpu-node-1", "gpu-vfio-ready", f"{p}.1"),
        NodeSpec("gpu-node-2", "gpu-vfio-ready", f"{p}.2"),
        NodeSpec("gpu-node-3", "gpu-host-driver", f"{p}.3"),
        NodeSpec("cpu-node-1", "cpu-only", f"{p}.4", cpu="32", memory="128Gi"),
    ]


GPU_POOL_TAINT = ("nvidia.com/gpu", "present", "NoSchedule")


def tainted_nodes() -> list[NodeSpec]:
    """The default nodes as many GPU pools run them: the Kata-ready GPU hosts tainted
    nvidia.com/gpu=present:NoSchedule (only what tolerates it lands there), the host-driver
    GPU node untainted for traditional containers, and the CPU node."""
    return [replace(n, taints=(GPU_POOL_TAINT,)) if n.profile == "gpu-vfio-ready" else n
            for n in default_nodes()]


def scale_nodes(count: int) -> list[NodeSpec]:
    """Extra nodes for performance work: 3 of 4 are Kata-ready GPU hosts, no sshd behind them."""
    out = []
    for i in range(count):
        profile = "cpu-only" if i % 4 == 3 else "gpu-vfio-ready"
        out.append(
            NodeSpec(
                f"scale-node-{i:04d}",
                profile,
                f"127.1.{i // 250}.{i % 250 + 1}",
                ssh=False,
                cpu="32" if profile == "cpu-only" else "64",
                memory="128Gi" if profile == "cpu-only" else "512Gi",
            )
        )
    return out


# --- facts read from the host tree ------------------------------------------------------


def _read(root: Path, rel: str) -> str:
    try:
        return (root / rel).read_text(errors="replace").strip()
    except OSError:
        return ""


def os_release(root: Path) -> dict[str, str]:
    out = {}
    for line in _read(root, "etc/os-release").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def kernel_version(root: Path) -> str:
    rel = _read(root, "proc/sys/kernel/osrelease")
    if rel:
        return rel
    m = re.search(r"Linux version (\S+)", _read(root, "proc/version"))
    return m.group(1) if m else "6.8.0-45-generic"


def nfd_labels(root: Path) -> dict[str, str]:
    labels = {}
    devdir = root / "sys/bus/pci/devices"
    if devdir.is_dir():
        for dev in devdir.iterdir():
            cls = _read(dev, "class").lower()
            vendor = _read(dev, "vendor").lower().removeprefix("0x")
            if vendor and cls.startswith(NFD_PCI_CLASSES):
                labels[f"feature.node.kubernetes.io/pci-{vendor}.present"] = "true"
    flags = _read(root, "proc/cpuinfo")
    if re.search(r"^flags\s*:.*\bvmx\b", flags, re.M):
        labels["feature.node.kubernetes.io/cpu-cpuid.VMX"] = "true"
    if re.search(r"^flags\s*:.*\bsvm\b", flags, re.M):
        labels["feature.node.kubernetes.io/cpu-cpuid.SVM"] = "true"
    rel = os_release(root)
    if rel.get("ID"):
        labels["feature.node.kubernetes.io/system-os_release.ID"] = rel["ID"]
    if rel.get("VERSION_ID"):
        labels["feature.node.kubernetes.io/system-os_release.VERSION_ID"] = rel["VERSION_ID"]
    kv = kernel_version(root)
    labels["feature.node.kubernetes.io/kernel-version.full"] = kv
    m = re.match(r"(\d+)\.(\d+)", kv)
    if m:
        labels["feature.node.kubernetes.io/kernel-version.major"] = m.group(1)
        labels["feature.node.kubernetes.io/kernel-version.minor"] = m.group(2)
    return labels


def _stable_id(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}/{name}".encode()).hexdigest()[:32]


def node_object(spec: NodeSpec, root: Path) -> dict:
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "type": "kwok",
        **nfd_labels(root),
        **spec.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "lab.gpu-kata-installer/profile": spec.profile,
            },
        },
        "spec": {"taints": [{"key": k, "value": v, "effect": e} for k, v, e in spec.taints]}
        if spec.taints else {},
    }


def node_status(spec: NodeSpec, root: Path, kubelet_port: int) -> dict:
    rel = os_release(root)
    resources = {
        "cpu": spec.cpu,
        "memory": spec.memory,
        "pods": spec.pods,
        "ephemeral-storage": "937234648Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    return {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": spec.address},
                {"type": "Hostname", "address": spec.name},
            ],
            "capacity": resources,
            "allocatable": resources,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.UUID(_stable_id(spec.name, "boot"))),
                "containerRuntimeVersion": CONTAINERD_VERSION,
                "kernelVersion": kernel_version(root),
                "kubeProxyVersion": "",
                "kubeletVersion": spec.kubelet_version,
                "machineID": _stable_id(spec.name, "machine"),
                "operatingSystem": "linux",
                "osImage": rel.get("PRETTY_NAME", "Linux"),
                "systemUUID": str(uuid.UUID(_stable_id(spec.name, "system"))),
            },
        }
    }


def create_nodes(
    kube, specs: Iterable[NodeSpec], roots: dict[str, Path], kubelet_port: int, workers: int = 16
) -> None:
    """Create the Node objects and publish their status, concurrently (1,000 in seconds)."""

    def one(spec: NodeSpec) -> None:
        root = roots[spec.name]
        status = node_status(spec, root, kubelet_port)
        # Created with its status, as a kubelet registers: KWOK's node-initialize stage fills
        # in what it finds missing, and a status patched only after the create lost that race
        # now and then (nodeInfo read as kwok-0.8.0 instead of containerd's version).
        kube.create("/api/v1/nodes", {**node_object(spec, root), **status}, exist_ok=True)
        kube.patch(f"/api/v1/nodes/{spec.name}/status", status)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, list(specs)))


def repair_node_info(
    kube, specs: Iterable[NodeSpec], roots: dict[str, Path], kubelet_port: int
) -> list[str]:
    """Publish the status again of any node whose nodeInfo KWOK overwrote with its own
    version; run once the nodes are Ready (KWOK initialises a node only once)."""
    by_name = {s.name: s for s in specs}
    items, _ = kube.list("/api/v1/nodes")
    wrong = [
        n["metadata"]["name"]
        for n in items
        if n["metadata"]["name"] in by_name
        and n["status"].get("nodeInfo", {}).get("containerRuntimeVersion") != CONTAINERD_VERSION
    ]
    for name in wrong:
        spec = by_name[name]
        kube.patch(f"/api/v1/nodes/{name}/status", node_status(spec, roots[name], kubelet_port))
    return wrong
