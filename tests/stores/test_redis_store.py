"""`RedisTokenStore` against a real redis-server: failures, a dead lock holder, corrupt values."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests._redis import RedisServer, require_redis_server
from tests.stores._processes import wait_for_line
from tests.stores._tokens import make_token
from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores.redis import AsyncRedisTokenStore, RedisTokenStore
from tiktok_oauth.token import TikTokToken


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of this test's own, with an fsynced append-only file, free to be killed."""
    with RedisServer(require_redis_server(), persistent=True) as server:
        yield server


def test_importing_the_stores_package_does_not_import_redis() -> None:
    script = "import sys, tiktok_oauth.stores; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)


def test_keys_are_prefix_plus_key_and_values_the_token_json(redis_client: Any, token: TikTokToken) -> None:
    RedisTokenStore(redis_client, prefix="app:").set("default", token)
    assert TikTokToken.from_json(redis_client.get("app:default")) == token
    assert redis_client.keys("*") == [b"app:default"]


def test_a_client_decoding_responses_works(redis_server: RedisServer, token: TikTokToken) -> None:
    client = redis_server.client(decode_responses=True)
    try:
        client.flushdb()
        store = RedisTokenStore(client)
        store.set("default", token)
        assert store.get("default") == token
    finally:
        client.close()


def test_repr_shows_the_prefix_only(redis_client: Any) -> None:
    assert repr(RedisTokenStore(redis_client)) == "RedisTokenStore(prefix='tiktok-oauth:')"


def test_an_async_client_gives_an_async_store(redis_server: RedisServer, token: TikTokToken) -> None:
    async def main() -> TikTokToken | None:
        client = redis_server.async_client()
        try:
            store = RedisTokenStore(client)
            assert isinstance(store, AsyncRedisTokenStore)
            await store.set("default", token)
            return await store.get("default")
        finally:
            await client.aclose()

    assert asyncio.run(main()) == token


@pytest.mark.parametrize("value", [b"not json", b"[1]", b'{"refresh_token": "rft.secret"}', b"\xff\xfe"])
def test_a_corrupt_value_raises_naming_the_key_and_is_left_alone(redis_client: Any, value: bytes) -> None:
    redis_client.set("tiktok-oauth:default", value)
    with pytest.raises(TokenStoreError, match="tiktok-oauth:default") as caught:
        RedisTokenStore(redis_client).get("default")
    assert "secret" not in str(caught.value)
    assert redis_client.get("tiktok-oauth:default") == value


# -- a server that stops -----------------------------------------------------------------------------


def test_a_stopped_server_gives_token_store_error_quickly(own_server: RedisServer) -> None:
    client = own_server.client()
    try:
        store = RedisTokenStore(client)
        store.set("default", make_token(1))
        own_server.stop(kill=True)
        for operation in (
            lambda: store.get("default"),
            lambda: store.set("default", make_token(2)),
            lambda: store.delete("default"),
        ):
            started = time.monotonic()
            with pytest.raises(TokenStoreError, match="ConnectionError"):
                operation()
            assert time.monotonic() - started < 2
        with pytest.raises(TokenStoreError), store.lock("default"):
            pass
    finally:
        client.close()


def test_a_server_that_stops_answering_gives_token_store_error_after_the_socket_timeout(
    own_server: RedisServer,
) -> None:
    client = own_server.client()
    try:
        store = RedisTokenStore(client)
        store.set("default", make_token(1))
        own_server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(TokenStoreError, match="Timeout"):
                store.get("default")
            assert time.monotonic() - started < 3  # socket_timeout is 1 s: no hang
        finally:
            own_server.resume()
    finally:
        client.close()


@pytest.mark.slow
def test_a_server_killed_mid_writes_keeps_a_whole_token(own_server: RedisServer) -> None:
    written: list[int] = []  # counters whose SET was acknowledged
    attempted: list[int] = []
    failure: list[tuple[BaseException, float]] = []

    def writer() -> None:
        client = own_server.client()
        try:
            store = RedisTokenStore(client)
            for counter in range(1_000_000):
                attempted.append(counter)
                try:
                    store.set("default", make_token(counter, counter=counter, padding="x" * (counter % 3000)))
                except TokenStoreError as exc:
                    failure.append((exc, time.monotonic()))
                    return
                written.append(counter)
        finally:
            client.close()

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)
    killed_at = time.monotonic()
    own_server.stop(kill=True)
    thread.join(timeout=10)
    assert not thread.is_alive(), "the writer hung on a dead server"
    assert failure, "the writer never noticed the server died"
    assert failure[0][1] - killed_at < 2
    assert written

    own_server.start()
    client = own_server.client()
    try:
        token = RedisTokenStore(client).get("default")
    finally:
        client.close()
    assert token is not None
    counter = token["counter"]
    assert counter in (written[-1], attempted[-1])  # the last acknowledged one, or the one in flight
    assert token == make_token(counter, counter=counter, padding="x" * (counter % 3000))


# -- the lock ---------------------------------------------------------------------------------------

HOLD_REDIS_LOCK = """
import sys
import redis
from tiktok_oauth.stores.redis import RedisTokenStore
client = redis.Redis(port=int(sys.argv[1]), socket_timeout=1)
store = RedisTokenStore(client, lock_timeout=float(sys.argv[2]))
with store.lock("default"):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.mark.slow
def test_the_lock_of_a_killed_holder_expires_after_lock_timeout(
    redis_server: RedisServer, redis_client: Any
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_REDIS_LOCK, str(redis_server.port), "1.0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        wait_for_line(holder, "locked")
        holder.kill()
        holder.wait(timeout=10)
    store = RedisTokenStore(redis_client, lock_timeout=1.0, lock_blocking_timeout=5.0)
    started = time.monotonic()
    with store.lock("default"):
        waited = time.monotonic() - started
    assert 0.05 < waited < 1.5  # it waited for the expiry, not more


def test_waiting_longer_than_lock_blocking_timeout_raises(
    redis_server: RedisServer, redis_client: Any
) -> None:
    other = redis_server.client()
    try:
        waiting = RedisTokenStore(other, lock_blocking_timeout=0.3)
        with RedisTokenStore(redis_client).lock("default"):
            started = time.monotonic()
            with pytest.raises(TokenStoreError, match="timed out"), waiting.lock("default"):
                pytest.fail("acquired a lock that another client holds")
            # redis-py gives up when its next try (every 0.1 s) would come after the deadline.
            assert 0.2 <= time.monotonic() - started < 1.5
        with waiting.lock("default"):  # free again once released
            pass
    finally:
        other.close()


def test_the_async_lock_raises_after_lock_blocking_timeout(
    redis_server: RedisServer, redis_client: Any
) -> None:
    async def main() -> None:
        client = redis_server.async_client()
        try:
            waiting = AsyncRedisTokenStore(client, lock_blocking_timeout=0.3)
            with pytest.raises(TokenStoreError, match="timed out"):
                async with waiting.lock("default"):
                    pytest.fail("acquired a lock that another client holds")
        finally:
            await client.aclose()

    with RedisTokenStore(redis_client).lock("default"):
        asyncio.run(main())


def test_the_async_store_maps_a_dead_server_to_token_store_error(own_server: RedisServer) -> None:
    async def main() -> None:
        client = own_server.async_client()
        try:
            store = AsyncRedisTokenStore(client)
            with pytest.raises(TokenStoreError, match="ConnectionError"):
                await store.get("default")
            with pytest.raises(TokenStoreError):
                await store.set("default", make_token())
            with pytest.raises(TokenStoreError):
                async with store.lock("default"):
                    pass
        finally:
            await client.aclose()

    own_server.stop(kill=True)
    asyncio.run(main())
