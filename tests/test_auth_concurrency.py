"""Refresh once: real threads, asyncio tasks and processes against FakeTikTok served on loopback.

The fake's token endpoint is slowed (`token_delay`) so that every caller arrives while the refresh is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    FileTokenStore,
    MemoryTokenStore,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    _clock,
)
from tiktok_oauth.testing import FakeTikTok


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    fake.token_delay = 0.3
    with fake.serve() as base_url:
        yield base_url


def expired_token(fake: FakeTikTok) -> TikTokToken:
    token = TikTokToken(fake.issue_token())
    token["expires_at"] = int(_clock.now()) - 1
    return token


def test_64_requests_from_32_threads_refresh_once(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    store.set("default", expired_token(fake))
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    barrier = threading.Barrier(32)
    with client, httpx.Client(auth=TikTokAuth(client, store), limits=httpx.Limits(max_connections=64)) as api:

        def two_requests(_: int) -> list[int]:
            barrier.wait()
            return [api.get(fake.user_info_url(served)).status_code for _ in range(2)]

        with ThreadPoolExecutor(32) as pool:
            statuses = [s for pair in pool.map(two_requests, range(32)) for s in pair]
    assert statuses == [200] * 64
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


def test_four_auth_objects_sharing_a_store_refresh_once(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    store.set("default", expired_token(fake))
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    auths = [TikTokAuth(client, store) for _ in range(4)]
    barrier = threading.Barrier(32)

    def request(i: int) -> int:
        with httpx.Client(auth=auths[i % 4]) as api:
            barrier.wait()
            return api.get(fake.user_info_url(served)).status_code

    with client, ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(request, range(32)))
    assert statuses == [200] * 32
    assert fake.grant_count("refresh_token") == 1


def test_requests_sessions_in_threads_refresh_once(fake: FakeTikTok, served: str) -> None:
    requests = pytest.importorskip("requests")
    store = MemoryTokenStore()
    store.set("default", expired_token(fake))
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    auth = TikTokAuth(client, store)
    barrier = threading.Barrier(16)

    def request(_: int) -> int:
        with requests.Session() as session:
            session.auth = auth
            barrier.wait()
            return int(session.get(fake.user_info_url(served)).status_code)

    with client, ThreadPoolExecutor(16) as pool:
        assert list(pool.map(request, range(16))) == [200] * 16
    assert fake.grant_count("refresh_token") == 1


def test_200_asyncio_tasks_refresh_once(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    store.set("default", expired_token(fake))

    async def main() -> list[int]:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            limits = httpx.Limits(max_connections=50)
            async with httpx.AsyncClient(auth=TikTokAuth(client, store), limits=limits, timeout=30) as api:
                responses = await asyncio.gather(*(api.get(fake.user_info_url(served)) for _ in range(200)))
        return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * 200
    assert fake.grant_count("refresh_token") == 1


def test_after_a_401_every_waiting_thread_uses_the_one_new_token(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    store.set("default", TikTokToken(fake.issue_token()))
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    fake.expire_access_tokens()
    barrier = threading.Barrier(16)
    with client, httpx.Client(auth=TikTokAuth(client, store), limits=httpx.Limits(max_connections=32)) as api:

        def request(_: int) -> int:
            barrier.wait()
            return api.get(fake.user_info_url(served)).status_code

        with ThreadPoolExecutor(16) as pool:
            assert list(pool.map(request, range(16))) == [200] * 16
    assert fake.grant_count("refresh_token") == 1


WORKER = textwrap.dedent(
    """
    import sys, httpx
    from tiktok_oauth import FileTokenStore, TikTokAuth, TikTokOAuth2Client
    base, directory, secret, go = sys.argv[1:5]
    client = TikTokOAuth2Client("test-key", secret, token_url=base + "/v2/oauth/token/",
                                revoke_url=base + "/v2/oauth/revoke/", authorize_url=base + "/v2/auth/authorize/")
    with client, httpx.Client(auth=TikTokAuth(client, FileTokenStore(directory)), timeout=30) as api:
        import os, time
        while not os.path.exists(go):
            time.sleep(0.005)
        print(api.get(base + "/v2/user/info/?fields=open_id").status_code)
    """
)


@pytest.mark.slow
def test_six_processes_sharing_a_file_store_refresh_once(
    fake: FakeTikTok, served: str, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    old = expired_token(fake)
    store.set("default", old)
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, served, str(tmp_path / "tokens"), SECRET, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    time.sleep(1.5)  # let every interpreter start and wait at the line
    go.touch()
    outputs = [w.communicate(timeout=60) for w in workers]
    assert [out.strip() for out, _ in outputs] == ["200"] * 6, [err for _, err in outputs]
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0
    new = FileTokenStore(tmp_path / "tokens").get("default")
    assert new is not None
    assert new.refresh_token != old.refresh_token


HOLDER = textwrap.dedent(
    """
    import sys, time
    from tiktok_oauth import FileTokenStore
    with FileTokenStore(sys.argv[1]).lock("default"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


@pytest.mark.slow
def test_async_wait_for_a_file_lock_held_by_another_process_does_not_stall_the_loop(
    fake: FakeTikTok, served: str, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path)
    store.set("default", expired_token(fake))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "1.5"], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"

    async def main() -> tuple[int, int, float]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        started = time.monotonic()
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            httpx.AsyncClient(auth=TikTokAuth(client, store), timeout=30) as api,
        ):
            status = (await api.get(fake.user_info_url(served))).status_code
        waited = time.monotonic() - started
        done.set()
        await tick_task
        return status, ticks, waited

    try:
        status, ticks, waited = asyncio.run(main())
    finally:
        holder.wait(timeout=10)
        holder.stdout.close()
    assert status == 200
    assert waited >= 1.0  # it did wait for the other process's lock ...
    assert ticks >= 40  # ... while the loop kept ticking (about 100 ticks a second when free)
    assert fake.grant_count("refresh_token") == 1


class LocklessStore:
    """A store with no `lock`: only the in-process lock table keeps two callers of one key apart.

    `set` (called under that lock, after a refresh) notes how many entries the table holds at that moment.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, TikTokToken] = {}
        self.entries_seen: list[int] = []

    def get(self, key: str) -> TikTokToken | None:
        return self._tokens.get(key)

    def set(self, key: str, token: TikTokToken) -> None:
        from tiktok_oauth.auth._locks import locks

        self.entries_seen.append(locks.entries(self))
        self._tokens[key] = token

    def delete(self, key: str) -> None:
        self._tokens.pop(key, None)


def lockless_store(fake: FakeTikTok, keys: int) -> LocklessStore:
    store = LocklessStore()
    for i in range(keys):
        store._tokens[f"user-{i}"] = expired_token(fake)
    return store


def test_threads_refresh_each_key_once_and_leave_no_lock_entry_behind(fake: FakeTikTok, served: str) -> None:
    from tiktok_oauth.auth._locks import locks

    fake.token_delay = 0.05
    keys, callers = 40, 4
    store = lockless_store(fake, keys)
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    # Four auth objects per key: they share nothing but the lock table's entry for that key.
    auths = [TikTokAuth(client, store, f"user-{i % keys}") for i in range(keys * callers)]
    barrier = threading.Barrier(32)
    with client, httpx.Client(limits=httpx.Limits(max_connections=64), timeout=30) as api:

        def request(auth: TikTokAuth) -> int:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)  # the first 32 start together; the rest as threads free up
            return api.get(fake.user_info_url(served), auth=auth).status_code

        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(request, auths))
    assert statuses == [200] * (keys * callers)
    assert fake.grant_count("refresh_token") == keys
    assert fake.stale_refresh_token_uses == 0
    assert min(store.entries_seen) >= 1  # each write ran under an entry of the table
    assert locks.entries(store) == 0


def test_tasks_refresh_each_key_once_and_leave_no_lock_entry_behind(fake: FakeTikTok, served: str) -> None:
    from tiktok_oauth.auth._locks import locks

    fake.token_delay = 0.05
    keys, callers = 40, 4
    store = lockless_store(fake, keys)

    async def main() -> list[int]:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            auths = [TikTokAuth(client, store, f"user-{i % keys}") for i in range(keys * callers)]
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(limits=limits, timeout=30) as api:
                url = fake.user_info_url(served)
                responses = await asyncio.gather(*(api.get(url, auth=auth) for auth in auths))
        return [r.status_code for r in responses]

    assert asyncio.run(main()) == [200] * (keys * callers)
    assert fake.grant_count("refresh_token") == keys
    assert fake.stale_refresh_token_uses == 0
    assert min(store.entries_seen) >= 1
    assert locks.entries(store) == 0


def test_a_fresh_token_is_used_without_touching_the_lock_table(fake: FakeTikTok, served: str) -> None:
    from tiktok_oauth.auth._locks import locks

    store = LocklessStore()
    store.set("default", TikTokToken(fake.issue_token()))
    client = TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
    statuses: list[int] = []
    with client, httpx.Client(auth=TikTokAuth(client, store), timeout=30) as api:

        def requests() -> None:
            statuses.extend(api.get(fake.user_info_url(served)).status_code for _ in range(3))

        with locks._guard:  # a caller that touched the table would wait here until the end of this block
            worker = threading.Thread(target=requests, daemon=True)
            worker.start()
            worker.join(timeout=30)
            alive = worker.is_alive()
        worker.join()
    assert not alive
    assert statuses == [200] * 3
