"""Running the install's engine only to read: its gather phase (and checks) in a dry-run,
for the commands that look without changing anything (troubleshoot, bundle, status)."""

from __future__ import annotations

from dataclasses import replace

from installer.answers.model import Answers
from installer.cluster.facts import Facts
from installer.engine.plan import Plan, build_plan


class NoConsent:
    """A reading run never changes anything: every question it could ask is a no."""

    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        return False


class PodsAgreed:
    """A reading run whose operator agreed to the probe's host-access pods (`status --yes`,
    the wizard's question before its checks): the only change a reading gather can make,
    since it runs no change step."""

    async def confirm(self, question: str, detail: str, policy: str, *,
                      again: bool = False) -> bool:
        return True


def reading_plan(answers: Answers, facts: Facts) -> Plan:
    """The install's plan, for its gather and check steps only: a read goes on where the
    record of the labels (which only install and uninstall use) cannot be read."""
    if facts.cluster is not None:
        facts = replace(facts, cluster=replace(facts.cluster, record_problem=""))
    return build_plan(answers, facts)
