"""The promise matrix: every door that writes a token, against every fault that applies, over the stores.

A door is one way the library refreshes, revokes or writes a token: `TikTokAuth` on each HTTP client, the
keeper (sync and async), the web login, logout, and the CLI's `token refresh` / `refresh --all` / `revoke`.
A fault is what can go wrong around it: a store write that fails, a lock lost before the refresh is sent,
a caller cancelled after the refresh reached TikTok, the event loop ending meanwhile. After each cell: the
stored token is live (TikTok takes its refresh token), TikTok saw no stale refresh token (strict rotation),
and no lock is left held. SIGINT, SIGKILL and fork, which need processes, are in `tests/cli/test_token.py`,
`tests/test_*_processes.py` and `tests/test_auth_hardening.py`; lost PostgreSQL and Redis locks in
`tests/stores/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SECRET
from tests.test_auth_matrix import ASYNC_KINDS, KINDS, open_api
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    LockLostError,
    MemoryTokenStore,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    TokenStoreError,
    arefresh_due,
    refresh_due,
)
from tiktok_oauth.auth import TokenSource
from tiktok_oauth.cli import main
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.web import TikTokLogin

KEY = "default"
DEADLINE = 60.0


class Faulty:
    """A store with one fault: `writes_fail` writes refused, or every held lock reported lost."""

    def __init__(self, inner: Any, *, writes_fail: int = 0, lock_lost: bool = False) -> None:
        self.inner = inner
        self.writes_fail = writes_fail
        self.lock_lost = lock_lost
        self.lock_timeout = 10.0

    def get(self, key: str) -> TikTokToken | None:
        return self.inner.get(key)  # type: ignore[no-any-return]

    def set(self, key: str, token: TikTokToken) -> None:
        if self.writes_fail > 0:
            self.writes_fail -= 1
            raise TokenStoreError("the database is restarting")
        self.inner.set(key, token)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def keys(self) -> Any:
        return self.inner.keys()

    def expiring(self, before: float) -> Any:
        return self.inner.expiring(before)

    class Lost:
        def check(self) -> None:
            raise LockLostError("the lock was lost")

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[Any]:
        with self.inner.lock(key) as held:
            yield self.Lost() if self.lock_lost else held

    @contextlib.asynccontextmanager
    async def alock(self, key: str) -> AsyncIterator[Any]:
        async with self.inner.alock(key) as held:
            yield self.Lost() if self.lock_lost else held


def token_request_arrived(fake: FakeTikTok, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    arrived = threading.Event()
    delay = fake.request_delay

    def noting(method: str, url: str) -> float:
        if "/oauth/token/" in url:
            arrived.set()
        return delay(method, url)

    monkeypatch.setattr(fake, "request_delay", noting)
    return arrived


# -- the doors: each uses the library once (twice where a failed write must be recovered) --------------


Door = Callable[["Cell"], Awaitable[None]]


class Cell:
    """One cell of the matrix: the fake, the served URL, the store (with its fault), the test's tools."""

    def __init__(self, fake: FakeTikTok, served: str, store: Any, tmp_path: Path, monkeypatch: Any) -> None:
        self.fake, self.served, self.store = fake, served, store
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        self.endpoints = fake.endpoints(served)

    def sync_client(self) -> TikTokOAuth2Client:
        return TikTokOAuth2Client("test-key", SECRET, **self.endpoints)

    def async_client(self) -> AsyncTikTokOAuth2Client:
        return AsyncTikTokOAuth2Client("test-key", SECRET, **self.endpoints)


def http_door(kind: str) -> Door:
    async def use(cell: Cell) -> None:
        async with open_api(kind, cell.fake, cell.served, cell.store) as api:
            url = cell.fake.user_info_url(cell.served) + "?fields=open_id"
            try:
                reply = await api.get(url)
            except TokenStoreError:
                reply = await api.get(url)  # the same auth object: it kept the new token
            assert reply.status == 200

    return use


async def keeper_door(cell: Cell) -> None:
    with cell.sync_client() as client:
        report = await asyncio.to_thread(refresh_due, client, cell.store, within=10**9, keys=[KEY])
    assert report.refreshed == [KEY], report.failed


async def async_keeper_door(cell: Cell) -> None:
    async with cell.async_client() as client:
        report = await arefresh_due(client, cell.store, within=10**9, keys=[KEY])
    assert report.refreshed == [KEY], report.failed


def _login(cell: Cell, client: Any) -> tuple[TikTokLogin, dict[str, Any], str]:
    login = TikTokLogin(client, cell.store)
    session: dict[str, Any] = {}
    callback = cell.fake.authorize(login.begin(session), open_id=KEY)
    return login, session, callback


async def web_login_door(cell: Cell) -> None:
    with cell.sync_client() as client:
        login, session, callback = _login(cell, client)
        await asyncio.to_thread(login.complete, session, callback)


async def async_web_login_door(cell: Cell) -> None:
    async with cell.async_client() as client:
        login, session, callback = _login(cell, client)
        await login.acomplete(session, callback)


async def logout_door(cell: Cell) -> None:
    with cell.sync_client() as client:
        await asyncio.to_thread(TikTokAuth(client, cell.store).logout)


async def async_logout_door(cell: Cell) -> None:
    async with cell.async_client() as client:
        await TikTokAuth(client, cell.store).alogout()


def cli_door(*argv: str) -> Door:
    async def use(cell: Cell) -> None:
        options = ["--client-key", "test-key", "--client-secret", SECRET]
        options += ["--token-url", cell.endpoints["token_url"], "--revoke-url", cell.endpoints["revoke_url"]]
        code = await asyncio.to_thread(main, [*argv, *options, "--store", str(cell.tmp_path / "tokens")])
        assert code == 0

    return use


DOORS: dict[str, Door] = {
    **{f"auth on {kind}": http_door(kind) for kind in KINDS},
    "refresh_due": keeper_door,
    "arefresh_due": async_keeper_door,
    "web login": web_login_door,
    "web login (async)": async_web_login_door,
    "logout": logout_door,
    "logout (async)": async_logout_door,
    "cli token refresh": cli_door("token", "refresh", "--key", KEY),
    "cli token refresh --all": cli_door("token", "refresh", "--all", "--due", "10000d"),
    "cli token revoke": cli_door("token", "revoke", "--key", KEY),
}
REFRESHING = [name for name in DOORS if "login" not in name and "logout" not in name and "revoke" not in name]
REMOVING = ["logout", "logout (async)", "cli token revoke"]
ASYNC_REFRESHING = [f"auth on {kind}" for kind in ASYNC_KINDS] + ["arefresh_due"]


# -- the cells -------------------------------------------------------------------------------------------


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def _backend(name: str, tmp_path: Path) -> Any:
    return MemoryTokenStore(lock_timeout=10.0) if name == "memory" else FileTokenStore(tmp_path / "tokens")


def _seed(fake: FakeTikTok, store: Any) -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=KEY))
    token["expires_at"] = int(time.time())  # due
    store.set(KEY, token)
    return token


def _verify(fake: FakeTikTok, served: str, base: Any, *, removed: bool = False) -> None:
    """The cell's promise: the stored token is live (or, for a removing door, gone), TikTok saw no
    stale refresh token, and the key's lock is free."""
    with base.lock(KEY):
        stored = base.get(KEY)
    if removed:
        assert stored is None
    else:
        assert stored is not None
        with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            client.refresh_token(stored)  # TikTok takes it: this refresh token is the live one
    assert fake.stale_refresh_token_uses == 0


@dataclass
class World:
    """What every cell shares: the served fake, a directory, the test's monkeypatch, the backend."""

    fake: FakeTikTok
    served: str
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    backend: str


@pytest.fixture(params=["memory", "file"])
def world(
    request: pytest.FixtureRequest,
    fake: FakeTikTok,
    served: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    return World(fake, served, tmp_path, monkeypatch, request.param)


def _cell(door: str, world: World, **fault: Any) -> tuple[Cell, Any]:
    if door.startswith("cli") and world.backend != "file":
        pytest.skip("the CLI opens its store from --store: a directory here")
    base = _backend(world.backend, world.tmp_path)
    _seed(world.fake, base)
    store = Faulty(base, **fault) if fault else base
    return Cell(world.fake, world.served, store, world.tmp_path, world.monkeypatch), base


@pytest.mark.parametrize("door", list(DOORS))
def test_every_door_keeps_the_promise_with_no_fault(door: str, world: World) -> None:
    cell, base = _cell(door, world)
    asyncio.run(DOORS[door](cell))
    _verify(world.fake, world.served, base, removed=door in REMOVING)


@pytest.mark.parametrize("door", [d for d in REFRESHING if not d.startswith("cli")])
def test_a_refreshed_token_the_store_refused_once_is_written_and_used(door: str, world: World) -> None:
    cell, base = _cell(door, world, writes_fail=1)
    asyncio.run(DOORS[door](cell))
    assert world.fake.grant_count("refresh_token") == 1
    _verify(world.fake, world.served, base)


@pytest.mark.parametrize("door", [d for d in REFRESHING if not d.startswith("cli")])
def test_a_lock_lost_before_sending_sends_nothing_and_changes_nothing(door: str, world: World) -> None:
    cell, base = _cell(door, world, lock_lost=True)
    before = base.get(KEY)
    with pytest.raises((LockLostError, AssertionError)):  # raised, or reported failed by the keeper
        asyncio.run(DOORS[door](cell))
    assert world.fake.grant_count("refresh_token") == 0
    assert base.get(KEY) == before
    _verify(world.fake, world.served, base)


@pytest.mark.parametrize("door", ASYNC_REFRESHING)
@pytest.mark.parametrize("fault", ["caller cancelled after sending", "event loop ended after sending"])
def test_a_refresh_that_reached_tiktok_is_stored_whatever_happens_to_its_caller(
    door: str, fault: str, world: World
) -> None:
    cell, base = _cell(door, world)
    fake = world.fake
    arrived = token_request_arrived(fake, world.monkeypatch)
    fake.token_delay = 1.0  # TikTok answers after the caller is gone

    async def scenario() -> None:
        use = asyncio.create_task(DOORS[door](cell))
        assert await asyncio.to_thread(arrived.wait, DEADLINE)
        use.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await use
        if fault == "caller cancelled after sending":
            deadline = time.monotonic() + DEADLINE
            while fake.grant_count("refresh_token") == 0 or base.get(KEY).refresh_token == before:
                assert time.monotonic() < deadline, "the refresh never completed"
                await asyncio.sleep(0.02)
        # else: return at once, and asyncio.run cancels every task left

    before = base.get(KEY).refresh_token
    asyncio.run(scenario())
    fake.token_delay = 0
    assert fake.grant_count("refresh_token") == 1
    assert base.get(KEY).refresh_token != before
    _verify(fake, world.served, base)


# -- locks lost on real servers: PostgreSQL (a terminated session) and Redis (an expired lock) -----------


class LosesItsLockAfterReading:
    """A real store whose lock is lost right after the token source's read under it: the session holding
    a PostgreSQL advisory lock is terminated, or the Redis lock key expires (deleted)."""

    def __init__(self, store: Any, lose: Callable[[], None]) -> None:
        self.store, self._lose = store, lose
        self.lock_timeout = store.lock_timeout
        self.armed = True

    def get(self, key: str) -> TikTokToken | None:
        token = self.store.get(key)
        if self.armed and self._held:
            self.armed = False
            self._lose()
        return token  # type: ignore[no-any-return]

    def set(self, key: str, token: TikTokToken) -> None:
        self.store.set(key, token)

    def delete(self, key: str) -> None:
        self.store.delete(key)

    _held = False

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[Any]:
        with self.store.lock(key) as held:
            self._held = True
            try:
                yield held
            finally:
                self._held = False


@pytest.fixture(params=["postgres", "redis"])
def lossy_store(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    """(the real store, the same store wrapped to lose its lock once after the read under it)."""
    if request.param == "postgres":
        from tests.stores._sql_backends import unique_table
        from tests.stores.test_sql_store_lost_locks import terminate_holder
        from tiktok_oauth.stores.sql import SQLTokenStore

        url = request.getfixturevalue("postgres_url")
        table = unique_table(request, url)
        store = SQLTokenStore(url, table=table, lock_timeout=10.0)
        yield store, LosesItsLockAfterReading(store, lambda: terminate_holder(url, table, KEY))
        store.close()
    else:
        from tiktok_oauth.stores.redis import RedisTokenStore

        client = request.getfixturevalue("redis_client")
        store = RedisTokenStore(client, lock_timeout=10.0, lock_blocking_timeout=10.0)
        yield store, LosesItsLockAfterReading(store, lambda: client.delete(store.lock_name(KEY)))


def test_a_lock_lost_on_a_real_server_before_sending_sends_nothing(
    lossy_store: tuple[Any, Any], fake: FakeTikTok, served: str
) -> None:
    base, lossy = lossy_store
    old = _seed(fake, base)
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        source = TokenSource.over(client, lossy, KEY)  # the one writer, as every door calls it
        with pytest.raises(LockLostError):
            source.renew()
        assert fake.grant_count("refresh_token") == 0
        assert base.get(KEY) == old
        assert source.renew()[0] == "refreshed"  # the next lock is whole again
    _verify(fake, served, base)
