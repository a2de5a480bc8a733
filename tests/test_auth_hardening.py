"""Regression tests for issue 8's auth items, each named for its item: real threads, tasks, cancellations,
signals, a real redis-server, and FakeTikTok served on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._storm import DocsSQLiteStore, storm
from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    MemoryTokenStore,
    ReauthorizationRequiredError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    TokenStoreError,
)
from tiktok_oauth.auth import _source
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing import FakeTikTok


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def _seed(fake: FakeTikTok, store: Any, key: str = "default", *, due: bool = True) -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=key))
    if due:
        token["expires_at"] = int(time.time())
    store.set(key, token)
    return token


def _user_info(fake: FakeTikTok, base: str) -> str:
    return fake.user_info_url(base) + "?fields=open_id"


async def _drain() -> None:
    while _source._finishing:  # noqa: ASYNC110 - a set the library fills
        await asyncio.sleep(0.02)


# -- item 1: cancellation after the refresh request went out ------------------------------------------------


def test_item1_a_caller_cancelled_mid_refresh_does_not_lose_the_rotated_token(
    fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    old = _seed(fake, store)
    fake.token_delay = 0.5

    async def go() -> None:
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            httpx.AsyncClient(auth=TikTokAuth(client, store)) as http,
        ):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(http.get(_user_info(fake, served)), 0.2)  # the refresh is in flight
            await asyncio.sleep(1.0)  # TikTok handles the refresh the caller gave up on, and rotates
            await _drain()
            fake.token_delay = 0
            response = await http.get(_user_info(fake, served))
            assert response.status_code == 200

    asyncio.run(go())
    stored = store.get("default")
    assert stored is not None
    assert stored.refresh_token != old.refresh_token  # TikTok's answer reached the store
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


def test_item1_a_caller_cancelled_before_sending_leaves_no_refresh_behind(
    fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    _seed(fake, store)

    async def go() -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            auth = TikTokAuth(client, store)
            with store.lock("default"):  # another holder: the caller is still waiting for the lock
                async with httpx.AsyncClient(auth=auth) as http:
                    with pytest.raises(TimeoutError):
                        await asyncio.wait_for(http.get(_user_info(fake, served)), 0.2)
                await asyncio.sleep(0.1)
            await _drain()

    asyncio.run(go())
    assert fake.grant_count("refresh_token") == 0
    with store.lock("default"):  # nobody left it held
        pass


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs signals")
def test_item1_keyboard_interrupt_mid_refresh_still_stores_the_rotated_token(
    fake: FakeTikTok, served: str
) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("this process does not turn SIGINT into KeyboardInterrupt")
    store = MemoryTokenStore()
    old = _seed(fake, store)
    main = threading.main_thread().ident
    assert main is not None
    assert threading.current_thread() is threading.main_thread()
    original = fake.handle

    def interrupting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith("/v2/oauth/token/"):
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C while the refresh is in flight
            time.sleep(0.3)
        return original(method, url, *args, **kwargs)

    fake.handle = interrupting  # type: ignore[method-assign]
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        httpx.Client(auth=TikTokAuth(client, store)) as http,
        pytest.raises(KeyboardInterrupt),
    ):
        http.get(_user_info(fake, served))
    stored = store.get("default")
    assert stored is not None
    assert stored.refresh_token != old.refresh_token
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- item 2: sync stores under asyncio ------------------------------------------------------------------------


class RLockStore(MemoryTokenStore):
    """A user store whose lock is an RLock, which only its owning thread may release; get/set take it too."""

    def __init__(self) -> None:
        super().__init__()
        self._rlock = threading.RLock()

    def __getattribute__(self, name: str) -> Any:
        if name == "alock":
            raise AttributeError(name)
        return super().__getattribute__(name)

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        with self._rlock:
            yield

    def get(self, key: str) -> TikTokToken | None:
        with self._rlock:
            return super().get(key)

    def set(self, key: str, token: TikTokToken) -> None:
        with self._rlock:
            super().set(key, token)


def _concurrent_users(
    fake: FakeTikTok, served: str, make_store: Any, users: int = 8, per_user: int = 3
) -> list[int]:
    async def go() -> list[int]:
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            httpx.AsyncClient() as http,
        ):

            async def one(i: int) -> int:
                auth = TikTokAuth(client, make_store(), f"user-{i % users}")
                return (await http.get(_user_info(fake, served), auth=auth)).status_code

            return list(
                await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(users * per_user))), 30)
            )

    return asyncio.run(go())


def test_item2_a_thread_affine_rlock_store_works_under_asyncio(fake: FakeTikTok, served: str) -> None:
    store = RLockStore()
    assert not hasattr(store, "alock")
    for i in range(8):
        _seed(fake, store, f"user-{i}")
    fake.token_delay = 0.1
    assert _concurrent_users(fake, served, lambda: store) == [200] * 24
    assert fake.grant_count("refresh_token") == 8
    assert fake.stale_refresh_token_uses == 0


def test_item2_the_docs_sqlite_store_one_object_per_request_does_not_deadlock(
    fake: FakeTikTok, served: str, tmp_path: Path
) -> None:
    path = str(tmp_path / "tokens.db")
    seed = DocsSQLiteStore(path)
    for i in range(8):
        _seed(fake, seed, f"user-{i}")
    fake.token_delay = 0.1
    assert _concurrent_users(fake, served, lambda: DocsSQLiteStore(path)) == [200] * 24
    assert fake.grant_count("refresh_token") == 8
    assert seed.held_locks() == 0


def test_item2_a_sync_redis_store_works_under_asyncio(
    fake: FakeTikTok, served: str, redis_client: Any
) -> None:
    from tiktok_oauth.stores.redis import RedisTokenStore

    seed = RedisTokenStore(redis_client)
    for i in range(8):
        _seed(fake, seed, f"user-{i}")
    fake.token_delay = 0.1
    assert _concurrent_users(fake, served, lambda: RedisTokenStore(redis_client)) == [200] * 24
    assert fake.grant_count("refresh_token") == 8
    assert not list(redis_client.scan_iter(match=seed.lock_name("*")))


def test_item2_a_caller_cancelled_while_its_thread_waits_leaves_no_lock_held(
    fake: FakeTikTok, served: str
) -> None:
    store = RLockStore()
    _seed(fake, store)
    released = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with store.lock("default"):
            holding.set()
            released.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()

    async def go() -> None:
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            httpx.AsyncClient(auth=TikTokAuth(client, store)) as http,
        ):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(http.get(_user_info(fake, served)), 0.3)

    asyncio.run(go())
    released.set()
    holder.join()
    time.sleep(0.2)  # the abandoned thread gets the lock now, and must let go of it at once
    acquired = store._rlock.acquire(timeout=2)
    assert acquired, "the cancelled caller's thread kept the store's lock"
    store._rlock.release()
    assert fake.grant_count("refresh_token") == 0


# -- item 4: in-process waits end after the store's lock timeout ------------------------------------------------


class SlowLocklessStore(MemoryTokenStore):
    """A store that names a wait limit but offers no lock: only the in-process lock serialises."""

    def __init__(self) -> None:
        super().__init__(lock_timeout=0.5)

    def __getattribute__(self, name: str) -> Any:
        if name in ("lock", "alock"):
            raise AttributeError(name)
        return super().__getattribute__(name)


def test_item4_a_thread_waiting_on_the_in_process_lock_times_out(fake: FakeTikTok, served: str) -> None:
    store = SlowLocklessStore()
    _seed(fake, store)
    fake.token_delay = 2.0
    errors: list[BaseException] = []
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        first = threading.Thread(
            target=lambda: httpx.get(_user_info(fake, served), auth=TikTokAuth(client, store))
        )
        first.start()
        time.sleep(0.3)  # the first caller holds the in-process lock for its 2 s refresh
        started = time.monotonic()
        try:
            httpx.get(_user_info(fake, served), auth=TikTokAuth(client, store))
        except TokenStoreError as exc:
            errors.append(exc)
        waited = time.monotonic() - started
        first.join()
    assert len(errors) == 1
    assert "timed out" in str(errors[0])
    assert waited < 1.8  # it did not wait for the refresh to finish


def test_item4_a_task_waiting_on_the_in_process_lock_times_out(fake: FakeTikTok, served: str) -> None:
    store = SlowLocklessStore()
    _seed(fake, store)
    fake.token_delay = 2.0

    async def go() -> list[Any]:
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            httpx.AsyncClient() as http,
        ):

            async def one() -> Any:
                return await http.get(_user_info(fake, served), auth=TikTokAuth(client, store))

            return await asyncio.gather(one(), one(), return_exceptions=True)

    outcomes = asyncio.run(go())
    assert sorted(type(o).__name__ for o in outcomes) == ["Response", "TokenStoreError"]


# -- item 5: the in-memory copy follows the store ----------------------------------------------------------------


def test_item5_a_token_replaced_in_the_store_is_sent_after_a_401(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    store.set("u", TikTokToken(fake.issue_token(open_id="u", scopes=("video.list",))))
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        httpx.Client(auth=TikTokAuth(client, store, "u", recheck=3600)) as http,
    ):
        assert http.get(_user_info(fake, served)).status_code == 401  # scope_not_authorized
        # The user consents again with more scopes; the app stores the new token.
        store.set("u", TikTokToken(fake.issue_token(open_id="u", scopes=("user.info.basic",))))
        assert http.get(_user_info(fake, served)).status_code == 200  # re-read after the 401, retried once
    assert fake.grant_count("refresh_token") == 0


def test_item5_a_token_deleted_from_the_store_stops_being_sent_within_recheck(
    fake: FakeTikTok, served: str, clock: Any
) -> None:
    store = MemoryTokenStore()
    _seed(fake, store, "u", due=False)
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        httpx.Client(auth=TikTokAuth(client, store, "u", recheck=60)) as http,
    ):
        assert http.get(_user_info(fake, served)).status_code == 200
        store.delete("u")
        assert http.get(_user_info(fake, served)).status_code == 200  # within recheck: the copy in memory
        clock(61)
        with pytest.raises(ReauthorizationRequiredError):
            http.get(_user_info(fake, served))


def test_item5_recheck_zero_reads_the_store_on_every_request(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    _seed(fake, store, "u", due=False)
    replacement = TikTokToken(fake.issue_token(open_id="u"))
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        httpx.Client(auth=TikTokAuth(client, store, "u", recheck=0)) as http,
    ):
        http.get(_user_info(fake, served))
        store.set("u", replacement)
        response = http.get(_user_info(fake, served))
    assert response.request.headers["Authorization"] == f"Bearer {replacement.access_token}"


# -- item 11: allowed hosts ----------------------------------------------------------------------------------------


def test_item11_ipv6_hosts_match_in_every_driver(fake: FakeTikTok) -> None:
    store = MemoryTokenStore()
    token = _seed(fake, store, due=False)
    client = TikTokOAuth2Client("test-key", SECRET, token_url="http://[::1]:8000/v2/oauth/token/")
    auth = TikTokAuth(client, store)
    assert "[::1]:8000" in auth.allowed_hosts
    request = httpx.Request("GET", "http://[::1]:8000/v2/user/info/")
    next(auth.sync_auth_flow(request))
    assert request.headers["Authorization"] == f"Bearer {token.access_token}"
    assert auth._hosts.allows_str("http://[::1]:8000/v2/user/info/")
    other = httpx.Request("GET", "http://[::1]:9000/v2/user/info/")
    next(auth.sync_auth_flow(other))
    assert "Authorization" not in other.headers
    client.close()


@pytest.mark.parametrize(
    "hosts", ["open.tiktokapis.com", ["https://open.tiktokapis.com"], ["a.example/path"], [""], ["::1:80"]]
)
def test_item11_allowed_hosts_are_validated(client_factory: Any, hosts: Any) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        TikTokAuth(client_factory(), allowed_hosts=hosts)


@pytest.fixture
def client_factory(fake: FakeTikTok) -> Iterator[Any]:
    clients: list[TikTokOAuth2Client] = []

    def make() -> TikTokOAuth2Client:
        clients.append(TikTokOAuth2Client("test-key", SECRET))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


# -- logout (API.md section 3) --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_logout_revokes_and_deletes_under_the_lock(fake: FakeTikTok, served: str, kind: str) -> None:
    store = MemoryTokenStore()
    token = _seed(fake, store, due=False)
    if kind == "sync":
        with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            auth = TikTokAuth(client, store)
            httpx.get(_user_info(fake, served), auth=auth)
            auth.logout()
            auth.logout()  # nothing stored: nothing to do
            with pytest.raises(ReauthorizationRequiredError):
                httpx.get(_user_info(fake, served), auth=auth)
    else:

        async def go() -> None:
            async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
                auth = TikTokAuth(client, store)
                await auth.alogout()
                await auth.alogout()
                async with httpx.AsyncClient(auth=auth) as http:
                    with pytest.raises(ReauthorizationRequiredError):
                        await http.get(_user_info(fake, served))

        asyncio.run(go())
    assert store.get("default") is None
    revoked = [r for r in fake.requests if r.url.endswith("/v2/oauth/revoke/")]
    assert len(revoked) == 1
    assert token.access_token.encode() in revoked[0].body


def test_logout_of_a_token_tiktok_already_revoked_still_deletes_it(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    _seed(fake, store, due=False)
    fake.revoke_grants("default")
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        TikTokAuth(client, store).logout()
    assert store.get("default") is None


# -- item 8: fork ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_item8_a_child_forked_mid_refresh_does_not_inherit_held_locks(fake: FakeTikTok, served: str) -> None:
    store = SlowLocklessStore()  # only the in-process lock serialises: the one a fork inherits held
    _seed(fake, store)
    fake.token_delay = 1.5
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        auth = TikTokAuth(client, store)
        refreshing = threading.Thread(target=lambda: httpx.get(_user_info(fake, served), auth=auth))
        refreshing.start()
        time.sleep(0.5)  # the refresh holds the in-process lock of (store, "default") now
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # The child's copy of the store gets a good token; under the lock it is read and used as is.
                store.set("default", TikTokToken(fake.issue_token(open_id="child")))
                outcome, _ = TikTokAuth(client, store)._source.renew()
                code = 0 if outcome == "fresh" else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child blocked on a lock its parent held")
        refreshing.join()
    assert os.waitstatus_to_exitcode(status) == 0


# -- the storm ------------------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "file", "redis", "sqlite-docs"])
def storm_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    kind = request.param
    if kind == "memory":
        shared = MemoryTokenStore()
        return lambda: shared
    if kind == "file":
        return lambda: FileTokenStore(tmp_path / "tokens")
    if kind == "redis":
        from tiktok_oauth.stores.redis import RedisTokenStore

        client = request.getfixturevalue("redis_client")
        return lambda: RedisTokenStore(client)
    path = str(tmp_path / "tokens.db")
    DocsSQLiteStore(path)
    return lambda: DocsSQLiteStore(path)


@pytest.mark.slow
def test_cancellation_storm_loses_no_token_and_deadlocks_nothing(
    fake: FakeTikTok, served: str, storm_store: Any
) -> None:
    fake.token_delay = 0.5
    result = asyncio.run(storm(fake, served, storm_store, keys=8, requests=64, rounds=2))
    assert result.deadlocks == 0
    assert result.stale_uses == 0
    assert result.errors == {}
    assert result.cancelled > 0
    assert result.refreshes >= 8
