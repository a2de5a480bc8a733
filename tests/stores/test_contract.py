"""One contract, every store: memory, file, Redis, SQLite and PostgreSQL (sync, and async driven by `asyncio.run`),
each also wrapped in an `EncryptedTokenStore`.

To run the contract on another store, write a backend (see `tests/stores/_harness.py`) and add it to
`SYNC_BACKENDS` or `ASYNC_BACKENDS` below: one line each.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._redis import RedisServer
from tests.stores._harness import (
    AsyncBackend,
    AsyncFactory,
    AsyncHarness,
    Harness,
    SyncBackend,
    SyncFactory,
    SyncHarness,
)
from tests.stores._sql_backends import (
    async_postgres_backend,
    async_sqlite_backend,
    postgres_backend,
    sqlite_backend,
)
from tests.stores._tokens import make_token
from tiktok_oauth.stores import FileTokenStore, MemoryTokenStore
from tiktok_oauth.stores.encrypted import AsyncEncryptedTokenStore, EncryptedTokenStore
from tiktok_oauth.stores.redis import AsyncRedisTokenStore, RedisTokenStore
from tiktok_oauth.token import TikTokToken

# -- backends: how to make each kind of store --------------------------------------------------------


def memory_backend(request: pytest.FixtureRequest) -> SyncFactory:
    memory = MemoryTokenStore()
    return lambda stack: memory  # its peers are the same object: a memory store is one process's


def file_backend(request: pytest.FixtureRequest) -> SyncFactory:
    path: Path = request.getfixturevalue("tmp_path")
    return lambda stack: FileTokenStore(path)


def redis_backend(request: pytest.FixtureRequest) -> SyncFactory:
    request.getfixturevalue("redis_client")  # flushes the database
    server: RedisServer = request.getfixturevalue("redis_server")

    def new(stack: contextlib.ExitStack) -> RedisTokenStore:
        return RedisTokenStore(stack.enter_context(server.client()))

    return new


def async_redis_backend(request: pytest.FixtureRequest) -> AsyncFactory:
    request.getfixturevalue("redis_client")  # flushes the database
    server: RedisServer = request.getfixturevalue("redis_server")

    async def new(stack: contextlib.AsyncExitStack) -> AsyncRedisTokenStore:
        client = server.async_client()
        stack.push_async_callback(client.aclose)
        return AsyncRedisTokenStore(client)

    return new


CONTRACT_KEY = "Ra3BtK1mMXrtO2sjJq0TgRwIbGNmFPVEM7V0fHYUZOI="  # a Fernet key, for the encrypted stores


def encrypted(backend: SyncBackend) -> SyncBackend:
    """`backend`'s stores, each wrapped in an `EncryptedTokenStore`."""

    def wrapped(request: pytest.FixtureRequest) -> SyncFactory:
        inner = backend(request)
        return lambda stack: EncryptedTokenStore(inner(stack), CONTRACT_KEY)

    return wrapped


def encrypted_async(backend: AsyncBackend) -> AsyncBackend:
    """`backend`'s async stores, each wrapped in an `AsyncEncryptedTokenStore`."""

    def wrapped(request: pytest.FixtureRequest) -> AsyncFactory:
        inner = backend(request)

        async def new(stack: contextlib.AsyncExitStack) -> AsyncEncryptedTokenStore:
            return AsyncEncryptedTokenStore(await inner(stack), CONTRACT_KEY)

        return new

    return wrapped


SYNC_BACKENDS: dict[str, SyncBackend] = {
    "memory": memory_backend,
    "file": file_backend,
    "redis": redis_backend,
    "sqlite": sqlite_backend,
    "postgres": postgres_backend,
    "encrypted-memory": encrypted(memory_backend),
    "encrypted-file": encrypted(file_backend),
    "encrypted-redis": encrypted(redis_backend),
    "encrypted-sqlite": encrypted(sqlite_backend),
    "encrypted-postgres": encrypted(postgres_backend),
}
ASYNC_BACKENDS: dict[str, AsyncBackend] = {
    "redis-async": async_redis_backend,
    "sqlite-async": async_sqlite_backend,
    "postgres-async": async_postgres_backend,
    "encrypted-redis-async": encrypted_async(async_redis_backend),
    "encrypted-sqlite-async": encrypted_async(async_sqlite_backend),
    "encrypted-postgres-async": encrypted_async(async_postgres_backend),
}


@pytest.fixture(params=[*SYNC_BACKENDS, *ASYNC_BACKENDS])
def store(request: pytest.FixtureRequest) -> Iterator[Harness]:
    kind: str = request.param
    harness: SyncHarness | AsyncHarness
    if kind in SYNC_BACKENDS:
        harness = SyncHarness(SYNC_BACKENDS[kind](request))
    else:
        harness = AsyncHarness(ASYNC_BACKENDS[kind](request))
    try:
        yield harness
    finally:
        harness.close()


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


# -- listing: keys() and expiring(before) ------------------------------------------------------------


def expiring_at(expires_at: float | None, n: int = 1) -> TikTokToken:
    token = make_token(n)
    del token["expires_in"]
    token["expires_at"] = expires_at
    return token


def test_keys_of_an_empty_store_is_empty(store: Harness) -> None:
    assert store.keys() == []
    assert store.expiring(float("inf")) == []


def test_keys_lists_every_key_exactly_as_given_to_set(store: Harness) -> None:
    for n, key in enumerate(KEYS):
        store.set(key, make_token(n))
    listed = store.keys()
    assert sorted(listed) == sorted(KEYS)
    assert all(type(key) is str for key in listed)


def test_keys_follows_sets_and_deletes(store: Harness) -> None:
    store.set("alice", make_token(1))
    store.set("bob", make_token(2))
    store.set("alice", make_token(3))
    store.delete("bob")
    store.delete("never-set")
    assert store.keys() == ["alice"]


def test_expiring_lists_the_keys_whose_access_token_expires_strictly_before(store: Harness) -> None:
    store.set("long-expired", expiring_at(1_000))
    store.set("at-100", expiring_at(2_000_000_100))
    store.set("at-200.5", expiring_at(2_000_000_200.5))
    store.set("at-300", expiring_at(2_000_000_300))
    assert sorted(store.expiring(2_000_000_100)) == ["long-expired"]
    assert sorted(store.expiring(2_000_000_200.5)) == ["at-100", "long-expired"]
    assert sorted(store.expiring(2_000_000_200.6)) == ["at-100", "at-200.5", "long-expired"]
    assert sorted(store.expiring(float("inf"))) == ["at-100", "at-200.5", "at-300", "long-expired"]
    assert store.expiring(0) == []


def test_expiring_with_refresh_lists_the_keys_whose_refresh_token_expires_strictly_before(
    store: Harness,
) -> None:
    """The users who must log in again soon: by the refresh token's expiry, not the access token's."""

    def token(n: int, refresh_expires_at: float | None) -> TikTokToken:
        made = expiring_at(2_000_000_000.0 + n, n)  # every access token expires soon
        del made["refresh_expires_in"]
        made["refresh_expires_at"] = refresh_expires_at
        return made

    store.set("ends-first", token(1, 2_100_000_000))
    store.set("ends-later", token(2, 2_200_000_000))
    store.set("unknown", token(3, None))
    assert store.expiring(2_100_000_000, refresh=True) == []
    assert store.expiring(2_100_000_001, refresh=True) == ["ends-first"]
    assert sorted(store.expiring(float("inf"), refresh=True)) == ["ends-first", "ends-later"]
    assert sorted(store.expiring(2_000_000_010)) == ["ends-first", "ends-later", "unknown"]  # access expiries


@pytest.mark.parametrize("expires_at", [None, "soon", True], ids=["null", "a string", "a bool"])
def test_a_token_without_a_numeric_expires_at_is_never_expiring(store: Harness, expires_at: object) -> None:
    token = make_token(1)
    del token["expires_in"], token["expires_at"]
    store.set("absent", token)
    store.set("odd", TikTokToken({**token, "expires_at": expires_at}))
    assert sorted(store.keys()) == ["absent", "odd"]
    assert store.expiring(float("inf")) == []


def test_expiring_follows_replacements_and_deletes(store: Harness) -> None:
    store.set("renewed", expiring_at(1_000))
    store.set("no-expiry-now", expiring_at(1_000))
    store.set("deleted", expiring_at(1_000))
    store.set("expiring-now", expiring_at(3_000_000_000))
    store.set("renewed", expiring_at(3_000_000_000))
    store.set("no-expiry-now", expiring_at(None))
    store.delete("deleted")
    store.set("expiring-now", expiring_at(1_000))
    assert store.expiring(2_000_000_000) == ["expiring-now"]


def test_expiring_lists_any_key_exactly_as_given(store: Harness) -> None:
    for n, key in enumerate(KEYS):
        store.set(key, expiring_at(1_000 + n))
    assert sorted(store.expiring(1_000 + len(KEYS))) == sorted(KEYS)
    assert sorted(store.expiring(1_002)) == sorted(KEYS[:2])


def test_listing_works_while_a_lock_is_held_and_never_lists_the_lock(store: Harness) -> None:
    store.set("alice", expiring_at(1_000))
    store.set("bob", expiring_at(3_000_000_000))
    for locked in ("alice", "locked-but-never-set"):
        listings = store.listed_while_locked(locked, 2_000_000_000)
        assert [(sorted(keys), expiring) for keys, expiring in listings] == [
            (["alice", "bob"], ["alice"]),  # from the lock holder itself
            (["alice", "bob"], ["alice"]),  # from another store object on the same backend
        ]
    assert sorted(store.keys()) == ["alice", "bob"]
