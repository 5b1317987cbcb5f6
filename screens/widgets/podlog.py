"""A pod's log pane with kubectl's choices: `c` the pod's next container (its init
containers too: a GPU Operator operand fails in one first), `p` the previous run's log (what
a crash-looping container said before it died, `kubectl logs -p`).

A LogView (screens/widgets/logpane.py, which follows the log) that only keeps which pod,
container and run are shown and asks for another by posting `PodLogView.Chosen`; the screen
has the app follow it (InstallerApp.follow_pod_log)."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message

from screens.widgets.logpane import LogView


class PodLogView(LogView):
    BINDINGS = [
        Binding("c", "next_container", "Container", tooltip="Show the pod's next container"),
        Binding("p", "previous", "Previous",
                tooltip="Switch between the current and the previous run's log"),
    ]

    class Chosen(Message):
        def __init__(self, namespace: str, pod: str, container: str | None,
                     previous: bool) -> None:
            super().__init__()
            self.namespace = namespace
            self.pod = pod
            self.container = container
            self.previous = previous

    namespace = ""
    pod = ""
    containers: tuple[str, ...] = ()
    container: str | None = None
    previous = False

    def choose(self, namespace: str, pod: str, containers: tuple[str, ...] = (),
               container: str | None = None, previous: bool = False) -> str | None:
        """Show this pod's log (its first container unless told); the container shown."""
        self.namespace, self.pod, self.containers = namespace, pod, containers
        self.container = container or (containers[0] if containers else None)
        self.previous = previous
        self.title = f"{namespace}/{pod}" + (f" [{self.container}]" if self.container else "") \
            + (" (previous run)" if previous else "")
        self.refresh_bindings()
        return self.container

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_container":
            return len(self.containers) > 1
        if action == "previous":
            return bool(self.pod)
        return True

    def _again(self) -> None:
        self.pane.clear()
        self.post_message(self.Chosen(self.namespace, self.pod, self.container, self.previous))

    def action_next_container(self) -> None:
        if len(self.containers) > 1:
            at = self.containers.index(self.container) if self.container in self.containers \
                else -1
            self.choose(self.namespace, self.pod, self.containers,
                        self.containers[(at + 1) % len(self.containers)], self.previous)
            self._again()

    def action_previous(self) -> None:
        if self.pod:
            self.choose(self.namespace, self.pod, self.containers, self.container,
                        not self.previous)
            self._again()
