"""The names of the prerequisite checks, which answers files and `--ignore` refer to.

A module of its own so that validating an answers file (which refuses a name that is no
check's) does not import the checks themselves and the host facts they read.
"""

from __future__ import annotations

from installer.textsafe import display

CHECK_NAMES: tuple[str, ...] = (  # the host checks, in the order they run
    "cpu-virtualization",
    "iommu-enabled",
    "iommu-group-isolation",
    "gpus-present",
    "host-nvidia-driver",
    "nouveau",
    "vfio-available",
    "nvswitch",
    "cc-host",
    "consumer-gpu",
    "kubelet-podresources-gate",
    "kubelet-runtime-timeout",
    "container-runtime",
)
# Read from the cluster by the `cluster-checks` step (container-runtime is checked on both).
CLUSTER_CHECKS: tuple[str, ...] = ("container-runtime", "node-ready", "existing-nfd")
ALL = "all"  # in an ignore list: every check
IGNORABLE: tuple[str, ...] = (*CHECK_NAMES, *(c for c in CLUSTER_CHECKS if c not in CHECK_NAMES),
                              ALL)


def expand_ignore(names: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[str]:
    """The checks an ignore list ignores (`all`: every one). Unknown names raise ValueError
    listing the known ones, so a typo cannot silently ignore nothing."""
    given = frozenset(n.strip() for n in names if n.strip())
    unknown = sorted(given - set(IGNORABLE))
    if unknown:
        raise ValueError(f"unknown check name(s) to ignore: {display(', '.join(unknown))}; "
                         f"known: {', '.join(IGNORABLE)}")
    return frozenset(IGNORABLE) - {ALL} if ALL in given else given
