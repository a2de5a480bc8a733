"""One table of auth behaviours, run through every HTTP client `TikTokAuth` drives, against the served fake.

Each client kind has one adapter (`open_api`: send a request, get its status and body); the tests are
written once and parametrised over the kinds. Sync clients run in threads (`asyncio.to_thread`), so the
concurrency test is real threads for them and real tasks for the async ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    MemoryTokenStore,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    _clock,
)
from tiktok_oauth.testing import FakeTikTok

niquests = pytest.importorskip("niquests")
aiohttp = pytest.importorskip("aiohttp")
requests = pytest.importorskip("requests")

SYNC_KINDS = ["requests", "httpx", "niquests"]
ASYNC_KINDS = ["httpx-async", "niquests-async", "aiohttp"]
KINDS = SYNC_KINDS + ASYNC_KINDS


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Send = Callable[[str, str, bytes | None], Awaitable[Reply]]


@dataclass
class Api:
    """One client kind, ready to send: `await api.get(url)`, `await api.post(url, body)`."""

    kind: str
    auth: TikTokAuth
    send: Send

    async def get(self, url: str) -> Reply:
        return await self.send("GET", url, None)

    async def post(self, url: str, body: bytes) -> Reply:
        return await self.send("POST", url, body)


def _headers(body: bytes | None) -> dict[str, str]:
    return {} if body is None else {"content-type": "application/json"}


@contextlib.asynccontextmanager
async def _sync_api(kind: str, client: TikTokOAuth2Client, auth: TikTokAuth) -> AsyncIterator[Api]:
    session: Any
    if kind == "httpx":
        session = httpx.Client(auth=auth, follow_redirects=True, limits=httpx.Limits(max_connections=64))

        def send(method: str, url: str, body: bytes | None) -> Reply:
            r = session.request(method, url, content=body, headers=_headers(body))
            return Reply(r.status_code, r.content)

    else:
        session = requests.Session() if kind == "requests" else niquests.Session()
        session.auth = auth

        def send(method: str, url: str, body: bytes | None) -> Reply:
            r = session.request(method, url, data=body, headers=_headers(body), timeout=10)
            return Reply(r.status_code, r.content)

    async def threaded(method: str, url: str, body: bytes | None) -> Reply:
        return await asyncio.to_thread(send, method, url, body)

    with client, session:
        yield Api(kind, auth, threaded)


@contextlib.asynccontextmanager
async def _async_api(kind: str, client: AsyncTikTokOAuth2Client, auth: TikTokAuth) -> AsyncIterator[Api]:
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(client)
        send: Send
        if kind == "httpx-async":
            limits = httpx.Limits(max_connections=64)
            api = await stack.enter_async_context(
                httpx.AsyncClient(auth=auth, follow_redirects=True, limits=limits, timeout=10)
            )

            async def send(method: str, url: str, body: bytes | None) -> Reply:
                r = await api.request(method, url, content=body, headers=_headers(body))
                return Reply(r.status_code, r.content)

        elif kind == "niquests-async":
            session = await stack.enter_async_context(niquests.AsyncSession(auth=auth, pool_maxsize=64))

            async def send(method: str, url: str, body: bytes | None) -> Reply:
                r = await session.request(method, url, data=body, headers=_headers(body), timeout=10)
                return Reply(r.status_code, r.content)

        else:
            from tiktok_oauth.integrations.aiohttp import middleware

            http = await stack.enter_async_context(aiohttp.ClientSession(middlewares=(middleware(auth),)))

            async def send(method: str, url: str, body: bytes | None) -> Reply:
                async with http.request(method, url, data=body, headers=_headers(body)) as r:
                    return Reply(r.status, await r.read())

        yield Api(kind, auth, send)


@contextlib.asynccontextmanager
async def open_api(kind: str, fake: FakeTikTok, base_url: str, store: MemoryTokenStore) -> AsyncIterator[Api]:
    """The client of `kind` with a `TikTokAuth` on `store`, its OAuth client on the served fake."""
    endpoints = fake.endpoints(base_url)
    if kind in SYNC_KINDS:
        client = TikTokOAuth2Client("test-key", SECRET, **endpoints)
        async with _sync_api(kind, client, TikTokAuth(client, store)) as api:
            yield api
    else:
        aclient = AsyncTikTokOAuth2Client("test-key", SECRET, **endpoints)
        async with _async_api(kind, aclient, TikTokAuth(aclient, store)) as api:
            yield api


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ASYNC_KINDS)
def async_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base_url:
        yield base_url


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


def stored(
    fake: FakeTikTok, store: MemoryTokenStore, *, expires_in: float | None = None, **kw: Any
) -> TikTokToken:
    token = TikTokToken(fake.issue_token(**kw))
    if expires_in is not None:
        token["expires_at"] = int(_clock.now() + expires_in)
    store.set("default", token)
    return token


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def authorizations(fake: FakeTikTok, path: str) -> list[str | None]:
    return [r.headers.get("authorization") for r in fake.requests if path in r.url]


USER_INFO = "/v2/user/info/"
VIDEO_LIST = "/v2/video/list/"


def test_a_fresh_token_is_sent_without_a_refresh(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    token = stored(fake, store)

    async def main() -> None:
        async with open_api(kind, fake, served, store) as api:
            for _ in range(2):
                reply = await api.get(fake.user_info_url(served))
                assert reply.status == 200
                assert reply.json()["data"]["user"]["open_id"] == "test-open-id"

    run(main)
    assert authorizations(fake, USER_INFO) == [f"Bearer {token.access_token}"] * 2
    assert fake.token_requests == []


def test_a_token_about_to_expire_is_refreshed_before_the_request(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    old = stored(fake, store, expires_in=30)  # within the default leeway of 60 s

    async def main() -> None:
        async with open_api(kind, fake, served, store) as api:
            assert (await api.get(fake.user_info_url(served))).status == 200

    run(main)
    new = store.get("default")
    assert new is not None
    assert new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token
    assert authorizations(fake, USER_INFO) == [f"Bearer {new.access_token}"]  # one request, no 401 first
    assert fake.grant_count("refresh_token") == 1


def test_a_401_access_token_invalid_refreshes_once_and_retries_the_body(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    old = stored(fake, store)

    async def main() -> None:
        async with open_api(kind, fake, served, store) as api:
            assert (await api.get(fake.user_info_url(served))).status == 200  # the auth now holds the token
            fake.expire_access_tokens()
            reply = await api.post(fake.video_list_url(served), b'{"max_count": 3}')
            assert reply.status == 200
            assert len(reply.json()["data"]["videos"]) == 3  # the retry carried the body

    run(main)
    new = store.get("default")
    assert new is not None
    assert new.access_token != old.access_token
    assert authorizations(fake, VIDEO_LIST) == [f"Bearer {old.access_token}", f"Bearer {new.access_token}"]
    assert [r.body for r in fake.requests if VIDEO_LIST in r.url] == [b'{"max_count": 3}'] * 2
    assert fake.grant_count("refresh_token") == 1


def test_a_401_that_stays_after_the_refresh_is_answered_not_retried_again(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    stored(fake, store)
    body = b'{"data":{},"error":{"code":"access_token_invalid","message":"no"}}'

    async def main() -> None:
        async with open_api(kind, fake, served, store) as api:
            fake.fail_next(401, body, times=2, endpoint="user_info")
            reply = await api.get(fake.user_info_url(served))
            assert reply.status == 401
            assert reply.json()["error"]["code"] == "access_token_invalid"

    run(main)
    assert len(authorizations(fake, USER_INFO)) == 2
    assert fake.grant_count("refresh_token") == 1


def test_a_401_scope_not_authorized_picks_up_another_stored_token_without_a_refresh(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore, request: pytest.FixtureRequest
) -> None:
    narrow = stored(fake, store, scopes=("user.info.basic",))

    async def main() -> None:
        async with open_api(kind, fake, served, store) as api:
            # The auth now holds the narrow token.
            assert (await api.get(fake.user_info_url(served))).status == 200
            denied = await api.post(fake.video_list_url(served), b"{}")
            assert denied.status == 401  # nothing better is stored: the 401 stands
            assert denied.json()["error"]["code"] == "scope_not_authorized"
            wide = stored(fake, store)  # the user logs in again, with video.list
            assert (await api.post(fake.video_list_url(served), b"{}")).status == 200
            assert authorizations(fake, VIDEO_LIST)[-2:] == [
                f"Bearer {narrow.access_token}",
                f"Bearer {wide.access_token}",
            ]

    run(main)
    assert fake.token_requests == []


def test_other_hosts_never_get_the_token(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    stored(fake, store)
    with fake.serve() as other:  # the same fake on another port: another host entry

        async def main() -> None:
            async with open_api(kind, fake, served, store) as api:
                assert (await api.get(fake.user_info_url(served))).status == 200
                assert (await api.get(fake.user_info_url(other))).status == 401

        run(main)
    assert [a is not None for a in authorizations(fake, USER_INFO)] == [True, False]
    assert fake.token_requests == []


def test_the_token_does_not_follow_a_redirect_to_another_host(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    token = stored(fake, store, expires_in=30)  # refreshed first: the slow path too
    with fake.serve() as other:

        async def main() -> None:
            async with open_api(kind, fake, served, store) as api:
                for _ in range(2):  # the refresh, then the fast path
                    fake.fail_next(302, b"", headers={"location": other + "/steal"}, endpoint="user_info")
                    await api.get(fake.user_info_url(served))

        run(main)
    stolen = [r for r in fake.requests if "/steal" in r.url]
    assert len(stolen) == 2
    assert [r.headers.get("authorization") for r in stolen] == [None, None]
    new = store.get("default")
    assert new is not None
    assert all(t not in json.dumps(r.headers) for r in stolen for t in (token.access_token, new.access_token))
    assert fake.grant_count("refresh_token") == 1


def test_concurrent_requests_refresh_once(
    kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    stored(fake, store, expires_in=-1)
    fake.token_delay = 0.3  # every request arrives while the refresh is under way

    async def main() -> None:
        async with open_api(kind, fake, served, store) as api:
            replies = await asyncio.gather(*(api.get(fake.user_info_url(served)) for _ in range(16)))
            assert [r.status for r in replies] == [200] * 16

    run(main)
    new = store.get("default")
    assert new is not None
    assert set(authorizations(fake, USER_INFO)) == {f"Bearer {new.access_token}"}
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


def test_a_request_cancelled_mid_refresh_leaves_the_rotated_token_stored(
    async_kind: str, fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    old = stored(fake, store, expires_in=-1)
    fake.token_delay = 1.0  # TikTok answers the refresh after the caller has given up

    async def main() -> None:
        async with open_api(async_kind, fake, served, store) as api:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(api.get(fake.user_info_url(served)), 0.3)  # the refresh is in flight
            for _ in range(500):  # the refresh finishes without its caller (bounded: 5 s)
                now = store.get("default")
                if now is not None and now.access_token != old.access_token:
                    break
                await asyncio.sleep(0.01)
            fake.token_delay = 0
            assert (await api.get(fake.user_info_url(served))).status == 200

    run(main)
    new = store.get("default")
    assert new is not None
    assert authorizations(fake, USER_INFO) == [f"Bearer {new.access_token}"]
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


# -- the client kinds' own edges ----------------------------------------------------------------------


def test_aiohttp_middleware_refuses_a_sync_client(fake: FakeTikTok, served: str) -> None:
    from tiktok_oauth.integrations.aiohttp import middleware

    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        pytest.raises(TypeError, match="AsyncTikTokOAuth2Client"),
    ):
        middleware(TikTokAuth(client))


def test_a_sync_niquests_session_with_an_async_client_names_the_client_to_use(
    fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    stored(fake, store, expires_in=-1)
    client = AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    with niquests.Session() as session:
        session.auth = TikTokAuth(client, store)
        with pytest.raises(TypeError, match="TikTokOAuth2Client"):
            session.get(fake.user_info_url(served))
    assert fake.token_requests == []


def test_only_an_async_clients_auth_has_the_niquests_async_driver(fake: FakeTikTok, served: str) -> None:
    from tiktok_oauth.auth._niquests import NiquestsAsyncDriver
    from tiktok_oauth.auth._requests import RequestsDriver

    sync_auth = TikTokAuth(TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)))
    async_auth = TikTokAuth(client=AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)))
    # `auth(request)` runs the driver's own `__call__`: the requests hot path, unchanged, for a sync client
    assert sync_auth.__call__.__func__ is RequestsDriver.__call__
    assert type(sync_auth.__call__.__self__) is RequestsDriver
    assert isinstance(async_auth.__call__.__self__, NiquestsAsyncDriver)
    assert type(sync_auth) is type(async_auth) is TikTokAuth  # one class, nothing assembled at run time
    assert isinstance(sync_auth, TikTokAuth)
    assert isinstance(async_auth, TikTokAuth)
    assert type(async_auth).__name__ == "TikTokAuth"


def test_aiohttp_does_not_replay_a_file_body_after_a_401(
    fake: FakeTikTok, served: str, store: MemoryTokenStore
) -> None:
    from tiktok_oauth.integrations.aiohttp import middleware

    stored(fake, store)
    fake.expire_access_tokens()

    async def main() -> int:
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            aiohttp.ClientSession(middlewares=(middleware(TikTokAuth(client, store)),)) as http,
            http.post(fake.video_list_url(served), data=io.BytesIO(b'{"max_count": 3}')) as response,
        ):
            return response.status

    assert asyncio.run(main()) == 401
    assert len(authorizations(fake, VIDEO_LIST)) == 1
    assert fake.token_requests == []
