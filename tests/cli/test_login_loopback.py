"""`tiktok-oauth login` on a loopback redirect URI: the one-shot catcher, end to end against the served fake."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests._redis import free_port
from tests.cli._support import CLI, Served, follow_authorize
from tiktok_oauth.stores import FileTokenStore


def login_argv(served: Served, store_dir: Path, redirect_uri: str, *extra: str) -> list[str]:
    return [
        "login",
        *served.options,
        "--redirect-uri",
        redirect_uri,
        "--no-browser",
        "--store",
        str(store_dir),
        "--timeout",
        "20",
        *extra,
    ]


def test_login_catches_the_redirect_and_stores_the_token_under_the_open_id(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    running = cli.start(*login_argv(served, store_dir, redirect_uri))

    callback = follow_authorize(running.authorization_url())
    assert callback.startswith(redirect_uri + "?code=")
    with httpx.Client(trust_env=False) as browser:
        page = browser.get(callback)
    result = running.finish()

    assert page.status_code == 200
    assert "You can close this tab" in page.text
    assert result.code == 0, result.err
    assert result.err == ""
    token = store.get("test-open-id")
    assert token is not None
    assert token.scopes == {"user.info.basic"}
    assert f"Token saved in {store_dir} under key 'test-open-id'" in result.out
    assert "open_id:        test-open-id" in result.out
    assert "access token:   act.***, expires" in result.out


def test_login_sends_pkce_by_default_and_not_with_no_pkce(cli: CLI, served: Served, store_dir: Path) -> None:
    for option, expect_pkce in (("--pkce", True), ("--no-pkce", False)):
        redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
        running = cli.start(*login_argv(served, store_dir, redirect_uri, option, "--key", option.lstrip("-")))
        url = running.authorization_url()
        with httpx.Client(trust_env=False) as browser:
            browser.get(follow_authorize(url))
        assert running.finish().code == 0

        assert ("code_challenge" in parse_qs(urlsplit(url).query)) is expect_pkce
        assert ("code_verifier" in served.fake.token_requests[-1]) is expect_pkce


def test_localhost_redirect_uri_is_caught_too(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    redirect_uri = f"http://localhost:{free_port()}/"
    running = cli.start(*login_argv(served, store_dir, redirect_uri, "--key", "me"))

    callback = follow_authorize(running.authorization_url())
    with httpx.Client(trust_env=False) as browser:
        assert browser.get(callback.replace("localhost", "127.0.0.1", 1)).status_code == 200

    assert running.finish().code == 0
    assert store.get("me") is not None


def test_preconnects_favicon_and_other_paths_do_not_wedge_the_catcher(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    running = cli.start(*login_argv(served, store_dir, redirect_uri))
    url = running.authorization_url()

    # A browser's speculative connections: two that never send a byte, stay open throughout.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        with httpx.Client(trust_env=False) as browser:  # one keep-alive connection for everything
            assert browser.get(f"http://127.0.0.1:{port}/favicon.ico").status_code == 404
            assert browser.get(f"http://127.0.0.1:{port}/callback").status_code == 404  # no code, no error
            assert browser.get(f"http://127.0.0.1:{port}/elsewhere?code=x").status_code == 404
            assert browser.head(f"http://127.0.0.1:{port}/").status_code == 404
            started = time.monotonic()
            page = browser.get(follow_authorize(url))
            result = running.finish()
            elapsed = time.monotonic() - started
    finally:
        for connection in idle:
            connection.close()

    assert page.status_code == 200
    assert result.code == 0, result.err
    assert elapsed < 5  # idle connections were closed, not waited for
    assert store.get("test-open-id") is not None


def test_a_callback_with_a_wrong_state_exits_1_with_one_line(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    running = cli.start(*login_argv(served, store_dir, redirect_uri))
    callback = follow_authorize(running.authorization_url())
    forged = callback.replace("state=", "state=forged", 1)

    with httpx.Client(trust_env=False) as browser:
        page = browser.get(forged)
    result = running.finish()

    assert page.status_code == 200  # the browser is told to look at the terminal
    assert result.code == 1
    assert result.err == "error: the callback's state does not match the one the login began with\n"
    assert "Traceback" not in result.err
    assert not store_dir.exists() or not list(store_dir.glob("*.json"))
    assert served.fake.grant_count("authorization_code") == 0  # no code exchange was attempted


def test_a_denied_callback_exits_1_with_a_clear_line(cli: CLI, served: Served, store_dir: Path) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    running = cli.start(*login_argv(served, store_dir, redirect_uri))
    denied = served.fake.authorize(running.authorization_url(), deny=True)

    with httpx.Client(trust_env=False) as browser:
        page = browser.get(denied)
    result = running.finish()

    assert page.status_code == 200
    assert "TikTok did not grant access" in page.text
    assert "access_denied" in page.text
    assert result.code == 1
    assert result.err == "error: access_denied: The user denied the authorization request.\n"


def test_login_times_out_when_the_browser_never_comes_back(cli: CLI, served: Served, store_dir: Path) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    argv = login_argv(served, store_dir, redirect_uri)
    argv[argv.index("--timeout") + 1] = "0.3"

    result = cli(*argv)

    assert result.code == 1
    assert (
        result.err == f"error: timed out after 0.3 s waiting for the browser to come back to {redirect_uri}\n"
    )


def test_login_reports_a_busy_port_in_one_line(cli: CLI, served: Served, store_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli(*login_argv(served, store_dir, f"http://127.0.0.1:{port}/callback"))

    assert result.code == 1
    assert result.err.startswith(f"error: cannot listen on 127.0.0.1:{port} for TikTok's redirect (")
    assert result.err.count("\n") == 1


def test_login_opens_the_browser_unless_told_not_to(
    cli: CLI, served: Served, store_dir: Path, no_real_browser: list[str]
) -> None:
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    argv = [arg for arg in login_argv(served, store_dir, redirect_uri) if arg != "--no-browser"]
    running = cli.start(*argv)
    url = running.authorization_url()
    with httpx.Client(trust_env=False) as browser:
        browser.get(follow_authorize(url))

    assert running.finish().code == 0
    assert no_real_browser == [url]
