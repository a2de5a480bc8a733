"""Fixtures for FakeTikTok's own tests: a fake, an httpx client on it, and small request helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tiktok_oauth.testing import FakeTikTok

AUTHORIZE_URL = "https://www.tiktok.com/v2/auth/authorize/"
TOKEN_URL = "https://open.tiktokapis.com/v2/oauth/token/"
REVOKE_URL = "https://open.tiktokapis.com/v2/oauth/revoke/"
REDIRECT_URI = "https://app.example/callback"
VERIFIER = "verifier-" + "x" * 50
CHALLENGE = hashlib.sha256(VERIFIER.encode()).hexdigest()
CLIENT = {"client_key": "test-key", "client_secret": "test-secret"}


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok()


@pytest.fixture
def http(fake: FakeTikTok) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport()) as client:
        yield client


@pytest.fixture
def auth_url() -> Callable[..., str]:
    """Build an authorization URL; a keyword changes a parameter, `None` drops it."""

    def build(**changes: str | None) -> str:
        params: dict[str, str | None] = {
            "client_key": "test-key",
            "response_type": "code",
            "scope": "user.info.basic,video.list",
            "redirect_uri": REDIRECT_URI,
            "state": "state-123",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
        }
        params.update(changes)
        return AUTHORIZE_URL + "?" + urlencode({k: v for k, v in params.items() if v is not None})

    return build


@pytest.fixture
def post_token(http: httpx.Client) -> Callable[..., httpx.Response]:
    """POST a form to the token endpoint with the client's credentials (override or drop with None)."""

    def post(url: str = TOKEN_URL, **form: str | None) -> httpx.Response:
        data = {**CLIENT, **form}
        return http.post(url, data={k: v for k, v in data.items() if v is not None})

    return post


@pytest.fixture
def code_for(fake: FakeTikTok, auth_url: Callable[..., str]) -> Callable[..., str]:
    """Consent on an authorization URL and return the (decoded) code from the callback."""

    def consent(**changes: str | None) -> str:
        callback = fake.authorize(auth_url(**changes))
        return parse_qs(urlsplit(callback).query)["code"][0]

    return consent


@pytest.fixture
def login(
    code_for: Callable[..., str], post_token: Callable[..., httpx.Response]
) -> Callable[..., dict[str, Any]]:
    """Run the whole authorization-code flow and return the token body."""

    def run(**changes: str | None) -> dict[str, Any]:
        code = code_for(**changes)
        response = post_token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=VERIFIER,
        )
        body: dict[str, Any] = response.json()
        assert "access_token" in body, body
        return body

    return run
