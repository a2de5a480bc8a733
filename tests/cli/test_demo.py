"""`tiktok-oauth demo`: the whole flow against an embedded fake, step by step, never showing a token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from tests.cli._support import CLI, assert_no_leaks
from tiktok_oauth.testing import FakeResponse, FakeTikTok

STEPS = [
    "1. Started a fake TikTok",
    "2. Built the authorization URL, with PKCE",
    "3. The user approved the app",
    "4. The callback's state matched; the code and the PKCE verifier were exchanged for a token:",
    "5. Saved the token in a FileTokenStore",
    "6. GET /v2/user/info/ through requests",
    "7. GET /v2/user/info/ through httpx2.Client(auth=TikTokAuth(...)): HTTP 200",
    "8. TikTok expired the access token early",
    "9. A new TikTokAuth on the same store, with a leeway longer than the token has left",
    "10. Logged out (TikTokAuth.logout()): the access token revoked at TikTok",
    "11. GET /v2/user/info/ with the revoked access token: HTTP 401 access_token_invalid.",
    "12. Through TikTokAuth, nothing is stored any more: the user must log in again.",
    "13. Stopped the fake and removed the temporary directory. Done.",
]


def test_demo_walks_every_step_and_exits_0(cli: CLI) -> None:
    result = cli("demo")

    assert result.code == 0, result.err
    assert result.err == ""
    positions = [result.out.find(step) for step in STEPS]
    missing = [step for step, position in zip(STEPS, positions, strict=True) if position < 0]
    assert not missing
    assert positions == sorted(positions)


def test_demo_never_prints_a_token_the_fake_issued(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    issued: list[str] = []
    handle = FakeTikTok.handle

    def recording_handle(self: FakeTikTok, *args: Any, **kwargs: Any) -> FakeResponse | None:
        response = handle(self, *args, **kwargs)
        if response is not None and response.body.startswith(b"{"):
            body = json.loads(response.body)
            issued.extend(body[name] for name in ("access_token", "refresh_token") if name in body)
        return response

    monkeypatch.setattr(FakeTikTok, "handle", recording_handle)

    result = cli("demo")

    assert result.code == 0, result.err
    assert len(issued) == 6  # the login, two refreshes: an access and a refresh token each
    assert_no_leaks([result.out, result.err], set(issued))


def test_demo_shows_pkce_the_masked_token_and_the_refreshes(cli: CLI) -> None:
    out = cli("demo").out

    assert "code_challenge_method=S256" in out
    assert "code=<redacted>" in out
    assert "access_token='***', refresh_token='***'" in out
    assert "new access token stored: True; refresh token rotated: True" in out
    assert "refreshes so far: 2" in out
    assert "NothingStoredError: no token is stored under key 'demo-user'" in out


def test_demo_without_requests_skips_that_call(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "requests", None)  # `import requests` now raises ImportError

    result = cli("demo")

    assert result.code == 0, result.err
    assert "requests is not installed: skipped the user info call through requests." in result.out
    assert "through httpx2.Client(auth=TikTokAuth(...)): HTTP 200" in result.out


def test_python_m_tiktok_oauth_demo_runs_in_a_few_seconds() -> None:
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "tiktok_oauth", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    elapsed = time.monotonic() - started

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert "13. Stopped the fake and removed the temporary directory. Done." in completed.stdout
    assert elapsed < 20
    assert_no_leaks([completed.stdout, completed.stderr], set())
