"""`TikTokAuth` on the SQL stores: one refresh for many auth objects, each with a store and engine of its own.

Every auth object here has its own store object (and so its own engine and pool), as separate workers of a
web app would: only the database's lock (advisory lock, or the file lock beside SQLite) keeps them from
refreshing twice. The fake is served on loopback with a slow token endpoint, to widen the race.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import SECRET
from tests.stores._sql_backends import psycopg_url, unique_table
from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokAuth, TikTokOAuth2Client, TikTokToken, _clock
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore
from tiktok_oauth.testing import FakeTikTok

KEY = "shared-user"
USERS = 8


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A URL and a table of this test's."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tokens.db", "tiktok_oauth_tokens"
    url: str = request.getfixturevalue("postgres_url")
    return url, unique_table(request, url)


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    fake.token_delay = 0.3
    with fake.serve() as base_url:
        yield base_url


def _expired(fake: FakeTikTok) -> TikTokToken:
    token = TikTokToken(fake.issue_token())
    token["expires_at"] = int(_clock.now()) - 1
    return token


def _seed(url: str, table: str, token: TikTokToken) -> None:
    with SQLTokenStore(url, table=table) as store:
        store.set(KEY, token)


def test_auth_objects_on_threads_with_stores_of_their_own_refresh_once(
    database: tuple[str, str], fake: FakeTikTok, served: str
) -> None:
    url, table = database
    _seed(url, table, _expired(fake))
    engines = [sa.create_engine(psycopg_url(url)) for _ in range(USERS)]
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    barrier = threading.Barrier(USERS)

    def request(n: int) -> int:
        auth = TikTokAuth(client, SQLTokenStore(engines[n], table=table), KEY)
        with httpx.Client(auth=auth) as http:
            barrier.wait()
            return http.get(fake.user_info_url(served)).status_code

    try:
        with client, ThreadPoolExecutor(USERS) as pool:
            statuses = list(pool.map(request, range(USERS)))
    finally:
        for engine in engines:
            engine.dispose()
    assert statuses == [200] * USERS
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


def test_async_auth_objects_with_async_stores_of_their_own_refresh_once(
    database: tuple[str, str], fake: FakeTikTok, served: str
) -> None:
    url, table = database
    _seed(url, table, _expired(fake))

    async def scenario() -> list[int]:
        client = AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
        stores = [AsyncSQLTokenStore(url, table=table) for _ in range(USERS)]

        async def request(store: AsyncSQLTokenStore) -> int:
            async with httpx.AsyncClient(auth=TikTokAuth(client, store, KEY)) as http:
                return (await http.get(fake.user_info_url(served))).status_code

        try:
            return list(await asyncio.gather(*(request(store) for store in stores)))
        finally:
            for store in stores:
                await store.aclose()
            await client.aclose()

    assert asyncio.run(scenario()) == [200] * USERS
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


def test_sync_stores_under_httpx_async_client_refresh_once(
    database: tuple[str, str], fake: FakeTikTok, served: str
) -> None:
    url, table = database
    _seed(url, table, _expired(fake))
    stores = [SQLTokenStore(url, table=table) for _ in range(4)]

    async def scenario() -> list[int]:
        client = AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))

        async def request(store: SQLTokenStore) -> int:
            async with httpx.AsyncClient(auth=TikTokAuth(client, store, KEY)) as http:
                return (await http.get(fake.user_info_url(served))).status_code

        try:
            return list(await asyncio.gather(*(request(store) for store in stores)))
        finally:
            await client.aclose()

    try:
        statuses = asyncio.run(scenario())
    finally:
        for store in stores:
            store.close()
    assert statuses == [200] * 4
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0
