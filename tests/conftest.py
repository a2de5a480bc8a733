"""Shared fixtures: a FakeTikTok reached four ways (sync/async, in-process transport/served on loopback)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests._postgres import PostgresServer, require_postgres
from tests._redis import RedisServer, require_redis_server
from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokOAuth2Client, _clock
from tiktok_oauth.testing import FakeTikTok

SECRET = "SUPER-SECRET-client-secret-0xDEADBEEF"  # easy to spot if it ever leaks
#: The harness clients' timeout: generous, so a served fake on a busy machine is never cut off. Tests of
#: a lost answer do not wait for it: the served fake closes the connection after `serve_timeout_delay`.
HARNESS_TIMEOUT = 10.0


@dataclass
class Harness:
    """One way of talking to the fake: a client and a runner that makes sync and async calls alike."""

    fake: FakeTikTok
    client: TikTokOAuth2Client | AsyncTikTokOAuth2Client
    run: Callable[[Any], Any]
    mode: str

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.run(getattr(self.client, method)(*args, **kwargs))


def token_request_arrived(fake: FakeTikTok, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event set when a token request reaches `fake` (served: before its `token_delay`), so a test can
    act at the moment TikTok has the refresh and has not answered yet."""
    arrived = threading.Event()
    delay = fake.request_delay

    def noting(method: str, url: str) -> float:
        if "/oauth/token/" in url:
            arrived.set()
        return delay(method, url)

    monkeypatch.setattr(fake, "request_delay", noting)
    return arrived


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok(client_key="test-key", client_secret=SECRET)


def _sync_run(value: Any) -> Any:
    return value


@pytest.fixture(params=["sync-transport", "sync-served", "async-transport", "async-served"])
def harness(request: pytest.FixtureRequest, fake: FakeTikTok) -> Iterator[Harness]:
    mode: str = request.param
    is_async, how = mode.split("-", maxsplit=1)[0] == "async", mode.split("-")[1]
    with _endpoints(fake, how) as (endpoints, http_client):
        if not is_async:
            client = TikTokOAuth2Client(
                "test-key", SECRET, http_client=http_client, timeout=HARNESS_TIMEOUT, **endpoints
            )
            with client:
                yield Harness(fake, client, _sync_run, mode)
            return
        loop = asyncio.new_event_loop()
        async_http = httpx.AsyncClient(transport=fake.async_transport()) if how == "transport" else None
        aclient = AsyncTikTokOAuth2Client(
            "test-key", SECRET, http_client=async_http, timeout=HARNESS_TIMEOUT, **endpoints
        )
        try:
            yield Harness(fake, aclient, loop.run_until_complete, mode)
        finally:
            loop.run_until_complete(aclient.aclose())
            if async_http is not None:
                loop.run_until_complete(async_http.aclose())
            loop.close()


@contextmanager
def _endpoints(fake: FakeTikTok, how: str) -> Iterator[tuple[dict[str, str], httpx.Client | None]]:
    if how == "served":
        with fake.serve() as base_url:
            yield fake.endpoints(base_url), None
    else:
        with httpx.Client(transport=fake.transport()) as http:
            yield {}, http


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the library's (and the fake's) clock forward without sleeping."""
    offset = [0.0]
    real = _clock.now
    monkeypatch.setattr(_clock, "now", lambda: real() + offset[0])

    def advance(seconds: float) -> None:
        offset[0] += seconds

    return advance


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (fail in CI, skip elsewhere when not installed)."""
    with RedisServer(require_redis_server()) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Any]:
    """A sync client on a flushed database, closed afterwards."""
    client = redis_server.client()
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server (initdb + pg_ctl) for the whole session (fail in CI, skip elsewhere when missing)."""
    with PostgresServer(require_postgres()) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """`postgresql://postgres@127.0.0.1:<port>/postgres` of the session's server."""
    return postgres_server.url
