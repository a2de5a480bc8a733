"""The leak scan every CLI test ends with, and the catcher on its own."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests._redis import free_port
from tests.cli._support import SECRET, assert_no_leaks
from tiktok_oauth._cli.catcher import RedirectCatcher, loopback_redirect


@pytest.mark.parametrize(
    "leak",
    [SECRET, "access: act.AbCdEf0123456789xyz", "rft.AbCdEf0123456789xyz", "known-token-value"],
)
def test_the_scan_catches_a_leak(leak: str) -> None:
    with pytest.raises(AssertionError):
        assert_no_leaks(["ok", f"... {leak} ..."], {"known-token-value"})


def test_the_scan_lets_masked_tokens_through() -> None:
    assert_no_leaks(["access token:   act.***, refresh token:  rft.***"], {"known-token-value"})


@pytest.mark.parametrize(
    ("redirect_uri", "expected"),
    [
        ("http://127.0.0.1:8080/callback", ("127.0.0.1", 8080, "/callback")),
        ("http://localhost:9/", ("localhost", 9, "/")),
        ("http://localhost:9", ("localhost", 9, "/")),
        ("http://127.0.0.1/cb", ("127.0.0.1", 80, "/cb")),
        ("https://localhost/", None),
        ("https://127.0.0.1:8080/", None),
        ("http://example.com:8080/", None),
        ("http://127.0.0.2:8080/", None),
        ("http://localhost:notaport/", None),
    ],
)
def test_which_redirect_uris_are_caught_on_loopback(
    redirect_uri: str, expected: tuple[str, int, str] | None
) -> None:
    assert loopback_redirect(redirect_uri) == expected


def test_catcher_hands_back_the_callback_and_closes_without_waiting_on_idle_connections() -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with RedirectCatcher("127.0.0.1", port, "/cb", scheme_and_netloc=origin) as catcher:
        idle = socket.create_connection(("127.0.0.1", port))
        try:
            with httpx.Client(trust_env=False) as browser:
                assert browser.get(f"{origin}/favicon.ico").status_code == 404  # stays alive, idle
                assert catcher.wait(0.05) is None
                page = browser.get(f"{origin}/cb?code=a%2Ab&state=s")
                assert catcher.wait(5) == f"{origin}/cb?code=a%2Ab&state=s"
                started = time.monotonic()
                catcher.close()
                assert time.monotonic() - started < 1
        finally:
            idle.close()
    assert page.status_code == 200
    assert page.headers["connection"] == "close"
    assert page.headers["cache-control"] == "no-store"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
