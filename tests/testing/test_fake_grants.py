"""FakeTikTok's `revoke_grants(open_id)` and `expire_access_tokens(open_id=)`: one user's tokens die."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tiktok_oauth import TikTokAuth, TikTokOAuth2Client, TikTokToken
from tiktok_oauth.stores import MemoryTokenStore
from tiktok_oauth.testing import FakeTikTok

PostToken = Callable[..., httpx.Response]


def user_info(fake: FakeTikTok, http: httpx.Client, token: str) -> httpx.Response:
    return http.get(fake.user_info_url(), headers={"Authorization": f"Bearer {token}"})


def video_list(fake: FakeTikTok, http: httpx.Client, token: str) -> httpx.Response:
    return http.post(fake.video_list_url(), headers={"Authorization": f"Bearer {token}"}, json={})


def refresh(post_token: PostToken, body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = post_token(
        grant_type="refresh_token", refresh_token=body["refresh_token"]
    ).json()
    return answer


def test_revoke_grants_kills_every_access_token_of_the_user(fake: FakeTikTok, http: httpx.Client) -> None:
    first, second = fake.issue_token(open_id="alice"), fake.issue_token(open_id="alice")
    fake.revoke_grants("alice")
    for body in (first, second):
        for call in (user_info, video_list):
            response = call(fake, http, body["access_token"])
            assert (response.status_code, response.json()["error"]["code"]) == (401, "access_token_invalid")


def test_revoke_grants_kills_the_refresh_tokens(fake: FakeTikTok, post_token: PostToken) -> None:
    body = fake.issue_token(open_id="alice")
    fake.revoke_grants("alice")
    assert refresh(post_token, body)["error"] == "invalid_grant"


def test_revoke_grants_kills_refreshed_tokens_too(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken
) -> None:
    rotated = refresh(post_token, fake.issue_token(open_id="alice"))
    fake.revoke_grants("alice")
    assert user_info(fake, http, rotated["access_token"]).status_code == 401
    assert refresh(post_token, rotated)["error"] == "invalid_grant"


def test_revoke_grants_leaves_other_users_alone(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken
) -> None:
    bob = fake.issue_token(open_id="bob")
    fake.revoke_grants("alice")
    assert user_info(fake, http, bob["access_token"]).status_code == 200
    assert "access_token" in refresh(post_token, bob)


def test_a_login_after_revoke_grants_works(fake: FakeTikTok, http: httpx.Client) -> None:
    fake.issue_token(open_id="alice")
    fake.revoke_grants("alice")
    again = fake.issue_token(open_id="alice")
    assert user_info(fake, http, again["access_token"]).status_code == 200


def test_expire_access_tokens_of_one_user(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken
) -> None:
    alice, bob = fake.issue_token(open_id="alice"), fake.issue_token(open_id="bob")
    fake.expire_access_tokens(open_id="alice")
    assert video_list(fake, http, alice["access_token"]).status_code == 401
    assert video_list(fake, http, bob["access_token"]).status_code == 200
    fresh = refresh(post_token, alice)  # the refresh token still works
    assert video_list(fake, http, fresh["access_token"]).status_code == 200


def test_expire_access_tokens_for_everyone_by_default(fake: FakeTikTok, http: httpx.Client) -> None:
    alice, bob = fake.issue_token(open_id="alice"), fake.issue_token(open_id="bob")
    fake.expire_access_tokens()
    assert user_info(fake, http, alice["access_token"]).status_code == 401
    assert user_info(fake, http, bob["access_token"]).status_code == 401


def test_the_auth_object_refreshes_once_after_one_users_expiry(fake: FakeTikTok) -> None:
    with (
        httpx.Client(transport=fake.transport()) as http,
        TikTokOAuth2Client("test-key", "test-secret", http_client=http) as client,
    ):
        store = MemoryTokenStore()
        store.set("alice", TikTokToken(fake.issue_token(open_id="alice")))
        store.set("bob", TikTokToken(fake.issue_token(open_id="bob")))
        fake.expire_access_tokens(open_id="alice")
        for key in ("alice", "bob"):
            response = http.post(fake.video_list_url(), json={}, auth=TikTokAuth(client, store, key=key))
            assert response.status_code == 200
    assert fake.grant_count("refresh_token") == 1
    assert fake.token_requests[-1]["refresh_token"] != store.get("alice").refresh_token  # type: ignore[union-attr]
