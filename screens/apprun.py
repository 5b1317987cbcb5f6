"""The wizard's engine run: starting it (with the secrets it needs asked once), following it,
answering its questions, stopping it. A part of InstallerApp (screens/app.py), kept apart
so each file reads as one concern."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING

from installer.cluster.facts import Facts
from installer.engine.events import CheckReported, PodStatus, RunFinished
from installer.errors import EXIT_INTERRUPTED, UserError
from screens.bridge import OUTPUT_KEY
from screens.messages import (
    EngineEvent,
    LinesReady,
    PodsChanged,
    PodsSeen,
    RunEnded,
)
from screens.modals import ConfirmModal, SecretModal
from screens.runner import LoopThread

if TYPE_CHECKING:
    from installer.engine.runner import Engine

STOP_TIMEOUT = 20.0


class RunMixin:
    """One engine run at a time on its own loop thread; its events come back as messages."""

    run_over: asyncio.Event | None = None  # set when the run has ended: the pod watch stops

    # --- the engine run ------------------------------------------------------------------
    def action_start_run(self, dry_run: bool) -> None:
        if self.run_state.active:
            self.notify("a run is already going (see Install)", severity="warning")
            self.goto("install")
            return
        if not dry_run and self.services.recorded:
            self.notify("this is a recorded cluster: only a dry-run is possible",
                        severity="warning")
            return
        plan, error = self.state.plan_or_error()
        if error is not None or plan is None:
            self.notify(f"the plan has a problem: {error}", severity="error")
            return
        if self._missing_secrets():
            self.with_secrets(lambda: self.action_start_run(dry_run))
            return
        if dry_run:
            self._launch(True)
            return
        from installer.engine.operations import OPERATIONS

        op = OPERATIONS[self.state.operation]
        context = self.state.answers.cluster.context or "the current context"
        detail = (f"{op.verb}: {len(plan.changes)} changes on {context} ({op.summary}), as "
                  "Review lists them. Each host fix still asks when its policy is 'ask'. "
                  "Stopping midway is safe; a new run resumes.")
        self.push_screen(ConfirmModal(f"{op.verb} now?", detail, yes=op.verb),
                         lambda yes: self._launch(False) if yes else None)

    def _launch(self, dry_run: bool) -> None:
        from installer.commands.headless import journal_for
        from installer.engine.runner import Context, Engine
        from installer.engine.runtime import run_services
        from installer.engine.sinks import LogFileSink
        from installer.statedir import state_dir

        answers = self.state.answers
        facts = (self.state.facts if (dry_run or self.services.recorded) and self.state.facts
                 else Facts(cluster=None))
        log_path = state_dir() / "logs" / f"wizard-{time.strftime('%Y%m%d-%H%M%S')}.log"
        try:
            services = run_services(answers, self.redactor, ask=self._secret_prompt,
                                    confirm_host_key=self._confirm_host_key)
            journal = None if dry_run else journal_for(answers)
            log = LogFileSink(log_path, self.redactor)
        except UserError as exc:
            self.notify(str(exc), title="Cannot start", severity="error", timeout=15)
            return
        self.log_path = log_path
        ctx = Context(dry_run=dry_run, sinks=[self.sink, log], decider=self.decider,
                      journal=journal, services=services)
        engine = Engine(answers, ctx, self.services.executors(), self.state.planner())
        self.run_state.reset(dry_run)
        self.runner = LoopThread(self._run_engine(engine, facts), "engine",
                                 lambda code, error: self._engine_done(code, error, log))
        self.runner.start()
        self.run_over = asyncio.Event()
        if not self.services.recorded:
            self.run_worker(self._watch_pods(self.run_over), group="pods", exclusive=True)
        self.goto("install")
        self._refresh_current()

    async def _run_engine(self, engine: Engine, facts: Facts) -> int:
        """Runs on the engine's own loop (screens.runner.LoopThread), not the UI's."""
        try:
            return await engine.run(facts)
        except UserError as exc:  # the engine already reported RunFinished
            return exc.exit_code

    def _engine_done(self, code: int | None, error: BaseException | None, log) -> None:
        """Called on the engine's thread when the run is over, however it ended."""
        if isinstance(error, asyncio.CancelledError):
            code = EXIT_INTERRUPTED  # the engine reported RunFinished(cancelled)
        elif error is not None:  # an executor's bug must not take the wizard down
            code = 1
            self.sink.emit(RunFinished(path="run", status="failed", exit_code=1,
                                       message=f"internal error: {type(error).__name__}: "
                                               f"{error}"))
        log.close()
        self.post_message(RunEnded(code, "cancelled" if code == EXIT_INTERRUPTED else ""))

    async def _watch_pods(self, run_over: asyncio.Event) -> None:
        """Both namespaces' pods live while the run goes (a watch: each change as the API
        server has it, through the sink like the engine's own events), then read once more
        when it has ended, so the tables keep the run's last word even if the watch was cut."""
        answers = self.state.answers
        namespaces = (answers.kata_deploy.namespace, answers.gpu_operator.namespace)
        inspector = self.inspector()
        watch = asyncio.create_task(inspector.watch_pods(namespaces, self.sink.emit))
        try:
            await run_over.wait()
        finally:
            watch.cancel()
            # the watch's own failure (an unreachable cluster) is the engine's to report
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch
        try:
            view = await inspector.view(namespaces, diagnose_too=False)
        except Exception:
            return
        if view.pods:
            self.post_message(PodsSeen(view.pods))

    def on_pods_seen(self, message: PodsSeen) -> None:
        for p in message.pods:
            self.run_state.apply(PodStatus(path="watch", namespace=p.namespace, pod=p.name,
                                           phase=p.phase, node=p.node, ready=p.ready,
                                           restarts=p.restarts, reason=p.reason,
                                           created=p.created,
                                           containers=p.containers + p.init_containers))
        for screen in self._live_screens():
            screen.on_pods(list(message.pods))

    # --- secrets and host keys ---------------------------------------------------------
    def _prompts(self) -> dict[str, str]:
        """What the answers say to ask for, with why."""
        ssh = self.state.answers.ssh
        out = {}
        if ssh.sudo.mode in ("auto", "password") and ssh.sudo.password_prompt and \
                not ssh.sudo.password_env:
            out["sudo password"] = (f"sudo on the GPU hosts, for {ssh.user} "
                                    "(ssh.sudo.passwordPrompt)")
        if ssh.passphrase_prompt and not ssh.passphrase_env:
            out["key passphrase"] = (f"for {ssh.identity_file or 'the SSH key'} "
                                     "(ssh.passphrasePrompt)")
        return out

    def _missing_secrets(self) -> list[str]:
        return [what for what in self._prompts() if what not in self.secrets]

    def with_secrets(self, then) -> None:
        """Ask for each secret the answers want typed (once a session), then go on."""
        missing = self._missing_secrets()
        if not missing:
            then()
            return
        what = missing[0]

        def got(value: str | None) -> None:
            if value is None:
                self.notify(f"cancelled: the {what} is needed", severity="warning")
                return
            self.secrets[what] = value
            self.redactor.add(value)
            self.with_secrets(then)

        self.push_screen(SecretModal(what, self._prompts()[what]), got)

    def _secret_prompt(self, prompt: str) -> str:
        """installer.hosts.access's Prompt: answered from what the modal collected."""
        what = prompt.rstrip(": ").strip()
        if what not in self.secrets:
            raise UserError(f"the {what} was not given", [])
        return self.secrets[what]

    async def _confirm_host_key(self, host: str, fingerprint: str) -> bool:
        """An unknown host key during a run (host key policy accept-new): the operator says."""
        return await self._ask(
            f"Trust the host key of {host}?",
            f"{host} offered a key that is not in your known_hosts file:\n\n    {fingerprint}"
            "\n\nCompare it with the host's own (ssh-keygen -lf "
            "/etc/ssh/ssh_host_ed25519_key.pub on its console). Trusting records it.")

    def _ask(self, question: str, detail: str) -> asyncio.Future[bool]:
        """The decider's modal. Called on the engine's loop; answered on the UI's."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()

        def answered(yes: bool | None) -> None:
            def settle() -> None:
                if not future.done():
                    future.set_result(bool(yes))
            with contextlib.suppress(RuntimeError):  # the run ended meanwhile
                loop.call_soon_threadsafe(settle)

        modal = ConfirmModal(question, detail)
        if threading.get_ident() == self._thread_id:
            self.push_screen(modal, answered)
        else:
            self.call_from_thread(self.push_screen, modal, answered)
        return future

    def action_stop_run(self) -> None:
        if not self.run_state.active:
            self.notify("nothing is running")
            return
        self.push_screen(ConfirmModal(
            "Stop the run?", "The current step is stopped (helm included); what finished "
            "stays done, and a new run resumes from the journal.", yes="Stop", danger=True),
            lambda yes: self.run_worker(self.stop_run(), group="stop") if yes else None)

    async def stop_run(self) -> None:
        """Cancel the run and wait until it has stopped and said so (RunFinished)."""
        runner = self.runner
        if runner is None or not runner.running:
            return
        runner.cancel()
        await asyncio.to_thread(runner.finished.wait, STOP_TIMEOUT)
        for _ in range(100):  # let the run's last events land
            if not self.run_state.active:
                break
            await asyncio.sleep(0.02)

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        self.run_state.apply(event)
        if isinstance(event, CheckReported):
            self.state.checks[event.node] = event.results
        if isinstance(event, RunFinished):
            ok = event.exit_code == 0
            self.notify(f"{'dry-run' if self.run_state.dry_run else 'install'}: "
                        f"{event.message}", severity="information" if ok else "error",
                        timeout=6)
            self.refresh_bindings()  # Stop no longer applies
        for screen in self._live_screens():
            screen.on_run_event(event)
            screen.refresh_stepbar()

    def on_pods_changed(self, message: PodsChanged) -> None:
        pods = self.sink.drain_pods()
        for p in pods:
            self.run_state.apply(p)
        for screen in self._live_screens():
            screen.on_pods(pods)

    def on_lines_ready(self, message: LinesReady) -> None:
        batches = message.source.drain()
        for key, lines in batches.items():
            if key == OUTPUT_KEY:
                self.run_state.output.extend(lines)
            else:
                self.run_state.add_lines(key, lines)
        if batches:
            for screen in self._live_screens():
                screen.on_lines(batches)

    def on_run_ended(self, message: RunEnded) -> None:
        if self.run_over is not None:
            self.run_over.set()
        self._refresh_current()
