"""Probe many hosts over SSH: one session per host, facts or an error per host.

Why separate from remote.probe: that module stays pure (script text + parser + local run);
this one adds the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from remote.hostfacts import HostFacts
from remote.probe import PROBE_SCRIPT, parse_probe
from remote.ssh import HostError, HostResult, Script, SSHOptions, run_on_hosts
from remote.targets import HostTarget, validate_host_root


async def probe_hosts(targets: Sequence[HostTarget], options: SSHOptions, *,
                      host_root: str = "/", limit: int = 50, sudo: bool = False,
                      sudo_password: str | None = None, passphrase: str | None = None,
                      confirm_host_key: Callable | None = None,
                      on_result: Callable[[str, HostFacts | HostError], object] | None = None
                      ) -> dict[str, HostFacts | HostError]:
    """{target name: HostFacts, or HostError when the host could not be probed}. A probe
    whose output is cut short (host died mid-way) is an error, never partial facts.
    `sudo=True` reads root-only files too (e.g. a 0600 kubelet config)."""
    validate_host_root(host_root)
    out: dict[str, HostFacts | HostError] = {}

    def done(r: HostResult) -> object:
        out[r.name] = _facts(r)
        return on_result(r.name, out[r.name]) if on_result else None

    await run_on_hosts(targets, Script(PROBE_SCRIPT, (host_root,)), options, limit=limit,
                       sudo=sudo, sudo_password=sudo_password, passphrase=passphrase,
                       confirm_host_key=confirm_host_key, on_result=done)
    return out


def _facts(r: HostResult) -> HostFacts | HostError:
    if r.error:
        return r.error
    facts = parse_probe(r.stdout)
    if r.exit_status != 0 or not facts.complete:
        return HostError("error", f"{r.address}: the probe did not complete (exit "
                         f"{r.exit_status}): "
                         + r.stderr.decode("utf-8", "replace").strip()[-300:],
                         "Check that /bin/sh works on the host and retry.")
    return facts
