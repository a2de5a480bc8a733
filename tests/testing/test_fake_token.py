"""FakeTikTok's token endpoint: the three grants, rotation, and what TikTok refuses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tiktok_oauth import _clock
from tiktok_oauth.testing import FakeTikTok

PostToken = Callable[..., httpx.Response]
Login = Callable[..., dict[str, Any]]
REDIRECT_URI = "https://app.example/callback"
VERIFIER = "verifier-" + "x" * 50
TOKEN_URL = "https://open.tiktokapis.com/v2/oauth/token/"


def exchange(post_token: PostToken, code: str, **changes: str | None) -> httpx.Response:
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": VERIFIER,
    }
    return post_token(**{**form, **changes})


def refresh(post_token: PostToken, refresh_token: str, **changes: str | None) -> httpx.Response:
    return post_token(grant_type="refresh_token", refresh_token=refresh_token, **changes)


def assert_oauth_error(response: httpx.Response, error: str) -> None:
    assert response.status_code == 200  # TikTok answers OAuth errors with HTTP 200
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert len(body["log_id"]) == 34
    assert response.headers["x-tt-logid"] == body["log_id"]


def test_code_exchange_returns_tiktoks_token_shape(
    post_token: PostToken, code_for: Callable[..., str]
) -> None:
    response = exchange(post_token, code_for())
    body = response.json()
    assert response.status_code == 200
    assert sorted(body) == [
        "access_token",
        "expires_in",
        "open_id",
        "refresh_expires_in",
        "refresh_token",
        "scope",
        "token_type",
    ]
    assert body["access_token"].startswith("act.")
    assert body["refresh_token"].startswith("rft.")
    assert body["expires_in"] == 7200  # TikTok's current docs: 2 hours
    assert body["refresh_expires_in"] == 15552000  # and 180 days
    assert body["open_id"] == "test-open-id"
    assert body["scope"] == "user.info.basic,video.list"
    assert body["token_type"] == "Bearer"


def test_code_exchange_scope_is_the_granted_subset(
    fake: FakeTikTok, post_token: PostToken, auth_url: Callable[..., str]
) -> None:
    callback = fake.authorize(auth_url(), scopes=["user.info.basic"], open_id="someone")
    code = httpx.URL(callback).params["code"]
    body = exchange(post_token, code).json()
    assert body["scope"] == "user.info.basic"
    assert body["open_id"] == "someone"


def test_lifetimes_follow_the_constructor(auth_url: Callable[..., str]) -> None:
    fake = FakeTikTok(access_ttl=86400, refresh_ttl=31536000)  # older doc pages: 24 h and 365 d
    code = httpx.URL(fake.authorize(auth_url())).params["code"]
    with httpx.Client(transport=fake.transport()) as http:
        body = http.post(
            "https://open.tiktokapis.com/v2/oauth/token/",
            data={
                "client_key": "test-key",
                "client_secret": "test-secret",
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": VERIFIER,
            },
        ).json()
    assert (body["expires_in"], body["refresh_expires_in"]) == (86400, 31536000)


def test_code_is_single_use(post_token: PostToken, code_for: Callable[..., str]) -> None:
    code = code_for()
    assert exchange(post_token, code).status_code == 200
    assert_oauth_error(exchange(post_token, code), "invalid_grant")


def test_unknown_code_is_invalid_grant(post_token: PostToken) -> None:
    assert_oauth_error(exchange(post_token, "nope*0!1234"), "invalid_grant")


def test_mismatched_redirect_uri_is_invalid_grant(
    post_token: PostToken, code_for: Callable[..., str]
) -> None:
    response = exchange(post_token, code_for(), redirect_uri="https://app.example/other")
    assert_oauth_error(response, "invalid_grant")


def test_missing_redirect_uri_is_invalid_grant(post_token: PostToken, code_for: Callable[..., str]) -> None:
    assert_oauth_error(exchange(post_token, code_for(), redirect_uri=None), "invalid_grant")


def test_wrong_code_verifier_is_invalid_grant(post_token: PostToken, code_for: Callable[..., str]) -> None:
    response = exchange(post_token, code_for(), code_verifier="another-verifier-" + "y" * 40)
    assert_oauth_error(response, "invalid_grant")


def test_missing_code_verifier_is_invalid_grant(post_token: PostToken, code_for: Callable[..., str]) -> None:
    assert_oauth_error(exchange(post_token, code_for(), code_verifier=None), "invalid_grant")


def test_code_without_challenge_needs_no_verifier(
    post_token: PostToken, code_for: Callable[..., str]
) -> None:
    code = code_for(code_challenge=None, code_challenge_method=None)
    assert exchange(post_token, code, code_verifier=None).status_code == 200


def test_failed_exchange_leaves_the_code_usable(post_token: PostToken, code_for: Callable[..., str]) -> None:
    code = code_for()
    exchange(post_token, code, redirect_uri="https://app.example/other")
    assert "access_token" in exchange(post_token, code).json()


def test_refresh_rotates_both_tokens(post_token: PostToken, login: Login) -> None:
    first = login()
    second = refresh(post_token, first["refresh_token"]).json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == first["scope"]
    assert second["open_id"] == first["open_id"]


def test_rotated_away_refresh_token_is_dead_and_counted(
    fake: FakeTikTok, post_token: PostToken, login: Login
) -> None:
    first = login()
    refresh(post_token, first["refresh_token"])
    assert_oauth_error(refresh(post_token, first["refresh_token"]), "invalid_grant")
    assert fake.stale_refresh_token_uses == 1


Graced = tuple[FakeTikTok, PostToken, dict[str, Any]]


@pytest.fixture
def graced() -> Iterator[Graced]:
    """A fake with a 30-second rotation grace, a way to post to its token endpoint, and an issued token."""
    fake = FakeTikTok(rotation_grace=30.0)
    with httpx.Client(transport=fake.transport()) as http:

        def post_token(**form: str | None) -> httpx.Response:
            data = {"client_key": "test-key", "client_secret": "test-secret", **form}
            return http.post(TOKEN_URL, data={k: v for k, v in data.items() if v is not None})

        yield fake, post_token, fake.issue_token()


def test_a_rotated_away_refresh_token_works_within_the_rotation_grace(
    graced: Graced, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, post_token, first = graced
    now = _clock.now()
    monkeypatch.setattr(_clock, "now", lambda: now)
    second = refresh(post_token, first["refresh_token"]).json()
    monkeypatch.setattr(_clock, "now", lambda: now + 29)
    again = refresh(post_token, first["refresh_token"])
    assert again.status_code == 200
    assert again.json()["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert fake.stale_refresh_token_uses == 1  # let through, and still counted
    assert fake.grant_count("refresh_token") == 2


def test_a_rotated_away_refresh_token_is_dead_once_the_rotation_grace_ends(
    graced: Graced, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, post_token, first = graced
    now = _clock.now()
    monkeypatch.setattr(_clock, "now", lambda: now)
    refresh(post_token, first["refresh_token"])
    monkeypatch.setattr(_clock, "now", lambda: now + 30)
    assert_oauth_error(refresh(post_token, first["refresh_token"]), "invalid_grant")
    assert fake.stale_refresh_token_uses == 1


def test_the_rotation_grace_does_not_revive_a_revoked_grant(graced: Graced) -> None:
    fake, post_token, first = graced
    refresh(post_token, first["refresh_token"])
    fake.revoke_grants("test-open-id")
    assert_oauth_error(refresh(post_token, first["refresh_token"]), "invalid_grant")


def test_a_negative_rotation_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="rotation_grace"):
        FakeTikTok(rotation_grace=-1)


def test_newest_refresh_token_keeps_working(post_token: PostToken, login: Login) -> None:
    token = login()["refresh_token"]
    for _ in range(3):
        token = refresh(post_token, token).json()["refresh_token"]
    assert refresh(post_token, token).status_code == 200


def test_old_access_token_survives_refresh(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken, login: Login
) -> None:
    first = login()
    refresh(post_token, first["refresh_token"])
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    assert http.get(fake.user_info_url(), headers=bearer).status_code == 200


def test_refresh_with_scope_is_invalid_request(post_token: PostToken, login: Login) -> None:
    response = refresh(post_token, login()["refresh_token"], scope="user.info.basic")
    assert_oauth_error(response, "invalid_request")


def test_unknown_refresh_token_is_invalid_grant(post_token: PostToken) -> None:
    assert_oauth_error(refresh(post_token, "rft.unknown"), "invalid_grant")


def test_expired_refresh_token_is_invalid_grant(
    post_token: PostToken, login: Login, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = login()["refresh_token"]
    later = _clock.now() + 15552000 + 1
    monkeypatch.setattr(_clock, "now", lambda: later)
    assert_oauth_error(refresh(post_token, token), "invalid_grant")


def test_client_credentials_returns_a_client_token(post_token: PostToken) -> None:
    body = post_token(grant_type="client_credentials").json()
    assert body.pop("access_token").startswith("clt.")
    assert body == {"expires_in": 7200, "token_type": "Bearer"}


def test_unknown_grant_type_is_unsupported(post_token: PostToken) -> None:
    assert_oauth_error(post_token(grant_type="password"), "unsupported_grant_type")


@pytest.mark.parametrize(
    "credentials",
    [
        {"client_key": "other-key"},
        {"client_secret": "wrong-secret"},
        {"client_secret": None},
        {"client_key": None},
    ],
)
def test_wrong_client_credentials_are_invalid_client(
    post_token: PostToken, credentials: dict[str, str | None]
) -> None:
    response = post_token(grant_type="client_credentials", **credentials)
    assert_oauth_error(response, "invalid_client")


def test_client_id_parameter_is_invalid_request(post_token: PostToken) -> None:
    response = post_token(grant_type="client_credentials", client_id="test-key")
    assert_oauth_error(response, "invalid_request")


def test_basic_authorization_header_is_invalid_request(http: httpx.Client) -> None:
    response = http.post(
        "https://open.tiktokapis.com/v2/oauth/token/",
        data={"client_key": "test-key", "client_secret": "test-secret"}
        | {"grant_type": "client_credentials"},
        auth=("test-key", "test-secret"),
    )
    assert_oauth_error(response, "invalid_request")


def test_query_string_credentials_are_invalid_request(post_token: PostToken) -> None:
    url = "https://open.tiktokapis.com/v2/oauth/token/?client_secret=test-secret"
    assert_oauth_error(post_token(url, grant_type="client_credentials"), "invalid_request")


def test_json_body_is_invalid_request(http: httpx.Client) -> None:
    response = http.post(
        "https://open.tiktokapis.com/v2/oauth/token/",
        json={"client_key": "test-key", "client_secret": "test-secret"}
        | {"grant_type": "client_credentials"},
    )
    assert_oauth_error(response, "invalid_request")


def test_token_requests_records_every_form_in_order(fake: FakeTikTok, post_token: PostToken) -> None:
    post_token(grant_type="client_credentials")
    post_token(grant_type="client_credentials", client_secret="wrong")
    assert fake.token_requests == [
        {"client_key": "test-key", "client_secret": "test-secret", "grant_type": "client_credentials"},
        {"client_key": "test-key", "client_secret": "wrong", "grant_type": "client_credentials"},
    ]


def test_grant_count_counts_successes_per_grant_type(
    fake: FakeTikTok, post_token: PostToken, login: Login
) -> None:
    token = login()
    refresh(post_token, token["refresh_token"])
    refresh(post_token, token["refresh_token"])  # stale: not a success
    post_token(grant_type="client_credentials")
    assert fake.grant_count("authorization_code") == 1
    assert fake.grant_count("refresh_token") == 1
    assert fake.grant_count("client_credentials") == 1
    assert fake.grant_count("password") == 0


def test_issue_token_registers_a_usable_grant(fake: FakeTikTok, post_token: PostToken) -> None:
    body = fake.issue_token(open_id="seeded", scopes=("user.info.basic",), expires_in=60)
    assert body["open_id"] == "seeded"
    assert body["expires_in"] == 60
    assert body["scope"] == "user.info.basic"
    assert refresh(post_token, body["refresh_token"]).status_code == 200
    assert fake.grant_count("authorization_code") == 0
