"""A read-only SSH connection test to one host, and trusting its key on purpose.

The wizard's SSH screen offers these before any run: connect with the answers' settings
(user, key, agent, jump host, known_hosts, sudo), run `id -un` as root, and report what
happened in the operator's terms. An unknown host key is reported with its fingerprint;
`trust=<fingerprint>` records that key - and only a key with exactly that fingerprint - in
the known_hosts file. A changed key is never accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from installer.answers.model import Answers
from installer.errors import UserError
from installer.hosts.access import Prompt, host_access
from remote.ssh import run_on_hosts
from remote.targets import HostTarget, InvalidTarget


@dataclass(frozen=True)
class ConnectionReport:
    node: str
    ok: bool
    message: str
    fingerprint: str | None = None
    unknown_key: bool = False
    remedy: str = ""


def ssh_target(answers: Answers, node: str, address: str | None) -> HostTarget:
    """Where the installer connects for this node: its overrides, else the answers' ssh."""
    item = next((i for i in answers.nodes.items if i.name == node), None)
    return HostTarget(node, (item.address if item and item.address else address) or "",
                      item.port if item else None, item.user if item else None).validate()


async def check_connection(answers: Answers, node: str, address: str | None, *,
                          trust: str | None = None, ask: Prompt | None = None
                          ) -> ConnectionReport:
    """Connect to one node as a run would (read-only: `id -un`, as root when sudo is on)."""
    try:
        access = host_access(answers, ask)
        target = ssh_target(answers, node, address)
    except UserError as exc:
        return ConnectionReport(node, False, exc.summary,
                                remedy="; ".join(p.fix for p in exc.problems if p.fix))
    except InvalidTarget as exc:
        return ConnectionReport(node, False, f"no usable SSH address: {exc}",
                                remedy="set the node's address under nodes.items")
    options = access.options
    confirm = None
    if trust:
        # Accept exactly the key the operator saw, nothing else.
        options = replace(options, host_key_policy="accept-new")

        def confirm(host: str, fingerprint: str) -> bool:
            return fingerprint == trust

    results = await run_on_hosts([target], "id -un", options, limit=1, sudo=access.sudo,
                                 sudo_password=access.sudo_password,
                                 passphrase=access.passphrase, confirm_host_key=confirm)
    r = results[node]
    if r.ok:
        who = r.text().strip() or "?"
        how = f"as {who}" + (" through sudo" if access.sudo and who == "root" else "")
        note = " (host key recorded)" if r.accepted_new_key else ""
        return ConnectionReport(node, True, f"connected to {target.address} {how}{note}",
                                r.host_key_fingerprint)
    if r.error is not None:
        return ConnectionReport(node, False, r.error.message, r.host_key_fingerprint,
                                r.error.kind == "host-key-unknown" and not trust,
                                r.error.remedy)
    err = r.stderr.decode("utf-8", "replace").strip().splitlines()
    return ConnectionReport(node, False, f"`id -un` exited {r.exit_status}: "
                            f"{err[-1] if err else 'no output'}", r.host_key_fingerprint)
