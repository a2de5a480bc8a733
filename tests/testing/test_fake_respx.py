"""FakeTikTok inside a respx router: TikTok's hosts answered by the fake, every other route left alone."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from respx.models import AllMockedAssertionError

from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokOAuth2Client, TikTokServerError
from tiktok_oauth.testing import FakeTikTok

TOKEN_URL = "https://open.tiktokapis.com/v2/oauth/token/"


def test_a_login_runs_against_the_fake_inside_a_respx_router(fake: FakeTikTok) -> None:
    with respx.mock(assert_all_called=True) as router:
        route = fake.respx(router)
        with (
            httpx.Client() as http,  # respx mocks httpx: the OAuth client borrows one
            TikTokOAuth2Client("test-key", "test-secret", http_client=http) as client,
        ):
            verifier = client.generate_code_verifier()
            url, state = client.create_authorization_url(code_verifier=verifier)
            callback = fake.authorize(url, open_id="alice")
            token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)

    assert token.open_id == "alice"
    assert route.call_count == 1
    assert fake.token_requests[-1]["grant_type"] == "authorization_code"


def test_other_hosts_stay_with_the_users_routes(fake: FakeTikTok) -> None:
    with respx.mock(assert_all_called=True) as router:
        mine = router.get("https://api.example/things").respond(json={"things": 3})
        tiktok = fake.respx(router)
        with httpx.Client() as http:
            assert http.get("https://api.example/things").json() == {"things": 3}
            http.get(fake.user_info_url())

    assert (mine.call_count, tiktok.call_count) == (1, 1)
    assert [request.url for request in fake.requests] == [fake.user_info_url()]


def test_a_tiktok_route_added_first_wins(fake: FakeTikTok) -> None:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).respond(json={"error": "server_error"}, status_code=503)
        fake.respx(router)
        with httpx.Client() as http:
            assert http.post(TOKEN_URL, data={}).status_code == 503
            assert http.get(fake.user_info_url()).status_code == 401  # the fake: no token sent

    assert len(fake.requests) == 1


def test_unmatched_hosts_are_not_sent_to_the_fake(fake: FakeTikTok) -> None:
    with respx.mock(assert_all_called=False) as router:
        fake.respx(router)
        with httpx.Client() as http, pytest.raises(AllMockedAssertionError):
            http.get("https://open.tiktokapis.com.evil.example/v2/user/info/")

    assert fake.requests == []


def test_async_clients_and_faults_go_through_the_fake(fake: FakeTikTok) -> None:
    fake.fail_next(status=503, times=1)

    async def main() -> str:
        async with (
            httpx.AsyncClient() as http,
            AsyncTikTokOAuth2Client("test-key", "test-secret", http_client=http) as client,
        ):
            return (await client.fetch_client_token()).access_token

    with respx.mock(assert_all_called=True) as router:
        route = fake.respx(router)
        assert asyncio.run(main()).startswith("clt.")

    assert route.call_count == 2  # the 503, then the retry


def test_a_lost_response_is_a_read_timeout(fake: FakeTikTok) -> None:
    fake.timeout_next()
    with respx.mock(assert_all_called=True) as router:
        fake.respx(router)
        with (
            httpx.Client() as http,
            TikTokOAuth2Client("test-key", "test-secret", http_client=http) as client,
            pytest.raises(TikTokServerError),
        ):
            client.refresh_token("rft.unknown")
