"""FakeTikTok.authorize: TikTok's authorization page checks, and the callback it redirects to."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tiktok_oauth import _clock
from tiktok_oauth.testing import FakeTikTok, FakeTikTokError

AuthUrl = Callable[..., str]


def callback_params(callback: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}


def test_callback_carries_code_scopes_and_state(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    callback = fake.authorize(auth_url())
    assert callback.startswith("https://app.example/callback?code=")
    params = callback_params(callback)
    assert params["scopes"] == "user.info.basic,video.list"
    assert params["state"] == "state-123"


def test_code_contains_star_and_bang_percent_encoded(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    callback = fake.authorize(auth_url())
    raw_code = urlsplit(callback).query.split("&")[0].removeprefix("code=")
    assert "%2A" in raw_code
    assert "%21" in raw_code
    assert "*" in callback_params(callback)["code"]
    assert "!" in callback_params(callback)["code"]


def test_granted_scopes_may_be_a_subset(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    callback = fake.authorize(auth_url(), scopes=["user.info.basic"])
    assert callback_params(callback)["scopes"] == "user.info.basic"


def test_granted_scopes_outside_the_request_are_refused(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    with pytest.raises(FakeTikTokError, match="subset"):
        fake.authorize(auth_url(), scopes=["video.upload"])


def test_deny_returns_access_denied_with_state(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    params = callback_params(fake.authorize(auth_url(), deny=True))
    assert params["error"] == "access_denied"
    assert params["error_description"]
    assert params["state"] == "state-123"
    assert "code" not in params


def test_loopback_http_redirect_uri_with_port_is_accepted(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    callback = fake.authorize(auth_url(redirect_uri="http://127.0.0.1:8765/cb"))
    assert callback.startswith("http://127.0.0.1:8765/cb?code=")


def test_pkce_is_optional(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    callback = fake.authorize(auth_url(code_challenge=None, code_challenge_method=None))
    assert "code" in callback_params(callback)


def test_error_is_an_assertion_error() -> None:
    assert issubclass(FakeTikTokError, AssertionError)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"client_id": "test-key"}, "client_id"),
        ({"client_key": None}, "client_key` is missing"),
        ({"client_key": "other-key"}, "not this app's client key"),
        ({"response_type": "token"}, "response_type"),
        ({"redirect_uri": None}, "redirect_uri` is missing"),
        ({"redirect_uri": "http://app.example/callback"}, "must be https"),
        ({"redirect_uri": "http://localhost/callback"}, "must be https"),
        ({"redirect_uri": "https://app.example/callback#frag"}, "fragment"),
        ({"scope": None}, "scope` is missing"),
        ({"scope": ""}, "scope` is missing"),
        ({"scope": "user.info.basic video.list"}, "comma-separated"),
        ({"state": None}, "state"),
        ({"code_challenge": "A" * 64}, "lowercase hex"),
        ({"code_challenge": "abc"}, "lowercase hex"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge_method": None}, "S256"),
        ({"disable_auto_auth": "true"}, "disable_auto_auth"),
    ],
    ids=lambda value: str(value) if isinstance(value, dict) else "",
)
def test_authorization_url_is_refused(
    fake: FakeTikTok, auth_url: AuthUrl, changes: dict[str, str | None], message: str
) -> None:
    with pytest.raises(FakeTikTokError, match=message):
        fake.authorize(auth_url(**changes))


def test_wrong_path_is_refused(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    url = auth_url().replace("/v2/auth/authorize/", "/auth/authorize/")
    with pytest.raises(FakeTikTokError, match="path"):
        fake.authorize(url)


@pytest.mark.parametrize("value", ["0", "1"])
def test_disable_auto_auth_accepts_0_and_1(fake: FakeTikTok, auth_url: AuthUrl, value: str) -> None:
    assert "code=" in fake.authorize(auth_url(disable_auto_auth=value))


def test_code_expires_after_ten_minutes(
    fake: FakeTikTok,
    code_for: Callable[..., str],
    post_token: Callable[..., httpx.Response],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = code_for()
    later = _clock.now() + 601
    monkeypatch.setattr(_clock, "now", lambda: later)
    response = post_token(
        grant_type="authorization_code",
        code=code,
        redirect_uri="https://app.example/callback",
        code_verifier="verifier-" + "x" * 50,
    )
    assert response.json()["error"] == "invalid_grant"
