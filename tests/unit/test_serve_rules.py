"""Who may reach the served wizard: installer/commands/serve.py's rules, without a server."""

from __future__ import annotations

import pytest

from installer.commands.serve import check_bind, host_allowed, is_loopback, origin_allowed
from installer.errors import UserError


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host):
    assert is_loopback(host)
    check_bind(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "my-host.example"])
def test_other_addresses_need_allow_remote(host):
    with pytest.raises(UserError) as err:
        check_bind(host, allow_remote=False)
    assert err.value.exit_code == 2
    assert "--allow-remote" in err.value.problems[0].fix
    check_bind(host, allow_remote=True)


def test_empty_host_is_refused_even_with_allow_remote():
    with pytest.raises(UserError):
        check_bind("", allow_remote=True)


@pytest.mark.parametrize(("header", "ok"), [
    ("127.0.0.1:8000", True), ("localhost:8000", True), ("[::1]:8000", True),
    ("evil.example:8000", False), ("evil.example", False), ("", False)])
def test_a_loopback_server_answers_loopback_names_only(header, ok):
    assert host_allowed(header, "127.0.0.1", allow_remote=False) is ok
    assert host_allowed(header, "127.0.0.1", allow_remote=True) is ok  # still loopback-bound


def test_an_outside_server_answers_any_name():
    assert host_allowed("wizard.lan:8000", "0.0.0.0", allow_remote=True)


@pytest.mark.parametrize(("origin", "ok"), [
    ("http://127.0.0.1:8000", True), ("HTTP://127.0.0.1:8000", True),
    ("http://127.0.0.1:8001", False), ("http://evil.example", False), (None, False),
    ("null", False)])
def test_only_the_wizards_own_page_opens_a_session(origin, ok):
    assert origin_allowed(origin, "127.0.0.1:8000") is ok


def test_only_the_session_s_own_token_opens_the_wizard():
    from installer.commands.serve import cookie_name, new_token, token_matches

    token = new_token()
    assert token_matches(token, token)
    assert not token_matches(None, token) and not token_matches("", token)
    assert not token_matches(token[:-1], token) and not token_matches(token + "x", token)
    assert new_token() != token and len(token) >= 40  # 32 random bytes, URL-safe
    assert cookie_name(8000) != cookie_name(8001)  # two serves on one host keep apart
