"""`tiktok-oauth fake serve`: a fake TikTok in its own process, reached by an app over loopback only."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tiktok_oauth import MemoryTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing._authorize import AUTHORIZE_PATH

URL_LINE = re.compile(r"serving at (http://127\.0\.0\.1:\d+)")


@dataclass
class Running:
    process: subprocess.Popen[str]
    base_url: str
    printed: str


@pytest.fixture
def fake_process() -> Iterator[Running]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "fake",
            "serve",
            "--client-key",
            "app-key",
            "--client-secret",
            "app-secret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed = ""
    for line in process.stdout:
        printed += line
        if "Press Ctrl-C" in line:
            break
    found = URL_LINE.search(printed)
    assert found, printed
    try:
        yield Running(process, found.group(1), printed)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)


def _consent(base_url: str, authorization_url: str, open_id: str) -> str:
    """The user approves on the fake's consent page (the form's POST), as a browser would."""
    query = authorization_url.split("?", 1)[1]
    with httpx.Client() as browser:
        answer = browser.post(
            f"{base_url}{AUTHORIZE_PATH}?{query}", data={"open_id": open_id, "decision": "authorize"}
        )
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def test_an_app_in_another_process_logs_in_refreshes_and_reads_the_counters(fake_process: Running) -> None:
    base = fake_process.base_url
    assert "client key:     app-key" in fake_process.printed
    endpoints = {
        name: f"{base}{path}"
        for name, path in (
            ("authorize_url", AUTHORIZE_PATH),
            ("token_url", "/v2/oauth/token/"),
            ("revoke_url", "/v2/oauth/revoke/"),
        )
    }
    store = MemoryTokenStore()
    with TikTokOAuth2Client(
        "app-key", "app-secret", redirect_uri="https://app.example/cb", **endpoints
    ) as client:
        url, state = client.create_authorization_url()
        token = client.fetch_token(authorization_response=_consent(base, url, "u1"), state=state)
        store.set("u1", token)
        with httpx.Client() as control:
            assert control.post(f"{base}/_fake/expire", data={"open_id": "u1"}).status_code == 200
            with httpx.Client(auth=TikTokAuth(client, store, "u1")) as api:
                assert api.get(f"{base}/v2/user/info/", params={"fields": "open_id"}).status_code == 200
            state_now = control.get(f"{base}/_fake/state").json()
            assert state_now["grants"] == {
                "authorization_code": 1,
                "refresh_token": 1,
                "client_credentials": 0,
            }
            assert state_now["stale_refresh_token_uses"] == 0
            assert control.post(f"{base}/_fake/revoke", data={"open_id": "u1"}).status_code == 200
            assert control.post(f"{base}/_fake/revoke", data={}).status_code == 400
            assert control.get(f"{base}/_fake/revoke").status_code == 405
            assert control.get(f"{base}/_fake/nothing").status_code == 404


def test_a_cli_command_reaches_it_with_base_url(fake_process: Running, tmp_path: Path) -> None:
    base = fake_process.base_url
    with httpx.Client() as control:
        assert control.get(f"{base}/_fake/state").json()["grants"]["client_credentials"] == 0
    with TikTokOAuth2Client("app-key", "app-secret", base_url=base) as client:
        token = TikTokToken(client.fetch_client_token())
    store = FileTokenStore(tmp_path / "tokens")
    store.set("app", token)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "token",
            "revoke",
            "--key",
            "app",
            "--store",
            str(tmp_path / "tokens"),
            "--client-key",
            "app-key",
            "--client-secret",
            "app-secret",
            "--base-url",
            base,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert store.get("app") is None


def test_base_url_is_an_origin_and_excludes_the_urls_one_by_one() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        TikTokOAuth2Client(
            "k", "s", base_url="http://127.0.0.1:1", token_url="http://127.0.0.1:2/v2/oauth/token/"
        )
    with pytest.raises(ValueError, match="an origin"):
        TikTokOAuth2Client("k", "s", base_url="http://127.0.0.1:1/v2/")
    client = TikTokOAuth2Client("k", "s", base_url="http://127.0.0.1:1/")
    assert client.token_url == "http://127.0.0.1:1/v2/oauth/token/"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_it_stops_on_ctrl_c_or_sigterm_with_exit_0(fake_process: Running, sig: signal.Signals) -> None:
    fake_process.process.send_signal(sig)
    out, _ = fake_process.process.communicate(timeout=60)
    assert fake_process.process.returncode == 0
    assert "Stopped." in out
