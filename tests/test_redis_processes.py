"""Several processes on one Redis: one refresh for all, a killed lock holder, and Redis going away.

The fake TikTok is served from this (the parent) process; the workers (`python -m tests._workers`, see that
module) each open their own Redis connection and `RedisTokenStore`, and call the fake's user info URL
through `httpx.Client(auth=TikTokAuth(client, store, key))`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._redis import RedisServer, require_redis_server
from tests.conftest import SECRET
from tiktok_oauth import TikTokAuth, TikTokOAuth2Client, TikTokToken, TokenStoreError, _clock
from tiktok_oauth.stores.redis import RedisTokenStore
from tiktok_oauth.testing import FakeTikTok

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEY = "shared-user"
WORKERS = 6


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A server of this module's own (overriding the session's): these tests stop and restart it."""
    with RedisServer(require_redis_server()) as server:
        yield server


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok(client_key="test-key", client_secret=SECRET)


@pytest.fixture
def base_url(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as url:
        yield url


def _expired_token(fake: FakeTikTok) -> TikTokToken:
    token = TikTokToken(fake.issue_token())
    token["expires_at"] = int(_clock.now()) - 10
    return token


def _start(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests._workers", *map(str, args)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _expect_line(process: subprocess.Popen[str], expected: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == expected, f"worker said {line!r} instead of {expected!r}"


def _finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Let a `refresh` worker go (it is waiting for a line on stdin) and return what it printed."""
    out, _ = process.communicate("go\n", timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def _access_token_works(fake: FakeTikTok, base_url: str, token: TikTokToken) -> bool:
    headers = {"Authorization": f"Bearer {token.access_token}"}
    return httpx.get(fake.user_info_url(base_url), headers=headers).status_code == 200


def test_six_processes_refresh_an_expired_token_once(
    redis_server: RedisServer, redis_client: Any, fake: FakeTikTok, base_url: str
) -> None:
    RedisTokenStore(redis_client).set(KEY, _expired_token(fake))
    fake.token_delay = 0.3  # widen the race: every worker sees the expired token before the refresh ends
    workers = [_start("refresh", redis_server.port, base_url, KEY, 30) for _ in range(WORKERS)]
    try:
        for worker in workers:
            _expect_line(worker, "ready")
        for worker in workers:  # all at once: each reads "go" and races for the lock
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [_finish(worker) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert results == [{"status": 200, "error": None}] * WORKERS
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0
    stored = RedisTokenStore(redis_client).get(KEY)
    assert stored is not None
    assert not stored.is_expired()
    assert _access_token_works(fake, base_url, stored)


def test_a_sigkilled_lock_holder_delays_the_refresh_until_its_lock_expires(
    redis_server: RedisServer, redis_client: Any, fake: FakeTikTok, base_url: str
) -> None:
    lock_timeout = 1.5
    RedisTokenStore(redis_client).set(KEY, _expired_token(fake))
    holder = _start("hold", redis_server.port, KEY, lock_timeout)
    refresher = _start("refresh", redis_server.port, base_url, KEY, lock_timeout)
    try:
        _expect_line(holder, "locked")
        _expect_line(refresher, "ready")
        os.kill(holder.pid, signal.SIGKILL)  # mid-"refresh": it never releases its lock
        holder.wait(timeout=10)
        started = time.monotonic()
        result = _finish(refresher)
        waited = time.monotonic() - started
    finally:
        for process in (holder, refresher):
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert holder.returncode == -signal.SIGKILL
    assert result == {"status": 200, "error": None}
    assert waited < lock_timeout + 8, "the refresher waited far past the dead holder's lock expiry"
    assert fake.grant_count("refresh_token") == 1
    raw = redis_client.get(RedisTokenStore(redis_client).key_name(KEY))
    stored = TikTokToken.from_json(raw)  # whole: it parses
    assert not stored.is_expired()
    assert _access_token_works(fake, base_url, stored)


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A persistent server of this test's own (fsync always), so its data outlives a stop."""
    with RedisServer(require_redis_server(), persistent=True) as server:
        yield server


def _auth_on(server: RedisServer, fake: FakeTikTok, base_url: str) -> tuple[Any, TikTokAuth]:
    client = server.client()  # 1 s socket timeouts, no retries
    oauth = TikTokOAuth2Client("test-key", SECRET, timeout=5.0, **fake.endpoints(base_url))
    return client, TikTokAuth(oauth, RedisTokenStore(client, lock_timeout=5.0), KEY)


def test_redis_stopped_before_a_refresh_gives_token_store_error_quickly(
    own_server: RedisServer, fake: FakeTikTok, base_url: str
) -> None:
    client, auth = _auth_on(own_server, fake, base_url)
    before = _expired_token(fake)
    auth.store.set(KEY, before)
    raw_before = client.get(f"tiktok-oauth:{KEY}")
    own_server.stop()
    started = time.monotonic()
    try:
        with httpx.Client(auth=auth) as http, pytest.raises(TokenStoreError):
            http.get(fake.user_info_url(base_url))
    finally:
        client.close()
        assert isinstance(auth.client, TikTokOAuth2Client)
        auth.client.close()
    assert time.monotonic() - started < 5
    assert fake.grant_count("refresh_token") == 0
    own_server.start()
    check = own_server.client()
    try:
        assert check.get(f"tiktok-oauth:{KEY}") == raw_before  # the very same bytes
    finally:
        check.close()


def test_redis_stopped_mid_refresh_gives_token_store_error_and_no_half_written_token(
    own_server: RedisServer, fake: FakeTikTok, base_url: str
) -> None:
    client, auth = _auth_on(own_server, fake, base_url)
    auth.store.set(KEY, _expired_token(fake))
    raw_before = client.get(f"tiktok-oauth:{KEY}")
    fake.token_delay = 1.0
    outcome: list[BaseException | int] = []

    def request() -> None:
        try:
            with httpx.Client(auth=auth) as http:
                outcome.append(http.get(fake.user_info_url(base_url)).status_code)
        except BaseException as exc:
            outcome.append(exc)

    # The lock cannot be released either; that is a RuntimeWarning (the lock expires on its own).
    # The warning comes from the request's thread, so everything that starts it is inside the block.
    with pytest.warns(RuntimeWarning, match="could not release the Redis lock"):  # noqa: PT031
        thread = threading.Thread(target=request)
        thread.start()
        lock_name = auth.store.lock_name(KEY)
        while not client.exists(lock_name):  # the lock is taken: the refresh (1 s at the fake) begins
            time.sleep(0.005)
        own_server.stop()
        started = time.monotonic()
        thread.join(timeout=15)
    try:
        assert not thread.is_alive(), "the request hung after Redis went away"
        assert time.monotonic() - started < 5
        assert len(outcome) == 1
        assert type(outcome[0]) is TokenStoreError, outcome
    finally:
        client.close()
        assert isinstance(auth.client, TikTokOAuth2Client)
        auth.client.close()
    own_server.start()
    check = own_server.client()
    try:
        raw_after = check.get(f"tiktok-oauth:{KEY}")
    finally:
        check.close()
    # Redis never saw the new token: the old one is there, byte for byte, never a part of the new one.
    assert raw_after == raw_before
    TikTokToken.from_json(raw_after)
