"""Validation of user-supplied strings and quoting of remote commands (pure)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from remote.ssh import Script, build_command
from remote.targets import (
    HostTarget,
    InvalidTarget,
    JumpHost,
    validate_address,
    validate_host_root,
    validate_name,
    validate_user,
)

EVIL = ["a;b", "$(id)", "`id`", "a b", "a\nb", "-oProxyCommand=x", "a|b", "a&b", "a>b", "'",
        '"', "", "a\0b", "x\n"]


@pytest.mark.parametrize("s", EVIL)
def test_metacharacters_are_rejected(s):
    for fn in (validate_name, validate_address, validate_user):
        with pytest.raises(InvalidTarget):
            fn(s)


@pytest.mark.parametrize("scope", [*EVIL[:-3], "eth0\n", "\u0661", "\u00e9", "a" * 16])
def test_an_ipv6_scope_id_is_an_interface_name_and_nothing_else(scope):
    """ipaddress takes any characters but '%' after it (`fe80::1%$(id)` parsed as an address);
    the address reaches ssh, ssh_config and log lines."""
    for address in (f"fe80::1%{scope}", f"[fe80::1%{scope}]"):
        with pytest.raises(InvalidTarget):
            validate_address(address)
        with pytest.raises(InvalidTarget):
            JumpHost.parse(f"ops@{address}:22")


@pytest.mark.parametrize("port", ["\u00b2", "\u0662\u0662", "22\n"])
def test_a_jump_host_port_is_ascii_digits(port):
    with pytest.raises(InvalidTarget):
        JumpHost.parse(f"bastion:{port}")


@pytest.mark.parametrize("ok", ["node-1", "gpu.node_02", "10.0.0.1", "fe80::1", "[::1]",
                                "host.example.com", "labalias", "fe80::1%eth0", "fe80::1%3",
                                "[fe80::1%enp65s0f0.100]"])
def test_ordinary_names_and_addresses_pass(ok):
    validate_address(ok)


def test_users_ports_roots_and_jump_hosts():
    assert validate_user("labops") == "labops" and validate_user("svc$") == "svc$"
    with pytest.raises(InvalidTarget):
        HostTarget("n", "h", port=0).validate()
    with pytest.raises(InvalidTarget):
        HostTarget("n", "h", port=True).validate()
    assert validate_host_root("/srv/we ird;$(x)") == "/srv/we ird;$(x)"
    for bad in ("relative", "/a\nb", "/a\0b"):
        with pytest.raises(InvalidTarget):
            validate_host_root(bad)
    assert JumpHost.parse("ops@bastion:2222") == JumpHost("bastion", 2222, "ops")
    assert JumpHost.parse("[fe80::1]:22") == JumpHost("fe80::1", 22, None)
    with pytest.raises(InvalidTarget):
        JumpHost.parse("ops@bastion;id")


ARGS = ["plain", "a'b", 'a"b', "$(touch /tmp/gki-unit-pwned)", "`id`", "a b\tc", "\\", "*",
        "; rm -rf /", "\n", ""]


def test_scripts_pass_arguments_as_data():
    s = Script('for a in "$@"; do printf "[%s]" "$a"; done', tuple(ARGS))
    line = build_command(s, sudo=False, sudo_password=False)
    r = subprocess.run(["/bin/sh", "-c", line], capture_output=True, text=True)
    assert r.stdout == "".join(f"[{a}]" for a in ARGS)


def test_sudo_wrapping():
    plain = build_command(Script("id -u"), sudo=True, sudo_password=False)
    assert shlex.split(plain)[:4] == ["exec", "sudo", "-n", "--"]
    pw = shlex.split(build_command(Script("id -u", ("x",)), sudo=True, sudo_password=True))
    assert pw[:7] == ["exec", "sudo", "-S", "-k", "-p", "", "--"]
    # the command run by sudo first detaches stdin, so it can never read the password line
    assert pw[9].startswith("exec </dev/null\n") and pw[-1] == "x"
    assert build_command("uptime", sudo=False, sudo_password=False) == "uptime"
