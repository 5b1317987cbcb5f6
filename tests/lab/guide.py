"""What NVIDIA's deployment guide prescribes, as data the lab's tests (and others) can reuse."""

from __future__ import annotations

KATA_DEPLOY_RELEASE = ("kata-deploy", "kata-system")
GPU_OPERATOR_RELEASE = ("gpu-operator", "gpu-operator")

# kata-deploy 3.29: NVIDIA's GPU values, plus the real NFD key (the guide's `nfd.enabled` is
# not a key of this chart and is ignored, as by the real chart).
KATA_DEPLOY_SET = [
    "shims.disableAll=true",
    "shims.qemu-nvidia-gpu.enabled=true",
    "defaultShim.amd64=qemu-nvidia-gpu",
    "runtimeClasses.createDefault=false",
    "node-feature-discovery.enabled=false",
    "nfd.enabled=false",
]

GPU_OPERATOR_SET = [
    "sandboxWorkloads.enabled=true",
    "sandboxWorkloads.mode=kata",
    "sandboxWorkloads.defaultWorkload=vm-passthrough",
    "nfd.enabled=true",
    "nfd.nodefeaturerules=true",
]

SAMPLE_POD_NAME = "cuda-vectoradd-kata"
SAMPLE_IMAGE = "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0-ubuntu22.04"


def sample_pod(
    name: str = SAMPLE_POD_NAME,
    node: str | None = None,
    runtime_class: str = "kata-qemu-nvidia-gpu",
    resource: str = "nvidia.com/pgpu",
) -> dict:
    spec: dict = {
        "runtimeClassName": runtime_class,
        "restartPolicy": "OnFailure",
        "containers": [
            {
                "name": "cuda-vectoradd",
                "image": SAMPLE_IMAGE,
                "resources": {"limits": {resource: "1", "memory": "16Gi"}},
            }
        ],
    }
    if node:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def set_args(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out += ["--set", v]
    return out
