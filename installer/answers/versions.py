"""The chart versions this installer is verified against, and the ones it installs when the
answers name none (the newest of each). One place, because the answers' defaults, the
compatibility table and the lab's version pairs must agree."""

from __future__ import annotations

import re

KATA_DEPLOY_VERSIONS = ("3.29.0", "3.30.0", "3.31.0", "3.32.0", "4.0.0", "4.1.0")
GPU_OPERATOR_VERSIONS = ("v26.3.0", "v26.3.1", "v26.3.2", "v26.3.3", "v26.7.0")
DEFAULT_KATA_DEPLOY = KATA_DEPLOY_VERSIONS[-1]
DEFAULT_GPU_OPERATOR = GPU_OPERATOR_VERSIONS[-1]

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)", re.ASCII)


def version_tuple(text: str | None) -> tuple[int, int, int] | None:
    """`v26.3.1`, `3.30.0-rc.1`, `containerd://2.3.0` -> (major, minor, patch)."""
    m = _VERSION.search(text or "")
    return (int(m[1]), int(m[2]), int(m[3])) if m else None
