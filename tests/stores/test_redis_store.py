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
from tiktok_oauth.errors import LockLostError, TokenStoreError
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
    store = RedisTokenStore(redis_client, prefix="app:")
    store.set("default", token)
    assert TikTokToken.from_json(redis_client.get("app:default")) == token
    with store.lock("default"):
        assert sorted(redis_client.keys("*")) == [b"app#expiries", b"app#lock:default", b"app:default"]
    assert redis_client.zrange("app#expiries", 0, -1, withscores=True) == [(b"default", token.expires_at)]
    assert (store.index_name, store.lock_name("x")) == ("app#expiries", "app#lock:x")


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


# -- the lock is extended while held, and a lost lock refuses writes ---------------------------------


def test_a_lock_held_longer_than_lock_timeout_is_extended(
    redis_server: RedisServer, redis_client: Any
) -> None:
    holder = RedisTokenStore(redis_client, lock_timeout=1.0)
    other_client = redis_server.client()
    try:
        other = RedisTokenStore(other_client, lock_blocking_timeout=0.2)
        with holder.lock("default"):
            for _ in range(3):  # 3 s of slow work under a 1 s lock
                time.sleep(1.0)
                with pytest.raises(TokenStoreError, match="timed out"), other.lock("default"):
                    pytest.fail("a second holder got the lock while the first still worked")
            assert 0 < redis_client.pttl(holder.lock_name("default")) <= 1000
            holder.set("default", make_token(2))  # still ours: the write goes through
        assert holder.get("default") == make_token(2)
        with other.lock("default"):  # released at the end
            pass
    finally:
        other_client.close()


def test_the_async_lock_held_longer_than_lock_timeout_is_extended(
    redis_server: RedisServer, redis_client: Any
) -> None:
    async def main() -> None:
        client = redis_server.async_client()
        try:
            holder = AsyncRedisTokenStore(client, lock_timeout=1.0)
            other = RedisTokenStore(redis_client, lock_blocking_timeout=0.2)
            async with holder.lock("default"):
                for _ in range(3):
                    await asyncio.sleep(1.0)
                    with pytest.raises(TokenStoreError, match="timed out"), other.lock("default"):
                        pytest.fail("a second holder got the lock while the first still worked")
                await holder.set("default", make_token(2))
            assert await holder.get("default") == make_token(2)
            with other.lock("default"):
                pass
        finally:
            await client.aclose()

    asyncio.run(main())


def _lose(redis_client: Any, name: str, how: str) -> None:
    """Make the lock `name` go away under its holder: deleted by someone, or expired."""
    if how == "deleted":
        redis_client.delete(name)
        return
    redis_client.pexpire(name, 1)
    deadline = time.monotonic() + 10
    while redis_client.exists(name):
        assert time.monotonic() < deadline, "the lock never expired"
        time.sleep(0.01)


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_lost_lock_fails_its_check_and_its_writes_with_lock_lost_error(redis_client: Any, how: str) -> None:
    store = RedisTokenStore(redis_client)
    store.set("default", make_token(1))
    with store.lock("default") as held:
        held.check()  # ours: nothing to say
        _lose(redis_client, store.lock_name("default"), how)
        with pytest.raises(LockLostError, match="was lost") as checked:
            held.check()
        with pytest.raises(LockLostError, match="write refused") as written:
            store.set("default", make_token(2))
        with pytest.raises(LockLostError, match="write refused"):
            store.delete("default")
    assert "secret" not in str(checked.value) + str(written.value)
    assert store.get("default") == make_token(1)


@pytest.mark.parametrize("how", ["deleted", "expired"])
def test_a_lost_async_lock_fails_its_check_and_its_writes_with_lock_lost_error(
    redis_server: RedisServer, redis_client: Any, how: str
) -> None:
    async def main() -> None:
        client = redis_server.async_client()
        try:
            store = AsyncRedisTokenStore(client)
            await store.set("default", make_token(1))
            async with store.lock("default") as held:
                await held.check()
                _lose(redis_client, store.lock_name("default"), how)
                with pytest.raises(LockLostError, match="was lost"):
                    await held.check()
                with pytest.raises(LockLostError, match="write refused"):
                    await store.set("default", make_token(2))
                with pytest.raises(LockLostError, match="write refused"):
                    await store.delete("default")
            assert await store.get("default") == make_token(1)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_write_under_a_stolen_lock_is_refused_and_changes_nothing(
    redis_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisTokenStore(redis_client, lock_timeout=0.6)
    store.set("default", make_token(1))
    index_before = redis_client.zrange(store.index_name, 0, -1, withscores=True)
    with caplog.at_level("WARNING", logger="tiktok_oauth"), store.lock("default"):
        redis_client.delete(store.lock_name("default"))  # stolen: expired, or deleted by someone
        with pytest.raises(TokenStoreError, match="lost") as caught:
            store.set("default", make_token(2, expires_at=1))
        with pytest.raises(TokenStoreError, match="write refused"):
            store.delete("default")
        time.sleep(0.4)  # the keeper's next extension finds it gone
    assert "secret" not in str(caught.value)
    assert store.get("default") == make_token(1)
    assert redis_client.zrange(store.index_name, 0, -1, withscores=True) == index_before
    assert "was lost" in caplog.text
    store.set("default", make_token(3))  # outside the lock, writes work again
    assert store.get("default") == make_token(3)


def test_a_write_under_a_lock_taken_by_another_holder_is_refused(
    redis_server: RedisServer, redis_client: Any
) -> None:
    store = RedisTokenStore(redis_client, lock_timeout=5.0)
    store.set("default", make_token(1))
    thief_client = redis_server.client()
    try:
        thief = RedisTokenStore(thief_client, lock_blocking_timeout=0.5)
        with store.lock("default"):
            redis_client.delete(store.lock_name("default"))
            with thief.lock("default"):
                thief.set("default", make_token(5))  # the thief holds it now: its writes go through
                with pytest.raises(TokenStoreError, match="lost"):
                    store.set("default", make_token(2))
    finally:
        thief_client.close()
    assert store.get("default") == make_token(5)


def test_an_async_write_under_a_stolen_lock_is_refused_and_changes_nothing(
    redis_server: RedisServer, redis_client: Any
) -> None:
    async def main() -> None:
        client = redis_server.async_client()
        try:
            store = AsyncRedisTokenStore(client)
            await store.set("default", make_token(1))
            async with store.lock("default"):
                redis_client.delete(store.lock_name("default"))
                with pytest.raises(TokenStoreError, match="lost"):
                    await store.set("default", make_token(2))
                with pytest.raises(TokenStoreError, match="lost"):
                    await store.delete("default")
            assert await store.get("default") == make_token(1)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_the_lock_can_be_left_on_another_thread_than_it_was_entered_on(
    redis_server: RedisServer, redis_client: Any
) -> None:
    # What asyncio.to_thread does to a sync store's lock under httpx.AsyncClient.
    store = RedisTokenStore(redis_client)
    manager = store.lock("default")
    results: list[object] = []

    def run(step: Any) -> None:
        try:
            results.append(step())
        except BaseException as exc:
            results.append(exc)

    for step in (
        manager.__enter__,
        lambda: store.set("default", make_token(1)),
        lambda: manager.__exit__(None, None, None),
    ):
        thread = threading.Thread(target=run, args=(step,))
        thread.start()
        thread.join()
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert redis_client.exists(store.lock_name("default")) == 0  # released for real, not left to expire


# -- names, listing and the expiry index -----------------------------------------------------------


def test_an_empty_prefix_is_refused(redis_client: Any) -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisTokenStore(redis_client, prefix="")


def test_token_keys_never_collide_with_lock_or_index_keys(
    redis_server: RedisServer, redis_client: Any
) -> None:
    store = RedisTokenStore(redis_client)
    tricky = ["lock:default", "#lock:default", "expiries", "#expiries", "lock:", ""]
    other_client = redis_server.client()
    try:
        other = RedisTokenStore(other_client, lock_blocking_timeout=0.2)
        with store.lock("default"):
            for n, key in enumerate(tricky):
                store.set(key, make_token(n))
            with pytest.raises(TokenStoreError, match="timed out"), other.lock("default"):
                pytest.fail("writing token keys released or replaced the lock")
        assert sorted(store.keys()) == sorted(tricky)
        assert sorted(store.expiring(float("inf"))) == sorted(tricky)
        for n, key in enumerate(tricky):
            assert store.get(key) == make_token(n)
    finally:
        other_client.close()


def test_prefixes_with_glob_characters_list_only_their_own_keys(redis_client: Any) -> None:
    odd, plain = (
        RedisTokenStore(redis_client, prefix="a*[b]?\\:"),
        RedisTokenStore(redis_client, prefix="aX[b]?\\:"),
    )
    odd.set("mine", make_token(1))
    plain.set("theirs", make_token(2))
    RedisTokenStore(redis_client, prefix="ab:").set("also-theirs", make_token(3))
    assert list(odd.keys()) == ["mine"]
    assert list(plain.keys()) == ["theirs"]


def test_expiring_reads_the_index_not_the_tokens(redis_client: Any) -> None:
    store = RedisTokenStore(redis_client)
    store.set("soon", make_token(1, expires_at=1_000))
    store.set("later", make_token(2))
    redis_client.set(store.key_name("soon"), b"corrupt: never read by expiring")
    assert list(store.expiring(2_000)) == ["soon"]


def test_a_token_stored_by_version_0_1_0_is_listed_but_not_indexed(
    redis_client: Any, token: TikTokToken
) -> None:
    redis_client.set("tiktok-oauth:old", token.to_json())  # a plain SET, as 0.1.0 wrote it
    store = RedisTokenStore(redis_client)
    assert list(store.keys()) == ["old"]
    assert list(store.expiring(float("inf"))) == []
    store.set("old", store.get("old"))  # its next write indexes it
    assert list(store.expiring(float("inf"))) == ["old"]


def test_expiring_pages_through_ties_and_keys_refreshed_meanwhile(redis_client: Any) -> None:
    store = RedisTokenStore(redis_client)
    expected = set()
    pipe = redis_client.pipeline(transaction=False)
    for n in range(2600):
        key = f"user-{n}"
        expires_at = 1_000 if n < 1500 else 1_000 + n  # 1,500 share one score, across two pages
        pipe.set(store.key_name(key), make_token(n, expires_at=expires_at).to_json())
        pipe.zadd(store.index_name, {key: expires_at})
        expected.add(key)
    pipe.execute()
    listed = []
    for key in store.expiring(10_000):
        listed.append(key)
        store.set(key, make_token(1, expires_at=20_000))  # refreshed: leaves the range as we go
    assert len(listed) == len(expected)
    assert set(listed) == expected
    assert list(store.expiring(10_000)) == []


def test_the_async_store_lists_with_scan_and_the_index(redis_server: RedisServer, redis_client: Any) -> None:
    async def main() -> tuple[list[str], list[str]]:
        client = redis_server.async_client()
        try:
            store = AsyncRedisTokenStore(client)
            for n in range(1500):
                await store.set(f"user-{n}", make_token(n, expires_at=1_000 + n))
            keys, expiring = store.keys(), store.expiring(1_700)
            return [k async for k in keys], [k async for k in expiring]
        finally:
            await client.aclose()

    keys, expiring = asyncio.run(main())
    assert sorted(keys) == sorted(f"user-{n}" for n in range(1500))
    assert sorted(expiring) == sorted(f"user-{n}" for n in range(700))
