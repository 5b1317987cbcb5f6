"""The wizard asks before it touches a host, and a host is touched only after a yes.

Pilot drives the real app; the host fixes are the real executor (installer.engine.steps.hostfix)
over real SSH to a simulated host behind sshd, built from the tree the recorded facts give
gpu-node-2 (host driver loaded, IOMMU off). The cluster-side steps stay the screens tier's
fakes, so no cluster is needed.
"""

from __future__ import annotations

from installer.answers.model import validate_answers
from installer.engine.params import HostFixParams
from installer.engine.steps.hostfix import host_fix
from screens.app import InstallerApp
from screens.modals import ConfirmModal
from screens.state import answers_data
from tests.integration.conftest import known_hosts_for, tree_digest
from tests.lab import hosts
from tests.screens import fakes
from tests.screens.helpers import until

IOMMU = "Apply 'iommu-cmdline' on gpu-node-2?"


async def test_no_fix_reaches_the_host_before_consent_and_no_means_no(new_host, lab_keys,
                                                                      tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    host = new_host("gpu-host-driver")
    data = answers_data(fakes.example_answers())
    data["ssh"].update(user=hosts.LAB_USER, identityFile=str(lab_keys.identity),
                       knownHosts=str(known_hosts_for(tmp_path / "known_hosts", host)),
                       useAgent=False, configFile=None, sudo={"mode": "passwordless"})
    for item in data["nodes"]["items"]:
        if item["name"] == "gpu-node-2":
            item["address"] = host.address
    world = fakes.World(facts=fakes.example_facts())
    executors = {**world.executors(), HostFixParams: host_fix}
    services = fakes.services(world)
    services.executors = lambda: executors
    app = InstallerApp(fakes.state(validate_answers(data)), services=services, start="review")
    grub = host.root / "etc/default/grub"

    def asked() -> str | None:
        return app.screen.question if isinstance(app.screen, ConfirmModal) else None

    before = tree_digest(host.root)

    async def to_the_first_fix(pilot) -> None:
        """Review's `i`, yes to the plan, then the first host fix is asked for."""
        app.goto("review")
        await pilot.pause()
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), what="Install now?")
        await pilot.press("y")
        await until(pilot, lambda: asked() == IOMMU, what="the fix", timeout=60)

    async def refused(pilot) -> None:
        await pilot.press("n")
        await until(pilot, lambda: app.run_state.status == "failed", what="the refusal",
                    timeout=60)
        assert tree_digest(host.root) == before
        assert "intel_iommu=on" not in grub.read_text()

    async with app.run_test(size=(120, 40)) as pilot:
        # First run: the first fix is asked for, the host is untouched while it waits; no.
        await to_the_first_fix(pilot)
        assert tree_digest(host.root) == before  # .lab/events included: nothing ran there
        await refused(pilot)

        # Second run: yes to that fix, and the host is still untouched when the next
        # question comes - a wave's questions are all asked before any of its hosts is
        # touched - then no: nothing reached the host (no wave is left half done).
        await to_the_first_fix(pilot)
        await pilot.press("y")
        await until(pilot, lambda: asked() not in (None, IOMMU), what="the next fix",
                    timeout=120)
        assert tree_digest(host.root) == before
        await refused(pilot)

        # Third run: yes to every question - then, and only then, the fixes reach the host.
        await to_the_first_fix(pilot)
        while app.run_state.status not in ("ok", "failed") and "intel_iommu=on" not in \
                grub.read_text():
            if asked() is not None:
                await pilot.press("y")
            await pilot.pause(0.1)
        await until(pilot, lambda: "intel_iommu=on" in grub.read_text(), what="the yes",
                    timeout=120)
