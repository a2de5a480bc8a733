"""FakeTikTok's fault injection: fail_next, timeout_next and token_delay."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tiktok_oauth.testing import FakeTikTok

PostToken = Callable[..., httpx.Response]
Login = Callable[..., dict[str, Any]]


def test_fail_next_answers_the_given_status_body_and_headers(fake: FakeTikTok, post_token: PostToken) -> None:
    fake.fail_next(502, b"bad gateway", headers={"Retry-After": "3"})
    response = post_token(grant_type="client_credentials")
    assert response.status_code == 502
    assert response.content == b"bad gateway"
    assert response.headers["retry-after"] == "3"


def test_fail_next_defaults_to_a_tiktok_shaped_503(fake: FakeTikTok, post_token: PostToken) -> None:
    fake.fail_next()
    response = post_token(grant_type="client_credentials")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_fail_next_lasts_the_given_number_of_times(fake: FakeTikTok, post_token: PostToken) -> None:
    fake.fail_next(500, times=2)
    statuses = [post_token(grant_type="client_credentials").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]


def test_fail_next_changes_no_state(fake: FakeTikTok, post_token: PostToken, login: Login) -> None:
    token = login()["refresh_token"]
    fake.fail_next()
    post_token(grant_type="refresh_token", refresh_token=token)
    assert post_token(grant_type="refresh_token", refresh_token=token).status_code == 200
    assert fake.grant_count("refresh_token") == 1


def test_fail_next_only_hits_its_endpoint(
    fake: FakeTikTok, http: httpx.Client, post_token: PostToken, login: Login
) -> None:
    token = login()["access_token"]
    fake.fail_next(500, endpoint="user_info")
    assert post_token(grant_type="client_credentials").status_code == 200
    response = http.get(fake.user_info_url(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_fail_next_with_no_endpoint_hits_any_request(fake: FakeTikTok, http: httpx.Client) -> None:
    fake.fail_next(418, b"", endpoint=None)
    assert http.get("https://open.tiktokapis.com/anything").status_code == 418


def test_fail_next_rejects_an_unknown_endpoint(fake: FakeTikTok) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        fake.fail_next(endpoint="tokens")


def test_timeout_next_raises_read_timeout_without_processing(
    fake: FakeTikTok, post_token: PostToken, login: Login
) -> None:
    token = login()["refresh_token"]
    fake.timeout_next()
    with pytest.raises(httpx.ReadTimeout):
        post_token(grant_type="refresh_token", refresh_token=token)
    assert post_token(grant_type="refresh_token", refresh_token=token).status_code == 200


def test_timeout_next_processed_rotates_but_loses_the_response(
    fake: FakeTikTok, post_token: PostToken, login: Login
) -> None:
    token = login()["refresh_token"]
    fake.timeout_next(processed=True)
    with pytest.raises(httpx.ReadTimeout):
        post_token(grant_type="refresh_token", refresh_token=token)
    response = post_token(grant_type="refresh_token", refresh_token=token)
    assert response.json()["error"] == "invalid_grant"
    assert fake.stale_refresh_token_uses == 1
    assert fake.grant_count("refresh_token") == 1


def test_timeout_next_requests_are_still_recorded(fake: FakeTikTok, post_token: PostToken) -> None:
    fake.timeout_next()
    with pytest.raises(httpx.ReadTimeout):
        post_token(grant_type="client_credentials")
    assert fake.token_requests[-1]["grant_type"] == "client_credentials"
    assert len(fake.requests) == 1


def test_timeout_next_on_user_info(fake: FakeTikTok, http: httpx.Client) -> None:
    fake.timeout_next(endpoint="user_info")
    with pytest.raises(httpx.ReadTimeout):
        http.get(fake.user_info_url())


def test_token_delay_holds_token_requests(fake: FakeTikTok, post_token: PostToken) -> None:
    fake.token_delay = 0.2
    started = time.monotonic()
    post_token(grant_type="client_credentials")
    assert time.monotonic() - started >= 0.2


def test_token_delay_does_not_hold_the_lock(fake: FakeTikTok) -> None:
    fake.token_delay = 0.5
    token = fake.issue_token()["access_token"]

    def post_slowly() -> None:
        with httpx.Client(transport=fake.transport()) as slow:
            slow.post("https://open.tiktokapis.com/v2/oauth/token/", data={"grant_type": "x"})

    worker = threading.Thread(target=post_slowly)
    worker.start()
    time.sleep(0.05)
    started = time.monotonic()
    with httpx.Client(transport=fake.transport()) as http:
        response = http.get(fake.user_info_url(), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert time.monotonic() - started < 0.3
    worker.join()


def test_concurrent_refreshes_with_one_token_rotate_once(fake: FakeTikTok) -> None:
    fake.token_delay = 0.05
    token = fake.issue_token()["refresh_token"]
    results: list[dict[str, Any]] = []

    def refresh() -> None:
        with httpx.Client(transport=fake.transport()) as http:
            form = {"client_key": "test-key", "client_secret": "test-secret"}
            form |= {"grant_type": "refresh_token", "refresh_token": token}
            results.append(http.post("https://open.tiktokapis.com/v2/oauth/token/", data=form).json())

    workers = [threading.Thread(target=refresh) for _ in range(5)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum("access_token" in result for result in results) == 1
    assert fake.stale_refresh_token_uses == 4
