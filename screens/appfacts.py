"""The wizard's discovery and checks: run in workers, folded into the state when their
messages come back. A part of InstallerApp (screens/app.py), kept apart so each file reads
as one concern."""

from __future__ import annotations

from dataclasses import replace

from installer.answers.model import Answers
from installer.cluster.facts import Facts, NodeFacts
from installer.errors import UserError
from screens.messages import (
    ChecksLoaded,
    FactsFailed,
    FactsLoaded,
    FactsScanned,
    NodesRead,
)
from screens.modals import ConfirmModal
from screens.runner import in_thread
from screens.services import scan_for_plan


class FactsMixin:
    """Discovery of the cluster, the scan for what the plan still needs, and the read-only
    checks, for InstallerApp."""

    # The nodes a running discovery has read so far: shown before the whole list is in,
    # never planned from (the plan reads only state.facts, set when discovery ends).
    nodes_read: tuple[NodeFacts, ...] = ()

    # --- discovery and checks ----------------------------------------------------------
    def discover(self) -> None:
        if self.discovering:
            return
        self.discovering = True
        self.refresh_bindings()  # Discover is greyed while it runs
        self.run_worker(self._discover(self.state.answers), group="discover", exclusive=True)

    async def _discover(self, answers: Answers) -> None:
        self.nodes_read = ()
        try:
            facts = await in_thread(self.services.facts(
                answers.cluster, on_nodes=lambda nodes: self.post_message(NodesRead(nodes))))
        except UserError as exc:
            self.post_message(FactsFailed(str(exc)))
            return
        except Exception as exc:  # unreachable cluster, bad certificate...: say it plainly
            self.post_message(FactsFailed(f"discovery failed: {exc}".splitlines()[0]))
            return
        self.post_message(FactsLoaded(facts))

    def on_nodes_read(self, message: NodesRead) -> None:
        """A page of a long node list: shown (read-only) until the whole list is in."""
        if self.discovering:
            self.nodes_read = message.nodes
            self._refresh_current()

    def on_facts_loaded(self, message: FactsLoaded) -> None:
        self.discovering = False
        self.nodes_read = ()
        self.facts_error = None
        old = self.state.facts
        self.state.facts = message.facts
        if old is None or old.cluster != message.facts.cluster:
            self.state.checks = {}
            self.state.checks_error = None
        self._refresh_current()

    def on_facts_failed(self, message: FactsFailed) -> None:
        self.discovering = False
        self.nodes_read = ()
        self.facts_error = message.error
        self._refresh_current()

    def scan_for_plan(self) -> None:
        """Look up what the plan still needs from the cluster (GPU pods on the nodes it would
        relabel) in a worker; the screens refresh with it."""
        facts = self.state.facts
        if self.scanning or facts is None or facts is self.scan_failed:
            return
        self.scanning = True
        self.run_worker(self._scan(self.state.answers, facts), group="scan", exclusive=True)

    async def _scan(self, answers: Answers, facts: Facts) -> None:
        try:
            found = await in_thread(scan_for_plan(answers, facts, self.services.executors()))
        except Exception as exc:  # unreachable cluster: the plan just lacks the warning
            self.post_message(FactsScanned(facts, None, f"could not look for GPU pods on the "
                                           f"nodes to relabel: {exc}".splitlines()[0]))
            return
        self.post_message(FactsScanned(facts, found))

    def on_facts_scanned(self, message: FactsScanned) -> None:
        self.scanning = False
        if message.facts is None:
            self.scan_failed = message.base
            self.notify(message.error, severity="warning")
        elif self.state.facts is message.base:  # not rediscovered meanwhile
            self.state.facts = message.facts
        self._refresh_current()

    def run_checks(self) -> bool:
        """Start the read-only checks (probe + check steps); False when they cannot run."""
        if self.checking:
            return False
        if self.state.facts is None:
            self.notify("discover the cluster first", severity="warning")
            return False
        if self._missing_secrets():
            self.with_secrets(self.run_checks)
            return False
        from installer.engine.hostroute import probe_pods

        pods = [] if self.services.recorded else probe_pods(self.state.answers,
                                                            self.state.facts)
        if pods and not self.pods_agreed:
            self.push_screen(ConfirmModal(
                f"Probe {len(pods)} host(s) through the cluster?",
                "hostAccess: pod - a privileged pod per node (hostPID, the host's root at "
                "/host), deleted after the probe; nothing else is changed:\n\n"
                + "\n".join(pods), yes="Create the pods"), self._pods_answered)
            return False
        self.checking = True
        self.refresh_bindings()  # Re-run is greyed while the checks run
        self.run_worker(self._checks(self.state.answers, self.fresh_facts(self.state.facts),
                                     bool(pods)),
                        group="checks", exclusive=True)
        return True

    pods_agreed = False  # the probe's host-access pods, agreed to once per session

    def _pods_answered(self, yes: bool | None) -> None:
        if yes:
            self.pods_agreed = True
            self.run_checks()
        else:
            self.notify("checks not run: the hosts reached through the cluster need their "
                        "host-access pods (or set them to SSH on the SSH screen)",
                        severity="warning")

    def fresh_facts(self, facts: Facts) -> Facts:
        """Where a check run starts: the hosts are probed again, as headless `troubleshoot`
        and an install probe them - the facts of an earlier probe (before an install's host
        fixes, say) would only give its verdicts again. Recorded facts have no live host to
        probe: their hosts are what is checked."""
        return facts if self.services.recorded else replace(facts, hosts={})

    async def _checks(self, answers: Answers, facts: Facts, pods: bool) -> None:
        try:
            out = await in_thread(self.services.checks(answers, facts,
                                                       self.services.executors(),
                                                       ask=self._secret_prompt,
                                                       probe_pods=pods))
        except Exception as exc:
            self.post_message(ChecksLoaded({}, f"the checks could not run: {exc}"))
            return
        self.post_message(ChecksLoaded(out.results, out.error, out.facts))

    def on_checks_loaded(self, message: ChecksLoaded) -> None:
        self.checking = False
        self.state.checks = dict(message.results)
        self.state.checks_error = message.error
        if message.facts is not None and message.facts.cluster is not None:
            self.state.facts = message.facts
        self._refresh_current()
