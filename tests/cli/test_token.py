"""`tiktok-oauth token show|refresh|revoke` against the served fake, and their errors."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.cli._support import CLI, CLIENT_KEY, SECRET, Served
from tests.conftest import token_request_arrived
from tiktok_oauth import TikTokOAuth2Client, _clock
from tiktok_oauth._cli._common import local_time
from tiktok_oauth.stores import FileTokenStore


def test_show_prints_open_id_scopes_and_expiries_masked(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    token = served.issue(store, "alice", open_id="alice-open-id", expires_in=23 * 3600 + 600)
    refresh_expires_at = token.refresh_expires_at
    assert token.expires_at is not None
    assert refresh_expires_at is not None

    result = cli("token", "show", "--store", str(store_dir), "--key", "alice")

    assert result.code == 0, result.err
    assert result.out == (
        f"Token under key 'alice' in {store_dir}:\n"
        "  open_id:        alice-open-id\n"
        "  scopes:         user.info.basic, video.list\n"
        f"  access token:   act.***, expires {local_time(token.expires_at)} (in 23 h)\n"
        f"  refresh token:  rft.***, expires {local_time(refresh_expires_at)} (in 180 d)\n"
    )


def test_show_says_how_long_ago_a_token_expired(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    token = served.issue(store)
    token["expires_at"] = int(_clock.now()) - 2 * 86400 - 60
    store.set("test-open-id", token)

    result = cli("token", "show", "--store", str(store_dir), "--key", "test-open-id")

    assert "  access token:   act.***, expired " in result.out
    assert "(2 d ago)" in result.out


def test_show_without_key_finds_the_token_saved_under_its_open_id(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    served.issue(store, "test-open-id")

    result = cli("token", "show", "--store", str(store_dir))

    assert result.code == 0, result.err
    assert result.out.startswith(f"Token under key 'test-open-id' in {store_dir}:\n")


def test_show_without_key_and_several_tokens_asks_for_one(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    served.issue(store, "a", open_id="a")
    served.issue(store, "b", open_id="b")

    result = cli("token", "show", "--store", str(store_dir))

    assert result.code == 1
    assert result.err == f"error: several tokens are stored in {store_dir} (a, b): pass --key\n"


def test_show_with_no_token_stored_is_one_line(cli: CLI, store_dir: Path, store: FileTokenStore) -> None:
    result = cli("token", "show", "--store", str(store_dir), "--key", "x")

    assert result.code == 1
    assert result.out == ""
    assert result.err == f"error: no token stored under key 'x' in {store_dir}\n"


def test_refresh_stores_a_new_token(cli: CLI, served: Served, store_dir: Path, store: FileTokenStore) -> None:
    old = served.issue(store)

    result = cli("token", "refresh", *served.options, "--store", str(store_dir), "--key", "test-open-id")

    assert result.code == 0, result.err
    assert result.out.startswith(f"Refreshed. New token saved under key 'test-open-id' in {store_dir}:\n")
    new = store.get("test-open-id")
    assert new is not None
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token
    assert served.fake.grant_count("refresh_token") == 1
    with httpx.Client(trust_env=False) as http:
        answer = http.get(
            served.fake.user_info_url(served.base_url),
            headers={"Authorization": f"Bearer {new.access_token}"},
        )
    assert answer.status_code == 200


def test_refresh_with_a_revoked_grant_says_log_in_again(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    token = served.issue(store)
    with httpx.Client(trust_env=False) as http:
        http.post(
            served.fake.endpoints(served.base_url)["revoke_url"],
            data={
                "client_key": CLIENT_KEY,
                "client_secret": served.fake.client_secret,
                "token": token.access_token,
            },
        )

    result = cli("token", "refresh", *served.options, "--store", str(store_dir), "--key", "test-open-id")

    assert result.code == 1
    assert result.err.startswith("error: invalid_grant: Refresh token is invalid or revoked.")
    assert "[log_id " in result.err
    assert result.err.endswith(" (run `tiktok-oauth login` again)\n")
    assert store.get("test-open-id") == {**token, "needs_login": True}  # kept, marked: never sent again


def test_revoke_revokes_at_tiktok_and_deletes_the_stored_token(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    token = served.issue(store)

    result = cli("token", "revoke", *served.options, "--store", str(store_dir), "--key", "test-open-id")

    assert result.code == 0, result.err
    assert result.out == (
        f"Revoked the access token and deleted the token under key 'test-open-id' from {store_dir}.\n"
    )
    assert store.get("test-open-id") is None
    with httpx.Client(trust_env=False) as http:
        answer = http.get(
            served.fake.user_info_url(served.base_url),
            headers={"Authorization": f"Bearer {token.access_token}"},
        )
    assert answer.status_code == 401


def test_bad_credentials_are_one_line_without_traceback(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    token = served.issue(store)
    options = [*served.url_options, "--client-key", CLIENT_KEY, "--client-secret", "wrong-secret"]

    for action in ("refresh", "revoke"):
        result = cli("token", action, *options, "--store", str(store_dir), "--key", "test-open-id")

        assert result.code == 1
        assert result.err.startswith("error: invalid_client: Client key or secret is invalid.")
        assert result.err.count("\n") == 1
        assert "Traceback" not in result.err
    assert store.get("test-open-id") == token


def test_debug_adds_the_traceback(cli: CLI, served: Served, store_dir: Path, store: FileTokenStore) -> None:
    served.issue(store)
    options = [*served.url_options, "--client-key", CLIENT_KEY, "--client-secret", "wrong-secret"]

    after = cli("token", "refresh", *options, "--store", str(store_dir), "--key", "test-open-id", "--debug")
    before = cli("--debug", "token", "refresh", *options, "--store", str(store_dir), "--key", "test-open-id")

    for result in (after, before):
        assert result.code == 1
        assert result.err.startswith("Traceback (most recent call last):\n")
        assert "tiktok_oauth.errors.TikTokOAuthError: invalid_client" in result.err
        assert result.err.splitlines()[-1].startswith(
            "error: invalid_client: Client key or secret is invalid."
        )


def test_refresh_and_revoke_need_credentials(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    served.issue(store)

    for action in ("refresh", "revoke"):
        result = cli("token", action, *served.url_options, "--store", str(store_dir), "--key", "test-open-id")

        assert result.code == 2
        assert "--client-secret or TIKTOK_CLIENT_SECRET" in result.err
    assert store.get("test-open-id") is not None


def test_plain_http_to_a_remote_host_is_refused(cli: CLI, store_dir: Path) -> None:
    result = cli(
        "token", "refresh", "--client-key", "k", "--client-secret", "plain-http-secret", "--token-url", "http://example.com/t",
        "--store", str(store_dir), "--key", "x",
    )  # fmt: skip

    assert result.code == 2
    assert result.err.startswith("error: refusing plain http:")


def test_a_corrupt_token_file_is_one_line(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    served.issue(store)
    store.token_path("test-open-id").write_text("{not json")

    result = cli("token", "show", "--store", str(store_dir), "--key", "test-open-id")

    assert result.code == 1
    assert result.err == f"error: corrupt token in token file {store.token_path('test-open-id')}: not JSON\n"


def test_ctrl_c_after_the_refresh_was_sent_still_stores_the_rotated_token(
    served: Served, store_dir: Path, store: FileTokenStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tiktok-oauth token refresh` as a real process; Ctrl-C arrives once TikTok has the refresh."""
    old = served.issue(store)
    arrived = token_request_arrived(served.fake, monkeypatch)
    served.fake.token_delay = 1.0  # TikTok answers after the Ctrl-C
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "token",
            "refresh",
            *served.options,
            "--store",
            str(store_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert arrived.wait(60), "the refresh never reached the fake"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    stored = store.get("test-open-id")
    assert stored is not None
    assert stored.refresh_token != old.refresh_token, "the rotated token was lost to the Ctrl-C"
    assert served.fake.grant_count("refresh_token") == 1
    served.fake.token_delay = 0
    with TikTokOAuth2Client(CLIENT_KEY, SECRET, **served.fake.endpoints(served.base_url)) as client:
        client.refresh_token(stored)  # the stored refresh token is the live one
    assert served.fake.stale_refresh_token_uses == 0
