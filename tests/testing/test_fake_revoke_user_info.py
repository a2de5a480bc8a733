"""FakeTikTok's revoke and user info endpoints, and routing of unknown requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tiktok_oauth.testing import FakeTikTok

PostToken = Callable[..., httpx.Response]
Login = Callable[..., dict[str, Any]]
REVOKE_URL = "https://open.tiktokapis.com/v2/oauth/revoke/"


def user_info(fake: FakeTikTok, http: httpx.Client, token: str) -> httpx.Response:
    return http.get(fake.user_info_url(), headers={"Authorization": f"Bearer {token}"})


def test_user_info_returns_requested_fields_in_the_envelope(
    fake: FakeTikTok, http: httpx.Client, login: Login
) -> None:
    response = user_info(fake, http, login()["access_token"])
    body = response.json()
    assert response.status_code == 200
    assert body["error"]["code"] == "ok"
    assert body["error"]["message"] == ""
    assert len(body["error"]["log_id"]) == 34
    assert sorted(body["data"]["user"]) == ["avatar_url", "display_name", "open_id", "union_id"]
    assert body["data"]["user"]["open_id"] == "test-open-id"


def test_user_info_returns_only_requested_fields(http: httpx.Client, fake: FakeTikTok, login: Login) -> None:
    response = http.get(
        "https://open.tiktokapis.com/v2/user/info/?fields=open_id,display_name",
        headers={"Authorization": f"Bearer {login()['access_token']}"},
    )
    assert sorted(response.json()["data"]["user"]) == ["display_name", "open_id"]


def test_user_info_without_fields_is_400_invalid_params(http: httpx.Client, login: Login) -> None:
    response = http.get(
        "https://open.tiktokapis.com/v2/user/info/",
        headers={"Authorization": f"Bearer {login()['access_token']}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_params"


def test_user_info_with_unknown_token_is_401(fake: FakeTikTok, http: httpx.Client) -> None:
    response = user_info(fake, http, "act.unknown")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "access_token_invalid"


def test_user_info_without_authorization_is_401(fake: FakeTikTok, http: httpx.Client) -> None:
    response = http.get(fake.user_info_url())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "access_token_invalid"


def test_user_info_with_client_token_is_401(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken
) -> None:
    token = post_token(grant_type="client_credentials").json()["access_token"]
    assert user_info(fake, http, token).status_code == 401


def test_user_info_without_user_info_basic_is_scope_not_authorized(
    fake: FakeTikTok, http: httpx.Client
) -> None:
    token = fake.issue_token(scopes=("video.list",))["access_token"]
    response = user_info(fake, http, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "scope_not_authorized"


def test_expire_access_tokens_makes_user_info_401(fake: FakeTikTok, http: httpx.Client, login: Login) -> None:
    token = login()["access_token"]
    fake.expire_access_tokens()
    response = user_info(fake, http, token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "access_token_invalid"


def test_refresh_after_expiry_gives_a_working_token(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken, login: Login
) -> None:
    first = login()
    fake.expire_access_tokens()
    second = post_token(grant_type="refresh_token", refresh_token=first["refresh_token"]).json()
    assert user_info(fake, http, second["access_token"]).status_code == 200


def test_revoke_answers_200_with_an_empty_body(post_token: PostToken, login: Login) -> None:
    response = post_token(REVOKE_URL, token=login()["access_token"])
    assert response.status_code == 200
    assert response.content == b""


def test_revoke_kills_the_access_token(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken, login: Login
) -> None:
    token = login()["access_token"]
    post_token(REVOKE_URL, token=token)
    assert user_info(fake, http, token).status_code == 401


def test_revoke_kills_the_refresh_token(post_token: PostToken, login: Login) -> None:
    body = login()
    post_token(REVOKE_URL, token=body["access_token"])
    response = post_token(grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert response.json()["error"] == "invalid_grant"


def test_revoke_leaves_other_grants_alone(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken, login: Login
) -> None:
    kept, revoked = login(), login()
    post_token(REVOKE_URL, token=revoked["access_token"])
    assert user_info(fake, http, kept["access_token"]).status_code == 200


def test_revoke_with_token_type_hint_is_invalid_request(post_token: PostToken, login: Login) -> None:
    response = post_token(REVOKE_URL, token=login()["access_token"], token_type_hint="access_token")
    assert response.json()["error"] == "invalid_request"


def test_revoke_of_a_refresh_token_is_invalid_request(post_token: PostToken, login: Login) -> None:
    response = post_token(REVOKE_URL, token=login()["refresh_token"])
    assert response.status_code == 200
    assert response.json()["error"] == "invalid_request"


def test_revoke_with_wrong_secret_is_invalid_client(post_token: PostToken, login: Login) -> None:
    response = post_token(REVOKE_URL, token=login()["access_token"], client_secret="wrong")
    assert response.json()["error"] == "invalid_client"


def test_unknown_path_is_404_and_recorded(fake: FakeTikTok, http: httpx.Client) -> None:
    response = http.get("https://open.tiktokapis.com/v2/video/list/")
    assert response.status_code == 404
    assert fake.requests[-1].url == "https://open.tiktokapis.com/v2/video/list/"


def test_unknown_host_is_404_and_recorded(fake: FakeTikTok, http: httpx.Client) -> None:
    response = http.post("https://evil.example/v2/oauth/token/", data={"a": "b"})
    assert response.status_code == 404
    assert fake.requests[-1].url == "https://evil.example/v2/oauth/token/"
    assert fake.token_requests == []


def test_requests_record_where_authorization_went(fake: FakeTikTok, http: httpx.Client, login: Login) -> None:
    token = login()["access_token"]
    user_info(fake, http, token)
    recorded = fake.requests[-1]
    assert recorded.method == "GET"
    assert recorded.url == fake.user_info_url()
    assert recorded.headers["authorization"] == f"Bearer {token}"
    assert recorded.body == b""
