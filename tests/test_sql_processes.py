"""Several processes on one SQL database: one refresh for all, a SIGKILLed lock holder, PostgreSQL going away.

Mirrors `tests/test_redis_processes.py`. The fake TikTok is served from this (the parent) process; the
workers (`python -m tests._sql_workers`, see that module) each make their own `SQLTokenStore` from the URL
and call the fake's user info URL through `httpx.Client(auth=TikTokAuth(client, store, key))`. Each test
runs on a PostgreSQL server (the session's, with a table of the test's) and on a SQLite file.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from tests._postgres import PostgresServer, require_postgres
from tests._workers import CountingTransport
from tests.conftest import SECRET
from tests.stores._sql_backends import psycopg_url, unique_table
from tiktok_oauth import TikTokAuth, TikTokOAuth2Client, TikTokToken, TokenStoreError, _clock
from tiktok_oauth.stores.sql import SQLTokenStore
from tiktok_oauth.testing import FakeTikTok

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
KEY = "shared-user"
WORKERS = 6


@dataclass
class Database:
    url: str
    table: str

    def store(self, **kwargs: Any) -> SQLTokenStore:
        return SQLTokenStore(self.url, table=self.table, **kwargs)

    def raw_token(self) -> str:
        """The `token` column of KEY's row, byte for byte."""
        engine = sa.create_engine(psycopg_url(self.url))
        try:
            with engine.connect() as connection:
                query = sa.text(f'SELECT token FROM "{self.table}" WHERE key = :key')  # noqa: S608
                value: str = connection.execute(query, {"key": KEY}).scalar_one()
                return value
        finally:
            engine.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path}/tokens.db", "tiktok_oauth_tokens")
    url: str = request.getfixturevalue("postgres_url")
    return Database(url, unique_table(request, url))


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
        [sys.executable, "-m", "tests._sql_workers", *map(str, args)],
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
    out, _ = process.communicate("go\n", timeout=60)
    return json.loads(out.strip().splitlines()[-1])


def _reap(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _access_token_works(fake: FakeTikTok, base_url: str, token: TikTokToken) -> bool:
    headers = {"Authorization": f"Bearer {token.access_token}"}
    return httpx.get(fake.user_info_url(base_url), headers=headers).status_code == 200


def _stored(db: Database) -> TikTokToken:
    with db.store() as store:
        token = store.get(KEY)
    assert token is not None
    return token


def test_six_processes_refresh_an_expired_token_once(db: Database, fake: FakeTikTok, base_url: str) -> None:
    with db.store() as store:
        store.set(KEY, _expired_token(fake))
    fake.token_delay = 0.3  # widen the race: every worker sees the expired token before the refresh ends
    workers = [_start("refresh", db.url, db.table, base_url, KEY, 30) for _ in range(WORKERS)]
    try:
        for worker in workers:
            _expect_line(worker, "ready")
        for worker in workers:  # all at once: each reads "go" and races for the lock
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [_finish(worker) for worker in workers]
    finally:
        _reap(workers)
    assert results == [{"status": 200, "error": None}] * WORKERS
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0
    stored = _stored(db)
    assert not stored.is_expired()
    assert _access_token_works(fake, base_url, stored)


def test_a_sigkilled_lock_holder_frees_the_lock_at_once(
    db: Database, fake: FakeTikTok, base_url: str
) -> None:
    lock_timeout = 120  # far longer than the test may take: the lock must go with its holder, not time out
    with db.store() as store:
        store.set(KEY, _expired_token(fake))
    holder = _start("hold", db.url, db.table, KEY)
    refresher = _start("refresh", db.url, db.table, base_url, KEY, lock_timeout)
    try:
        _expect_line(holder, "locked")
        _expect_line(refresher, "ready")
        os.kill(holder.pid, signal.SIGKILL)  # mid-"refresh": it never releases its lock
        holder.wait(timeout=10)
        started = time.monotonic()
        result = _finish(refresher)
        waited = time.monotonic() - started
    finally:
        _reap([holder, refresher])
    assert holder.returncode == -signal.SIGKILL
    assert result == {"status": 200, "error": None}
    assert waited < lock_timeout / 2, "the refresher waited for the lock timeout, not for the holder's death"
    assert fake.grant_count("refresh_token") == 1
    stored = TikTokToken.from_json(db.raw_token())  # whole: it parses
    assert not stored.is_expired()
    assert _access_token_works(fake, base_url, stored)


def test_a_held_lock_makes_another_process_wait_then_time_out(
    db: Database, fake: FakeTikTok, base_url: str
) -> None:
    with db.store() as store:
        store.set(KEY, _expired_token(fake))
        before = db.raw_token()
    holder = _start("hold", db.url, db.table, KEY)
    refresher = _start("refresh", db.url, db.table, base_url, KEY, 0.5)
    try:
        _expect_line(holder, "locked")
        _expect_line(refresher, "ready")
        result = _finish(refresher)
    finally:
        _reap([holder, refresher])
    assert result["status"] is None
    assert result["error"].startswith("TokenStoreError: timed out after 0.5 s")
    assert fake.grant_count("refresh_token") == 0
    assert db.raw_token() == before


# -- PostgreSQL going away ------------------------------------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of this test's own, free to be stopped and started again."""
    with PostgresServer(require_postgres()) as server:
        yield server


def _auth_on(
    server: PostgresServer, fake: FakeTikTok, base_url: str, http: httpx.Client | None = None
) -> TikTokAuth:
    oauth = TikTokOAuth2Client("test-key", SECRET, timeout=5.0, http_client=http, **fake.endpoints(base_url))
    return TikTokAuth(oauth, SQLTokenStore(server.url, lock_timeout=5.0), KEY)


def _close(auth: TikTokAuth) -> None:
    assert isinstance(auth.store, SQLTokenStore)
    assert isinstance(auth.client, TikTokOAuth2Client)
    auth.store.close()
    auth.client.close()


def test_postgres_stopped_before_a_refresh_gives_token_store_error_quickly(
    own_server: PostgresServer, fake: FakeTikTok, base_url: str
) -> None:
    auth = _auth_on(own_server, fake, base_url)
    db = Database(own_server.url, "tiktok_oauth_tokens")
    auth.store.set(KEY, _expired_token(fake))
    before = db.raw_token()
    own_server.stop()
    started = time.monotonic()
    try:
        with httpx.Client(auth=auth) as http, pytest.raises(TokenStoreError, match=f"key '{KEY}'"):
            http.get(fake.user_info_url(base_url))
    finally:
        _close(auth)
    assert time.monotonic() - started < 5  # the lock timeout
    assert fake.grant_count("refresh_token") == 0
    own_server.start()
    assert db.raw_token() == before  # the very same text


def test_postgres_stopped_mid_refresh_gives_token_store_error_and_keeps_the_old_token(
    own_server: PostgresServer, fake: FakeTikTok, base_url: str
) -> None:
    token_posts = CountingTransport(urlsplit(fake.endpoints(base_url)["token_url"]).path)
    auth = _auth_on(own_server, fake, base_url, http=httpx.Client(transport=token_posts))
    db = Database(own_server.url, "tiktok_oauth_tokens")
    auth.store.set(KEY, _expired_token(fake))
    before = db.raw_token()
    fake.token_delay = 1.0
    outcome: list[BaseException | int] = []

    def request() -> None:
        try:
            with httpx.Client(auth=auth) as http:
                outcome.append(http.get(fake.user_info_url(base_url)).status_code)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=request)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not token_posts.count and time.monotonic() < deadline:  # sent, under the lock
            time.sleep(0.005)
        assert token_posts.count, "the refresh never started"
        own_server.stop()  # cuts every session: the lock's, and the pool's
        started = time.monotonic()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the request hung after PostgreSQL went away"
        assert time.monotonic() - started < 5
        assert len(outcome) == 1
        # The write ran on the lock's own session, which the stop ended: LockLostError, a TokenStoreError.
        assert isinstance(outcome[0], TokenStoreError), outcome
    finally:
        thread.join()
        _close(auth)
        token_posts.close()
    assert fake.grant_count("refresh_token") == 1  # TikTok rotated the token: the new one is held in memory
    own_server.start()
    # The database never saw the new token: the old one is there, whole and unchanged.
    assert db.raw_token() == before
    TikTokToken.from_json(before)
