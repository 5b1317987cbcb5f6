"""How the installer reaches the GPU hosts: SSH options from the answers, plus the secrets
(sudo password, key passphrase) read once from the environment or a prompt and kept only
in memory. Built once per run and kept in the engine context's services. While the engine runs, it
also keeps one SSH connection per host for the run's steps to share (`keep_connections`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from installer.answers.model import DEFAULT_SSH_CONFIG, Answers
from installer.childenv import hide_from_children
from installer.errors import Problem, UserError
from remote.ssh import Connections, SSHOptions
from remote.targets import HostTarget

if TYPE_CHECKING:
    from installer.engine.params import SshTarget

Prompt = Callable[[str], str]


@dataclass
class HostAccess:
    options: SSHOptions
    sudo: bool
    sudo_password: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    confirm_host_key: Callable[[str, str], Any] | None = None
    connections: Connections | None = None  # set while keep_connections is open

    def ssh_kwargs(self) -> dict[str, Any]:
        return {"passphrase": self.passphrase, "confirm_host_key": self.confirm_host_key,
                "connections": self.connections}

    @contextlib.asynccontextmanager
    async def keep_connections(self, limit: int = 50) -> AsyncIterator[Connections]:
        """Keep one connection per host open for the steps inside (remote.sshkeep; at most
        `limit`, the run's SSH concurrency), and close them all at the end. Outside it
        every call connects on its own, as a one-off check (the connection test, status)
        should."""
        if self.connections is not None:  # already kept by an outer run
            yield self.connections
            return
        self.connections = Connections(limit)
        try:
            yield self.connections
        finally:
            kept, self.connections = self.connections, None
            await kept.close()


def _secret(env: str | None, prompt: bool, what: str, ask: Prompt | None) -> str | None:
    if env:
        value = os.environ.get(env)
        hide_from_children(env)
        if value is None:
            raise UserError(f"{what}: environment variable {env} is not set", [Problem(
                env, "the answers file references it", f"export {env}=... before running, "
                "or use the prompt option instead")])
        return value
    if prompt:
        if ask is None:
            raise UserError(f"{what} must be typed, but there is no terminal", [Problem(
                "prompt", "nothing can ask for it here",
                "reference an environment variable instead (…Env) or run on a terminal")])
        return ask(f"{what}: ")
    return None


def _ssh_config(path: str | None) -> str | None:
    """ssh.configFile as SSHOptions takes it, read the way ssh reads its config: the default
    ~/.ssh/config when it exists (None: asyncssh reads it then, and only then - a missing
    one is no config, not a failure on every host), another file only if it is there
    (`ssh -F` refuses a missing one too), null for none at all."""
    if not path:
        return ""
    if path == DEFAULT_SSH_CONFIG:
        return None
    expanded = os.path.expanduser(path)
    if not os.path.isfile(expanded):
        raise UserError(f"ssh.configFile: no SSH config file at {expanded}", [Problem(
            "ssh.configFile", f"{expanded} does not exist or is not a file",
            "correct the path, or set ssh.configFile: null to use no SSH config")])
    return expanded


def host_access(answers: Answers, ask: Prompt | None = None,
                confirm_host_key: Callable[[str, str], Any] | None = None) -> HostAccess:
    ssh = answers.ssh
    options = SSHOptions(
        user=ssh.user, port=ssh.port,
        identity_file=os.path.expanduser(ssh.identity_file) if ssh.identity_file else None,
        use_agent=ssh.use_agent, jump_host=ssh.jump_host,
        known_hosts=os.path.expanduser(ssh.known_hosts), host_key_policy=ssh.host_key_policy,
        config_file=_ssh_config(ssh.config_file),
        connect_timeout=ssh.connect_timeout, command_timeout=ssh.command_timeout)
    mode = ssh.sudo.mode
    password = None
    if mode in ("auto", "password"):
        password = _secret(ssh.sudo.password_env, ssh.sudo.password_prompt, "sudo password", ask)
        if mode == "password" and password is None:
            raise UserError("ssh.sudo.mode is password but no password is referenced", [Problem(
                "ssh.sudo", "no passwordEnv or passwordPrompt",
                "add passwordEnv: SUDO_PASSWORD (an environment variable) or passwordPrompt: "
                "true")])
    passphrase = _secret(ssh.passphrase_env, ssh.passphrase_prompt, "key passphrase", ask)
    return HostAccess(options, sudo=mode != "none", sudo_password=password,
                      passphrase=passphrase, confirm_host_key=confirm_host_key)


def target(params: SshTarget) -> HostTarget:
    """A validated SSH target from a plan step's target params."""
    if not params.address:
        raise UserError(f"no SSH address for node {params.node}", [Problem(
            "nodes.items[].address", "the node has no InternalIP and no address override",
            f"add `address:` for {params.node} under nodes.items")])
    return HostTarget(params.node, params.address, params.port, params.user).validate()
