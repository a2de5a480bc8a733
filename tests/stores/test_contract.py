"""One contract, every store: memory, file, Redis (sync) and Redis (async, driven by `asyncio.run`)."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests._redis import RedisServer
from tests.stores._tokens import make_token
from tiktok_oauth.stores import (
    AsyncLockingTokenStore,
    AsyncTokenStore,
    FileTokenStore,
    LockingTokenStore,
    MemoryTokenStore,
    TokenStore,
)
from tiktok_oauth.stores.redis import AsyncRedisTokenStore, RedisTokenStore
from tiktok_oauth.token import TikTokToken

T = TypeVar("T")

HOLD = 0.2  # seconds the first holder keeps a lock in the exclusion tests


class Harness(Protocol):
    """A store seen synchronously, plus a way to race two holders of its lock."""

    def get(self, key: str) -> TikTokToken | None: ...
    def set(self, key: str, token: TikTokToken) -> None: ...
    def delete(self, key: str) -> None: ...
    def repr(self) -> str: ...
    def check_protocols(self) -> None: ...
    def lock_race(self, first_key: str, second_key: str) -> list[str]: ...


class SyncHarness:
    def __init__(self, store: Any, make_peer: Callable[[], Any]) -> None:
        self.store = store
        self._make_peer = make_peer  # another store instance (or the same one) on the same backend

    def get(self, key: str) -> TikTokToken | None:
        return self.store.get(key)

    def set(self, key: str, token: TikTokToken) -> None:
        self.store.set(key, token)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    def repr(self) -> str:
        return repr(self.store)

    def check_protocols(self) -> None:
        assert isinstance(self.store, TokenStore)
        assert isinstance(self.store, LockingTokenStore)
        assert not inspect.iscoroutinefunction(self.store.get)

    def lock_race(self, first_key: str, second_key: str) -> list[str]:
        """A thread holds `first_key` for HOLD seconds; meanwhile a peer store takes `second_key`."""
        events: list[str] = []
        held = threading.Event()

        def hold() -> None:
            with self.store.lock(first_key):
                events.append("first acquired")
                held.set()
                time.sleep(HOLD)
                events.append("first released")

        thread = threading.Thread(target=hold)
        thread.start()
        assert held.wait(5)
        with self._make_peer().lock(second_key):
            events.append("second acquired")
        thread.join()
        return events


class AsyncRedisHarness:
    """Every operation in its own `asyncio.run`, with a client created and closed inside it."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    async def _with_stores(self, count: int, use: Callable[..., Awaitable[T]]) -> T:
        clients = [self.server.async_client() for _ in range(count)]
        try:
            return await use(*(AsyncRedisTokenStore(client) for client in clients))
        finally:
            for client in clients:
                await client.aclose()

    def _run(self, use: Callable[[AsyncRedisTokenStore], Awaitable[T]]) -> T:
        return asyncio.run(self._with_stores(1, use))

    def get(self, key: str) -> TikTokToken | None:
        return self._run(lambda store: store.get(key))

    def set(self, key: str, token: TikTokToken) -> None:
        self._run(lambda store: store.set(key, token))

    def delete(self, key: str) -> None:
        self._run(lambda store: store.delete(key))

    def repr(self) -> str:
        async def use(store: AsyncRedisTokenStore) -> str:
            return repr(store)

        return self._run(use)

    def check_protocols(self) -> None:
        async def use(store: AsyncRedisTokenStore) -> None:
            assert isinstance(store, AsyncTokenStore)
            assert isinstance(store, AsyncLockingTokenStore)
            assert inspect.iscoroutinefunction(store.get)

        self._run(use)

    def lock_race(self, first_key: str, second_key: str) -> list[str]:
        events: list[str] = []

        async def race(first: AsyncRedisTokenStore, second: AsyncRedisTokenStore) -> list[str]:
            held = asyncio.Event()

            async def hold() -> None:
                async with first.lock(first_key):
                    events.append("first acquired")
                    held.set()
                    await asyncio.sleep(HOLD)
                    events.append("first released")

            task = asyncio.create_task(hold())
            await held.wait()
            async with second.lock(second_key):
                events.append("second acquired")
            await task
            return events

        return asyncio.run(self._with_stores(2, race))


@pytest.fixture(params=["memory", "file", "redis", "redis-async"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    kind = request.param
    if kind == "memory":
        memory = MemoryTokenStore()
        yield SyncHarness(memory, lambda: memory)
    elif kind == "file":
        yield SyncHarness(FileTokenStore(tmp_path), lambda: FileTokenStore(tmp_path))
    elif kind == "redis":
        client = request.getfixturevalue("redis_client")
        server: RedisServer = request.getfixturevalue("redis_server")
        peers: list[Any] = []

        def make_peer() -> RedisTokenStore:
            peers.append(server.client())
            return RedisTokenStore(peers[-1])

        yield SyncHarness(RedisTokenStore(client), make_peer)
        for peer in peers:
            peer.close()
    else:
        request.getfixturevalue("redis_client")  # flushes the database
        yield AsyncRedisHarness(request.getfixturevalue("redis_server"))


KEYS = [
    "default",
    "",
    "..",
    ".",
    "../../etc/passwd",
    "a/b\\c",
    "ünïcødé 🔑",
    "x" * 300,
    "Case",
    "case",
    " spaced key ",
    "nul\x00byte",
    "new\nline",
    "tiktok-oauth:nested",
]


def test_store_implements_its_protocol(store: Harness) -> None:
    store.check_protocols()


def test_get_of_a_missing_key_is_none(store: Harness) -> None:
    assert store.get("missing") is None


def test_set_then_get_returns_an_equal_tiktok_token(store: Harness, token: TikTokToken) -> None:
    store.set("default", token)
    got = store.get("default")
    assert isinstance(got, TikTokToken)
    assert got == token
    assert got.access_token == token.access_token
    assert got.refresh_token == token.refresh_token
    assert got.scopes == {"user.info.basic", "video.list"}
    assert got.expires_at == token.expires_at
    assert got.refresh_expires_at == token.refresh_expires_at


def test_set_replaces_the_previous_token(store: Harness) -> None:
    store.set("default", make_token(1))
    store.set("default", make_token(2))
    assert store.get("default") == make_token(2)


def test_mutating_a_returned_token_does_not_change_the_stored_one(store: Harness, token: TikTokToken) -> None:
    store.set("default", token)
    got = store.get("default")
    assert got is not None
    got["access_token"] = "act.mutated"
    got["expires_at"] = 0
    assert store.get("default") == token


def test_mutating_the_token_after_set_does_not_change_the_stored_one(store: Harness) -> None:
    token = make_token(1)
    store.set("default", token)
    token["access_token"] = "act.mutated"
    assert store.get("default") == make_token(1)


def test_delete_removes_the_token(store: Harness, token: TikTokToken) -> None:
    store.set("default", token)
    store.delete("default")
    assert store.get("default") is None


def test_delete_of_a_missing_key_is_not_an_error(store: Harness) -> None:
    store.delete("missing")
    store.delete("missing")
    assert store.get("missing") is None


def test_keys_are_isolated(store: Harness) -> None:
    store.set("alice", make_token(1))
    store.set("bob", make_token(2))
    store.delete("alice")
    assert store.get("alice") is None
    assert store.get("bob") == make_token(2)


def test_any_string_is_a_valid_and_distinct_key(store: Harness) -> None:
    for n, key in enumerate(KEYS):
        store.set(key, make_token(n))
    for n, key in enumerate(KEYS):
        assert store.get(key) == make_token(n), key


def test_a_token_without_an_access_token_is_refused(store: Harness) -> None:
    with pytest.raises(ValueError, match="access_token"):
        store.set("default", TikTokToken({"refresh_token": "rft.x"}))
    assert store.get("default") is None


def test_repr_never_shows_a_token(store: Harness, token: TikTokToken) -> None:
    store.set("default", token)
    assert "secret" not in store.repr()


def test_lock_excludes_a_second_holder(store: Harness) -> None:
    events = store.lock_race("default", "default")
    assert events == ["first acquired", "first released", "second acquired"]


def test_locks_of_different_keys_are_independent(store: Harness) -> None:
    events = store.lock_race("alice", "bob")
    assert events == ["first acquired", "second acquired", "first released"]
