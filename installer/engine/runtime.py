"""What an engine run needs besides the plan: host access with its secrets, the redactor,
limits. Both front ends build it here, so a wizard run and a headless run reach hosts the
same way and mask the same secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from installer.answers.model import Answers
from installer.engine.hostroute import pod_settings
from installer.hosts.access import Prompt, host_access
from installer.redact import Redactor


def run_services(answers: Answers, redactor: Redactor, *, ask: Prompt | None = None,
                 confirm_host_key: Callable[[str, str], Any] | None = None) -> dict[str, Any]:
    """Read the referenced secrets once (environment or prompt) and register them for masking.

    Raises UserError when a referenced secret is missing.
    """
    access = host_access(answers, ask, confirm_host_key)
    redactor.add(access.sudo_password)
    redactor.add(access.passphrase)
    return {"redactor": redactor, "hosts": access, "ssh_limit": answers.ssh.concurrency,
            "pod_settings": pod_settings(answers),
            # the releases this run manages: discovery reads their values (helm.manages)
            "managed_releases": (answers.kata_deploy.release, answers.gpu_operator.release)}
