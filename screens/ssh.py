"""SSH: how the installer reaches the Kata hosts (read-only probe, and the host fixes) -
over SSH, or through the cluster (a privileged pod per node: screens/podmode.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Select, Static

from installer.errors import UserError
from installer.textsafe import display
from screens import podmode
from screens.base import Field, Form, WizardScreen, problems_text
from screens.modals import HostKeyModal
from screens.state import answers_data
from screens.widgets.datatext import DataStatic

if TYPE_CHECKING:
    from installer.hosts.sshtest import ConnectionReport

FIELDS = [
    Field("ssh-user", "User", "ssh.user"),
    Field("ssh-port", "Port", "ssh.port", "int"),
    Field("ssh-identity", "Identity file", "ssh.identityFile", "optional",
          placeholder="none: the agent's keys"),
    Field("ssh-agent", "Use SSH agent", "ssh.useAgent", "bool"),
    Field("ssh-passphrase-env", "Key passphrase env", "ssh.passphraseEnv", "optional",
          placeholder="e.g. KEY_PASSPHRASE (never the passphrase)"),
    Field("ssh-jump", "Jump host", "ssh.jumpHost", "optional",
          placeholder="[user@]bastion[:port]"),
    Field("ssh-known-hosts", "Known hosts file", "ssh.knownHosts"),
    Field("ssh-policy", "Unknown host keys", "ssh.hostKeyPolicy", "select",
          (("strict: refuse, ask here", "strict"), ("accept-new: record them", "accept-new"))),
    Field("ssh-sudo", "Becoming root", "ssh.sudo.mode", "select",
          (("auto: detect", "auto"), ("none: already root", "none"),
           ("passwordless sudo", "passwordless"), ("sudo with password", "password"))),
    Field("ssh-sudo-env", "Sudo password env", "ssh.sudo.passwordEnv", "optional",
          placeholder="e.g. SUDO_PASSWORD (never the password)"),
]


class SshScreen(WizardScreen):
    STEP = "ssh"
    TITLE = "SSH - reaching the Kata hosts"
    HELP = """
Reach the hosts (answers hostAccess.mode): over SSH, or through the cluster - a
short-lived privileged pod per node (hostPID, the host's root mounted), reached through the
API server's pods/exec, for hosts nobody may SSH to. The Nodes screen (h) sets another way
for one node (nodes.items[].hostAccess).

Through the cluster: the pod's image (any image with a POSIX shell; pulled under
images.registry when that is set) and namespace (created, labelled privileged, when
missing). ctrl+r asks the API server whether the context may do what pod mode needs (one
SelfSubjectAccessReview per permission, read-only) and names each one it may not, with the
`kubectl auth can-i` line to check it.

Over SSH: how the installer reaches each Kata node's host (answers ssh.*): user, port,
identity file or agent, jump host, known_hosts file, the policy for unknown host keys, and
how to become root (sudo, with its password named by an environment variable).

What it changes: no plan line's content, but whether the probe and host-check steps (and
the host fixes) can run at all; it uses the node's InternalIP unless a node has its own
address. Secrets are never stored: a key passphrase or sudo password is named by an
environment variable. Test the connection (ctrl+r) to see a node's host key; an unknown key
is shown with its fingerprint for you to confirm, a changed key is always refused.
"""

    BINDINGS = [Binding("ctrl+r", "test", "Test access", priority=True)]

    def __init__(self) -> None:
        super().__init__()
        self.error: UserError | None = None
        self.results: dict[str, ConnectionReport] = {}
        self.pod_check: podmode.PodCheck | None = None

    def body(self) -> ComposeResult:
        with VerticalScroll(id="ssh-scroll"):
            yield Form(podmode.MODE_FIELDS, id="access-form")
            yield DataStatic("", id="access-help")
            yield Form(podmode.POD_FIELDS, id="pod-form")
            yield DataStatic("", id="pod-help")
            yield Form(FIELDS, id="ssh-form")
            yield DataStatic("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Select([], id="test-node", prompt="node to test", compact=True)
                yield Button("Test connection (^r)", id="test", variant="primary",
                             compact=True)
                yield Button("Check permissions (^r)", id="test-pods", variant="primary",
                             compact=True)
            yield DataStatic("", id="test-result")

    def on_mount(self) -> None:
        self.refresh_from_state()

    def refresh_from_state(self) -> None:
        state = self.wizard.state
        data = answers_data(state.answers)
        for form in self.query(Form):
            form.load(data)
        nodes = state.kata_nodes() or [n.name for n in (state.facts.cluster.nodes if
                                                         state.facts and state.facts.cluster
                                                         else ()) if n.gpu_present]
        select = self.query_one("#test-node", Select)
        current = select.value
        with select.prevent(Select.Changed):
            select.set_options([(n, n) for n in nodes])
            if current in nodes:
                select.value = current
            elif nodes:
                select.value = nodes[0]
        self._show_mode()
        self._show_error()
        self._show_results()

    def _modes(self) -> set[str]:
        """The ways in the answers use: the top level's and each node's own."""
        answers = self.wizard.state.answers
        return {answers.host_access.mode} | {i.host_access for i in answers.nodes.items
                                             if i.host_access}

    def _show_mode(self) -> None:
        """SSH's fields where a host is reached over SSH, the pod's where through the
        cluster (both when nodes differ)."""
        answers = self.wizard.state.answers
        modes = self._modes()
        self.query_one("#access-help", Static).update(
            Text(podmode.MODE_HELP[answers.host_access.mode], style="dim"))
        for part in ("#pod-form", "#pod-help"):
            self.query_one(part).display = "pod" in modes
        self.query_one("#pod-help", Static).update(podmode.image_help(answers))
        self.query_one("#ssh-form").display = "ssh" in modes
        self.query_one("#test-node").display = "ssh" in modes
        self.query_one("#test").display = "ssh" in modes
        self.query_one("#test-pods").display = modes == {"pod"}

    def _edit(self) -> None:
        changes: dict[str, object] = {}
        forms = list(self.query(Form))
        for form in forms:
            changes |= form.changes()
        try:
            self.wizard.state.edit(changes)
            self.error = None
            for form in forms:
                form.mark([])
        except UserError as exc:
            self.error = exc
            for form in forms:
                form.mark([p.where for p in exc.problems])
        self._show_error()
        if self.error is None:
            self.pod_check = None  # asked for other answers
            self._show_mode()
            self._show_results()
            self.wizard.answers_changed("ssh")

    def _show_error(self) -> None:
        err = self.query_one("#error", Static)
        err.display = self.error is not None
        if self.error is not None:
            err.update(problems_text(self.error, _Forms(list(self.query(Form)))))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._edit()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.id != "test-node":
            self._edit()

    def can_leave(self) -> str | None:
        if self.error is not None:
            return "fix the host-access settings first (the last valid ones are kept " \
                "otherwise)"
        return None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id in ("test", "test-pods"):
            self.action_test()

    def action_test(self) -> None:
        node = self.query_one("#test-node", Select).value
        answers = self.wizard.state.answers
        mode = answers.host_access.mode if node is Select.NULL or "ssh" not in \
            self._modes() else answers.nodes.access_for(str(node), answers.host_access.mode)
        if mode == "pod":
            self.query_one("#test-result", Static).update(Text(
                "asking the API server (SelfSubjectAccessReviews, read-only)…",
                style="yellow"))
            self.run_worker(self._check_pods(), group="ssh-test", exclusive=True)
            return
        if node is Select.NULL:
            self.notify("choose a Kata node first (Nodes screen)", severity="warning")
            return
        self.query_one("#test-result", Static).update(Text(f"connecting to {node}…",
                                                           style="yellow"))
        self.run_worker(self._test(str(node)), group="ssh-test", exclusive=True)

    async def _check_pods(self) -> None:
        import asyncio

        services, state = self.wizard.services, self.wizard.state
        answers, facts = state.answers, state.facts
        if services.recorded:
            check = podmode.PodCheck(answers.host_access.namespace, error=(
                "recorded facts: there is no live cluster to ask"))
        else:
            try:
                kube = await asyncio.to_thread(services.kube, answers.cluster)
                check = await asyncio.to_thread(podmode.ask, kube, answers, facts)
            except Exception as exc:  # the check reports; it never takes the wizard down
                check = podmode.error_check(answers, exc)
        self.pod_check = check
        self._show_results()

    def _address(self, node: str) -> str | None:
        facts = self.wizard.state.facts
        item = next((i for i in self.wizard.state.answers.nodes.items if i.name == node), None)
        if item and item.address:
            return item.address
        nf = facts.cluster.node(node) if facts and facts.cluster else None
        return nf.address if nf else None

    async def _test(self, node: str) -> None:
        from installer.hosts.sshtest import ConnectionReport  # asyncssh: loaded when first used

        access = self.wizard.services.host_access
        answers = self.wizard.state.answers
        address = self._address(node)
        try:
            result = await access.test(answers, node, address)
        except Exception as exc:  # the test reports; it never takes the wizard down
            result = ConnectionReport(node, False, f"test failed: {exc}")
        if result.unknown_key and result.fingerprint:
            trusted = await self.app.push_screen_wait(
                HostKeyModal(node, address, result.fingerprint))
            if trusted:
                try:
                    await access.trust(answers, node, address, result.fingerprint)
                    result = await access.test(answers, node, address)
                except Exception as exc:
                    result = ConnectionReport(node, False,
                                              f"could not record the key: {exc}")
            else:
                result = ConnectionReport(node, False, "host key not trusted; the installer "
                                          "will not connect to this host",
                                          result.fingerprint)
        self.results[node] = result
        self._show_results()

    def _show_results(self) -> None:
        text = Text()
        if "pod" in self._modes():
            text.append_text(podmode.check_text(self.pod_check) if self.pod_check else
                             podmode.needed_text(podmode.permissions(
                                 self.wizard.state.answers, self.wizard.state.facts)))
        for node, r in sorted(self.results.items()):
            text.append("✓ " if r.ok else "✗ ", style="bold green" if r.ok else "bold red")
            text.append(f"{node}: {display(r.message)}")  # what sshd or the host said
            if r.remedy and not r.ok:
                text.append(f" - {display(r.remedy)}")
            if r.fingerprint:
                text.append(f"  ({r.fingerprint})", style="dim")
            text.append("\n")
        self.query_one("#test-result", Static).update(text)


class _Forms:
    """The screen's forms as one, for naming a problem's field."""

    def __init__(self, forms: list[Form]) -> None:
        self.forms = forms

    def label_for(self, where: str) -> str:
        for form in self.forms:
            label = form.label_for(where)
            if label != where:
                return label
        return where
