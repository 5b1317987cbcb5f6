"""The chart versions this installer is verified against, the ones it installs when the
answers name none (the newest of each), and how a version decides anything.

One place, because the answers' defaults, the compatibility table and the lab's version pairs
must agree. Versions are parsed by remote/versionparse.py (the semver library; SemVer 2
precedence, as helm compares chart versions: `3.30.0-rc.1` < `3.30.0`, build metadata
ignored, an optional leading `v`). Each question below says what a pre-release and an
unknown version (None: a local chart given without a version) mean for it, always the safe
side of that question:

- `fixed_in(v, first)`: a fix or feature that arrived in `first` - a pre-release of `first`
  does not count (which release candidate got it is not known), so the refusal or warning
  stays. kata-deploy 3.30.0-rc.1 on containerd 2.3 is refused (config version 4 is
  written from 3.30.0).
- `defect_in(v, first, last)`: a defect read in the releases `first` .. `last` - any build on
  the way to them counts, a pre-release of `first` too: the warning is said.
- `chart_has(version, first)`: does a chart of this version have values keys that arrived in
  `first`? A pre-release of `first` does (release candidates carry the release's chart) and
  so does an unknown version (the newest): a key an older chart lacks is ignored by it,
  while one left out would leave an image pulled from the internet, not the mirror.

Where no rule can be checked at all (the compatibility table with an unknown version), the
caller warns that it could not tell (installer/charts/compat.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remote.versionparse import parse, release_of

if TYPE_CHECKING:
    from semver import Version

__all__ = ["DEFAULT_GPU_OPERATOR", "DEFAULT_KATA_DEPLOY", "GPU_OPERATOR_VERSIONS",
           "KATA_DEPLOY_VERSIONS", "MIN_KATA_DEPLOY", "chart_has", "defect_in", "fixed_in",
           "parse", "release_of"]

KATA_DEPLOY_VERSIONS = ("3.29.0", "3.30.0", "3.31.0", "3.32.0", "4.0.0", "4.1.0")
GPU_OPERATOR_VERSIONS = ("v26.3.0", "v26.3.1", "v26.3.2", "v26.3.3", "v26.7.0")
DEFAULT_KATA_DEPLOY = KATA_DEPLOY_VERSIONS[-1]
DEFAULT_GPU_OPERATOR = GPU_OPERATOR_VERSIONS[-1]
# The oldest kata-deploy the installer drives (its values and its runtime classes' names).
MIN_KATA_DEPLOY = KATA_DEPLOY_VERSIONS[0]


def fixed_in(version: Version, first: str) -> bool:
    """`version` has what arrived in `first`: SemVer precedence, so a pre-release of
    `first` does not (`3.30.0-rc.1` < `3.30.0`)."""
    return version >= first.removeprefix("v")


def defect_in(version: Version, first: str, last: str) -> bool:
    """`version` is one of the releases `first` .. `last` a defect was read in, or a build on
    the way to one of them (a pre-release of `first` counts)."""
    return version.finalize_version() >= first.removeprefix("v") and \
        version <= last.removeprefix("v")


def chart_has(version: str | None, first: str) -> bool:
    """A chart of `version` has the values keys that arrived in `first`; an unknown version
    counts as the newest and a pre-release as its release (see the module docstring)."""
    found = parse(version)
    return found is None or found.finalize_version() >= first.removeprefix("v")
