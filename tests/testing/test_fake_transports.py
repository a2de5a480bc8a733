"""FakeTikTok through each way in: httpx async, requests, and the served loopback server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
import requests

from tiktok_oauth.testing import FakeTikTok

CLIENT = {"client_key": "test-key", "client_secret": "test-secret"}
TOKEN_URL = "https://open.tiktokapis.com/v2/oauth/token/"


def test_async_transport_answers_the_token_endpoint(fake: FakeTikTok) -> None:
    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=fake.async_transport()) as client:
            return await client.post(TOKEN_URL, data=CLIENT | {"grant_type": "client_credentials"})

    assert asyncio.run(main()).json()["access_token"].startswith("clt.")


def test_async_transport_raises_read_timeout(fake: FakeTikTok) -> None:
    fake.timeout_next()

    async def main() -> None:
        async with httpx.AsyncClient(transport=fake.async_transport()) as client:
            await client.post(TOKEN_URL, data=CLIENT | {"grant_type": "client_credentials"})

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(main())


def test_async_token_delay_does_not_block_the_loop(fake: FakeTikTok) -> None:
    fake.token_delay = 0.2

    async def main() -> float:
        async with httpx.AsyncClient(transport=fake.async_transport()) as client:
            form = CLIENT | {"grant_type": "client_credentials"}
            started = time.monotonic()
            await asyncio.gather(*(client.post(TOKEN_URL, data=form) for _ in range(5)))
            return time.monotonic() - started

    assert 0.2 <= asyncio.run(main()) < 0.9


def test_httpx2_transport_uses_httpx2_types(fake: FakeTikTok) -> None:
    fake.timeout_next(endpoint="user_info")
    with httpx2.Client(transport=fake.transport(httpx_module=httpx2)) as client:  # type: ignore[arg-type]
        response = client.post(TOKEN_URL, data=CLIENT | {"grant_type": "client_credentials"})
        assert response.json()["token_type"] == "Bearer"
        with pytest.raises(httpx2.ReadTimeout):
            client.get(fake.user_info_url())


def test_requests_adapter_answers_tiktoks_hosts(fake: FakeTikTok) -> None:
    with requests.Session() as session:
        fake.mount(session)
        token = fake.issue_token()["access_token"]
        response = session.get(fake.user_info_url(), headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 200
    assert response.json()["data"]["user"]["open_id"] == "test-open-id"
    assert response.headers["Content-Type"].startswith("application/json")


def test_requests_adapter_posts_forms_to_the_token_endpoint(fake: FakeTikTok) -> None:
    with requests.Session() as session:
        fake.mount(session)
        response = session.post(TOKEN_URL, data=CLIENT | {"grant_type": "client_credentials"}, timeout=5)
    assert response.json()["expires_in"] == 7200
    assert fake.token_requests[-1]["grant_type"] == "client_credentials"


def test_requests_adapter_raises_requests_read_timeout(fake: FakeTikTok) -> None:
    fake.timeout_next()
    with requests.Session() as session:
        fake.mount(session)
        with pytest.raises(requests.exceptions.ReadTimeout):
            session.post(TOKEN_URL, data=CLIENT | {"grant_type": "client_credentials"}, timeout=5)


def test_requests_adapter_authorize_answers_the_consent_form_with_302(
    fake: FakeTikTok, auth_url: Callable[..., str]
) -> None:
    with requests.Session() as session:
        fake.mount(session)
        page = session.get(auth_url(), allow_redirects=False, timeout=5)
        form = {"open_id": "test-open-id", "decision": "authorize"}
        response = session.post(auth_url(), data=form, allow_redirects=False, timeout=5)
    assert page.status_code == 200
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://app.example/callback?code=")


def test_endpoints_point_at_the_base_url(fake: FakeTikTok) -> None:
    assert fake.endpoints("http://127.0.0.1:1234/") == {
        "authorize_url": "http://127.0.0.1:1234/v2/auth/authorize/",
        "token_url": "http://127.0.0.1:1234/v2/oauth/token/",
        "revoke_url": "http://127.0.0.1:1234/v2/oauth/revoke/",
    }


def test_served_consent_form_redirects_to_the_callback(
    fake: FakeTikTok, auth_url: Callable[..., str]
) -> None:
    with fake.serve() as base_url:
        url = auth_url().replace("https://www.tiktok.com", base_url)
        response = httpx.post(url, data={"open_id": "test-open-id", "decision": "authorize"})
    assert response.status_code == 302
    callback = response.headers["location"]
    assert callback.startswith("https://app.example/callback?code=")
    assert "%2A0%21" in callback


def test_served_invalid_authorize_url_is_a_400_html_page(
    fake: FakeTikTok, auth_url: Callable[..., str]
) -> None:
    with fake.serve() as base_url:
        url = auth_url(client_id="test-key").replace("https://www.tiktok.com", base_url)
        response = httpx.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "client_id" in response.text


def test_served_full_flow_over_real_http(fake: FakeTikTok, auth_url: Callable[..., str]) -> None:
    with fake.serve() as base_url, httpx.Client() as client:
        endpoints = fake.endpoints(base_url)
        url = auth_url().replace("https://www.tiktok.com/v2/auth/authorize/", endpoints["authorize_url"])
        consent = {"open_id": "test-open-id", "decision": "authorize"}
        callback = client.post(url, data=consent).headers["location"]
        code = parse_qs(urlsplit(callback).query)["code"][0]
        form = CLIENT | {"grant_type": "authorization_code", "code": code}
        form |= {"redirect_uri": "https://app.example/callback", "code_verifier": "verifier-" + "x" * 50}
        token = client.post(endpoints["token_url"], data=form).json()
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        info = client.get(fake.user_info_url(base_url), headers=bearer)  # keep-alive connection
        revoked = client.post(endpoints["revoke_url"], data=CLIENT | {"token": token["access_token"]})
    assert info.json()["data"]["user"]["open_id"] == "test-open-id"
    assert revoked.status_code == 200
    assert revoked.content == b""


def test_served_server_answers_requests(fake: FakeTikTok) -> None:
    token = fake.issue_token()["access_token"]
    with fake.serve() as base_url, requests.Session() as session:
        response = session.get(
            fake.user_info_url(base_url), headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
    assert response.status_code == 200
    assert fake.requests[-1].headers["authorization"] == f"Bearer {token}"


def test_served_timeout_closes_the_connection_without_answering(fake: FakeTikTok) -> None:
    fake.serve_timeout_delay = 0.2
    fake.timeout_next()
    with fake.serve() as base_url, httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(
                fake.endpoints(base_url)["token_url"],
                data=CLIENT | {"grant_type": "client_credentials"},
            )
        after = client.post(
            fake.endpoints(base_url)["token_url"], data=CLIENT | {"grant_type": "client_credentials"}
        )
    assert after.status_code == 200


def test_served_timeout_is_a_read_timeout_for_a_short_client_timeout(fake: FakeTikTok) -> None:
    fake.timeout_next()
    started = time.monotonic()
    with fake.serve() as base_url, pytest.raises(httpx.ReadTimeout):
        httpx.post(
            fake.endpoints(base_url)["token_url"],
            data=CLIENT | {"grant_type": "client_credentials"},
            timeout=0.2,
        )
    assert time.monotonic() - started < 1.5  # shutdown interrupted the 2 s wait


def test_serve_stops_the_server_on_exit(fake: FakeTikTok) -> None:
    with fake.serve() as base_url:
        pass
    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + "/v2/user/info/")


def test_served_unknown_path_is_404(fake: FakeTikTok) -> None:
    with fake.serve() as base_url:
        assert httpx.get(base_url + "/nope").status_code == 404
