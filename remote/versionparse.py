"""Version strings, read in one place with the semver library (SemVer 2.0.0).

Charts must be SemVer 2 (helm refuses a chart whose version is not), and so are the release
and image tags they carry; the installer compares them by SemVer precedence, as helm's own
version constraints do: `3.30.0-rc.1` < `3.30.0`, build metadata (`+build.7`) ignored. A
leading `v` (`v26.7.0`, the GPU Operator's and Kubernetes' style) is allowed.

Two readings, for two kinds of text:
- `parse`: a chart, release or image version - the whole text is SemVer, or it is not a
  version (None).
- `release_of`: what a node reports for its kubelet or container runtime
  (`containerd://1.7.24~ds1`, `v1.33.1+k3s1`, `1.7.27-0ubuntu1`): a distribution's package
  revision rides after the release, and is not a SemVer pre-release - `1.7.27-0ubuntu1` is
  containerd 1.7.27 itself. Only the leading `major.minor.patch` counts.

None always means "cannot tell": each caller decides what is safe then, and says so
(installer/answers/versions.py collects those decisions). Here, in the lowest layer, because the
host side (the kubelet feature-gate fix) reads kubelet versions too.

semver is imported on the first parse: its package loads its CLI (argparse) as well.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from semver import Version

# `release_of`'s leading release: ASCII digits only (`\d` would take any Unicode digit).
_RELEASE = re.compile(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", re.ASCII)


def parse(text: str | None) -> Version | None:
    """`3.30.0-rc.1`, `v26.7.0`, `1.0.0+build.7` -> a Version; None for anything else
    (`3.30`, `latest`, `3.30.0\\n`, a digest)."""
    if not isinstance(text, str) or not text.isascii():
        return None
    from semver import Version

    try:
        return Version.parse(text.removeprefix("v"))
    except (ValueError, TypeError):
        return None


def release_of(text: str | None) -> Version | None:
    """The `major.minor.patch` a runtime or kubelet version starts with, after an optional
    `scheme://` and `v` (`containerd://1.7.24~ds1` -> 1.7.24); None when it has none."""
    if not isinstance(text, str):
        return None
    m = _RELEASE.match(text.partition("://")[2] if "://" in text else text)
    if m is None:
        return None
    from semver import Version

    return Version(int(m[1]), int(m[2]), int(m[3]))
