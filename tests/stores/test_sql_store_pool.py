"""A SQL store made from a URL owns its engine: a pool sized for its locks, `pool_size`, and forked children.

A held PostgreSQL lock keeps one pooled connection, and the held key's reads and writes run on it, so a
holder never waits for a connection another holder keeps: any number of concurrent refreshes works, those
beyond `pool_size` waiting their turn. A forked child gets a pool of its own (the parent's sockets are
never shared).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import SECRET
from tests.stores._sql_backends import unique_table
from tests.stores._tokens import make_token
from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokAuth, TikTokOAuth2Client, TikTokToken, _clock
from tiktok_oauth.stores import from_url
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore
from tiktok_oauth.testing import FakeTikTok

#: More callers than the pool has connections, each refreshing a key of its own.
CALLERS = 40
POOL_SIZE = 8


@pytest.fixture
def table(request: pytest.FixtureRequest, postgres_url: str) -> str:
    return unique_table(request, postgres_url)


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    fake.token_delay = 0.1  # every refresh holds its lock a while: the callers overlap
    with fake.serve() as base_url:
        yield base_url


def _expired(fake: FakeTikTok, n: int) -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=f"user-{n}"))
    token["expires_at"] = int(_clock.now()) - 1
    return token


# -- pool_size ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["keyword", "url", "from_url"])
def test_pool_size_sizes_the_pool_of_a_store_made_from_a_url(
    postgres_url: str, table: str, spelling: str
) -> None:
    if spelling == "keyword":
        store = SQLTokenStore(postgres_url, table=table, pool_size=3)
    elif spelling == "url":
        store = SQLTokenStore(f"{postgres_url}?pool_size=3", table=table)
    else:
        store = from_url(f"{postgres_url}?pool_size=3")
    with store:
        assert store.pool_size == 3
        assert store.engine.pool.size() == 3
        assert "pool_size" not in store.engine.url.query  # never handed to the driver as a libpq option
        store.set("alice", make_token(1))
        assert store.get("alice") == make_token(1)


def test_the_pool_size_defaults_to_20_and_the_async_store_takes_it_too(postgres_url: str) -> None:
    with SQLTokenStore(postgres_url) as store:
        assert store.pool_size == 20
        assert store.engine.pool.size() == 20

    async def main() -> None:
        async with AsyncSQLTokenStore(f"{postgres_url}?pool_size=4") as store:
            assert store.pool_size == 4
            assert store.engine.pool.size() == 4

    asyncio.run(main())


@pytest.mark.parametrize("url_tail", ["?pool_size=many", "?pool_size=0"])
def test_a_pool_size_that_is_not_a_positive_whole_number_is_refused(postgres_url: str, url_tail: str) -> None:
    with pytest.raises(ValueError, match="pool_size"):
        SQLTokenStore(postgres_url + url_tail)


def test_pool_size_is_refused_with_an_engine_of_your_own(postgres_url: str) -> None:
    with SQLTokenStore(postgres_url) as owner, pytest.raises(ValueError, match="your own engine"):
        SQLTokenStore(owner.engine, pool_size=5)


def test_locks_beyond_the_pool_size_wait_their_turn(postgres_url: str, table: str) -> None:
    with SQLTokenStore(postgres_url, table=table, pool_size=2, lock_timeout=30) as store:
        got_third = threading.Event()
        errors: list[BaseException] = []

        def third() -> None:
            try:
                with store.lock("carol") as held:
                    held.check()
                    store.set("carol", make_token(3))
                    got_third.set()
            except BaseException as exc:
                errors.append(exc)

        with store.lock("alice"):
            with store.lock("bob"):
                thread = threading.Thread(target=third)
                thread.start()
                store.set("bob", make_token(2))  # holders' writes never wait for the waiter
            assert got_third.wait(30)
            store.set("alice", make_token(1))
        thread.join(30)
        assert errors == []
        assert [store.get(key) for key in ("alice", "bob", "carol")] == [make_token(n) for n in (1, 2, 3)]


# -- many concurrent refreshes on one store --------------------------------------------------------------


def test_threads_beyond_the_pool_each_refresh_their_own_key_without_error(
    postgres_url: str, table: str, fake: FakeTikTok, served: str
) -> None:
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    barrier = threading.Barrier(CALLERS)
    # A generous connect timeout: 40 callers open connections at once on a possibly busy machine.
    with SQLTokenStore(f"{postgres_url}?connect_timeout=60", table=table, pool_size=POOL_SIZE) as store:
        for n in range(CALLERS):
            store.set(f"user-{n}", _expired(fake, n))

        def request(n: int) -> int:
            with httpx.Client(auth=TikTokAuth(client, store, f"user-{n}")) as http:
                barrier.wait()
                return http.get(fake.user_info_url(served)).status_code

        with client, ThreadPoolExecutor(CALLERS) as pool:
            statuses = list(pool.map(request, range(CALLERS)))
        assert statuses == [200] * CALLERS
        assert all(store.get(f"user-{n}")["expires_at"] > _clock.now() for n in range(CALLERS))  # type: ignore[index]
    assert fake.grant_count("refresh_token") == CALLERS
    assert fake.stale_refresh_token_uses == 0


def test_tasks_beyond_the_pool_each_refresh_their_own_key_without_error(
    postgres_url: str, table: str, fake: FakeTikTok, served: str
) -> None:
    async def main() -> list[int]:
        client = AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
        # A generous connect timeout: 40 callers open connections at once on a possibly busy machine.
        url = f"{postgres_url}?connect_timeout=60"
        async with AsyncSQLTokenStore(url, table=table, pool_size=POOL_SIZE) as store:
            for n in range(CALLERS):
                await store.set(f"user-{n}", _expired(fake, n))

            async def request(n: int) -> int:
                async with httpx.AsyncClient(auth=TikTokAuth(client, store, f"user-{n}")) as http:
                    return (await http.get(fake.user_info_url(served))).status_code

            try:
                return list(await asyncio.gather(*(request(n) for n in range(CALLERS))))
            finally:
                await client.aclose()

    assert asyncio.run(main()) == [200] * CALLERS
    assert fake.grant_count("refresh_token") == CALLERS
    assert fake.stale_refresh_token_uses == 0


# -- fork -----------------------------------------------------------------------------------------------


def _round_trips(store: SQLTokenStore, key: str, first: int, count: int) -> None:
    for n in range(first, first + count):
        store.set(key, make_token(n))
        got = store.get(key)
        if got != make_token(n):
            raise AssertionError(f"{key}: wrote token {n}, read {None if got is None else got['open_id']}")


def _wait_for_child(pid: int, deadline: float) -> int | None:
    """The child's exit code, or None (after killing it) if it is still running at `deadline`."""
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_and_its_parent_both_keep_using_a_store_made_from_a_url(
    postgres_url: str, table: str
) -> None:
    with SQLTokenStore(postgres_url, table=table) as store:
        _round_trips(store, "parent", 0, 3)  # the pool now holds the parent's connection
        reader, writer = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads alive
            pid = os.fork()
        if pid == 0:  # the child: 50 round trips, then a word to the parent
            os.close(reader)
            outcome = b"ok"
            try:
                _round_trips(store, "child", 100, 50)
            except BaseException as exc:
                outcome = f"{type(exc).__name__}: {exc}".encode()[:500]
            finally:
                os.write(writer, outcome)
                os._exit(0 if outcome == b"ok" else 1)
        os.close(writer)
        # Meanwhile the parent works too, on a thread: a connection shared with the child can hang it.
        errors: list[BaseException] = []
        parent = threading.Thread(target=_catching(errors, _round_trips, store, "parent", 3, 50), daemon=True)
        parent.start()
        deadline = time.monotonic() + 60
        code = _wait_for_child(pid, deadline)
        parent.join(max(0.0, deadline - time.monotonic()))
        with os.fdopen(reader, "rb") as pipe:
            outcome = pipe.read()
        assert not parent.is_alive(), "the parent hung on its store"
        assert errors == []
        assert (code, outcome) == (0, b"ok")
        _round_trips(store, "parent", 53, 3)  # and afterwards
        assert store.get("child") == make_token(149)


def _catching(
    errors: list[BaseException], function: Callable[..., object], *args: object
) -> Callable[[], None]:
    def run() -> None:
        try:
            function(*args)
        except BaseException as exc:
            errors.append(exc)

    return run
