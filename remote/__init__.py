"""Everything the installer does on the GPU hosts themselves.

Imports neither `installer` nor `screens` nor `textual` (enforced by a test). Public API:

- remote.targets: HostTarget, validate_* (names, addresses, users, ports, host roots)
- remote.ssh: SSHOptions, Script, run_on_hosts -> {name: HostResult(.error: HostError)};
  its connections (asyncssh) in remote.sshconn, imported when a run first reaches a host
- remote.hostfacts: HostFacts, PciDevice, FabricManager, VFIO_DRIVERS; remote.gpu_models:
  lookup/describe, GRACE_IDS
- remote.kubelet: each distribution's kubelet layout (root, settings files), read_settings
- remote.probe: PROBE_SCRIPT, parse_probe, probe_local, probe_command
- remote.fixes: plan_fixes, HostChange, FixBlocked, apply_change, undo_change,
  fixes.reboot.reboot_and_wait; one module per fix
"""
