"""Keeper processes sharing one store: each due token refreshed exactly once; a SIGKILLed keeper's work finished.

Each test runs on one Redis (the session's server, flushed) and on one PostgreSQL (the session's server, a
table of the test's). The fake TikTok is served from this process behind `_GatedFront`, a loopback front
that can hold token requests at a gate and drops a held request whose client died meanwhile, unhandled: the
kill came before the request reached TikTok, so no refresh token was rotated behind the store's back. The
keepers are `python -m tests._keeper_worker` processes (see that module), each with its own connections.
A dead keeper's Redis locks expire after the lock timeout; its PostgreSQL advisory locks go with its
sessions, at once.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import pytest
import sqlalchemy as sa

from tests.conftest import SECRET
from tests.stores._sql_backends import psycopg_url, unique_table
from tiktok_oauth import TikTokToken, _clock
from tiktok_oauth.stores.redis import RedisTokenStore
from tiktok_oauth.stores.sql import SQLTokenStore
from tiktok_oauth.testing import FakeTikTok

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Redis: a dead holder's lock expires after this. PostgreSQL: how long a keeper waits for a lock.
REDIS_LOCK_TIMEOUT = 1.5
SQL_LOCK_TIMEOUT = 30.0


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a dead client is seen as a closed connection.
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Stay quiet."""

    def _answer(self) -> None:
        front = self.server.front
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"{front.base_url}{self.path}"
        time.sleep(front.fake.request_delay(self.command, url))
        front.gate.wait()
        if _hung_up(self.connection):
            front.count_dropped()
            self.close_connection = True
            return
        answer = front.fake.handle(self.command, url, dict(self.headers.items()), body)
        assert answer is not None
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):
            self.wfile.write(answer.body)


def _hung_up(connection: socket.socket) -> bool:
    """Whether the client closed its end (it sends nothing more after its one request)."""
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionError:
        return True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    request_queue_size = 1024

    def __init__(self, front: _GatedFront) -> None:
        self.front = front
        super().__init__(("127.0.0.1", 0), _Handler)


class _GatedFront:
    """The fake on loopback; `gate.clear()` holds requests, `gate.set()` lets them on (dead clients' dropped)."""

    def __init__(self, fake: FakeTikTok) -> None:
        self.fake = fake
        self.gate = threading.Event()
        self.gate.set()
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = _Server(self)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def count_dropped(self) -> None:
        with self._lock:
            self.dropped += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass
class Backend:
    """One shared store: the test's own handle on it, what the keepers are told, and its locks."""

    store: Any
    worker_args: list[str]  # STORE_URL, then LOCK_TIMEOUT [TABLE] (see tests._keeper_worker)
    held_locks: Callable[[], int]  # locks held right now, by anyone
    # Right after a keeper holding locks is killed, given every key: what must be true of its locks.
    check_dead_keepers_locks: Callable[[list[str]], None]


def _redis_backend(redis_server: Any, redis_client: Any) -> Backend:
    store = RedisTokenStore(redis_client)

    def expire_within_the_lock_timeout(keys: list[str]) -> None:
        # A living holder would extend them while its requests hang at the gate; a dead one cannot.
        deadline = time.monotonic() + REDIS_LOCK_TIMEOUT + 1.0
        while redis_client.keys(store.lock_name("*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert redis_client.keys(store.lock_name("*")) == []
        probe = RedisTokenStore(redis_client, lock_blocking_timeout=0.1)
        for key in keys:  # every key's lock can be taken at once
            with probe.lock(key):
                pass

    return Backend(
        store,
        [f"redis://127.0.0.1:{redis_server.port}", str(REDIS_LOCK_TIMEOUT)],
        lambda: len(redis_client.keys(store.lock_name("*"))),
        expire_within_the_lock_timeout,
    )


def _postgres_backend(url: str, table: str, engine: sa.Engine) -> Backend:
    advisory = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
    )

    def held_locks() -> int:
        with engine.connect() as connection:
            return int(connection.execute(advisory).scalar_one())

    def released_at_once(keys: list[str]) -> None:
        deadline = time.monotonic() + 10.0  # the server ends a dead client's session as it reads its EOF
        while held_locks() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held_locks() == 0  # well before the 30 s a waiter would wait
        probe = SQLTokenStore(engine, table=table, lock_timeout=0)
        for key in keys:  # every key's lock can be taken with no wait at all
            with probe.lock(key):
                pass

    return Backend(
        SQLTokenStore(engine, table=table), [url, str(SQL_LOCK_TIMEOUT), table], held_locks, released_at_once
    )


@pytest.fixture(params=["redis", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "redis":
        yield _redis_backend(request.getfixturevalue("redis_server"), request.getfixturevalue("redis_client"))
        return
    url: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(psycopg_url(url))
    try:
        yield _postgres_backend(url, unique_table(request, url), engine)
    finally:
        engine.dispose()


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok(client_key="test-key", client_secret=SECRET)


@pytest.fixture
def front(fake: FakeTikTok) -> Iterator[_GatedFront]:
    with _GatedFront(fake) as front:
        yield front


def _store_due(fake: FakeTikTok, store: Any, count: int) -> dict[str, TikTokToken]:
    tokens = {}
    for i in range(count):
        key = f"user-{i:04d}"
        token = TikTokToken(fake.issue_token(open_id=key))
        token["expires_at"] = int(_clock.now()) + 600
        store.set(key, token)
        tokens[key] = token
    return tokens


def _start(backend: Backend, base_url: str, concurrency: int) -> subprocess.Popen[str]:
    url, *lock_and_table = backend.worker_args
    process = subprocess.Popen(
        [sys.executable, "-m", "tests._keeper_worker", url, base_url, str(concurrency), *lock_and_table],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def _go(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()


def _summary(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    return json.loads(out.strip().splitlines()[-1])["summary"]  # type: ignore[no-any-return]


def _kill_all(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _assert_every_token_refreshed_once(
    fake: FakeTikTok, backend: Backend, before: dict[str, TikTokToken]
) -> None:
    assert fake.grant_count("refresh_token") == len(before)
    assert fake.stale_refresh_token_uses == 0
    for key, old in before.items():
        stored = backend.store.get(key)  # parses: a whole token, not a torn one
        assert stored is not None
        assert stored.refresh_token != old.refresh_token
        assert not stored.is_expired(3600)
        headers = {"Authorization": f"Bearer {stored.access_token}"}
        answer = fake.handle("GET", fake.user_info_url() + "?fields=open_id", headers, b"")
        assert answer is not None
        assert answer.status == 200
    assert backend.held_locks() == 0  # every lock released (or expired)


def test_four_keepers_refresh_each_due_token_exactly_once(
    backend: Backend, fake: FakeTikTok, front: _GatedFront
) -> None:
    before = _store_due(fake, backend.store, 200)
    fake.token_delay = 0.02
    keepers = [_start(backend, front.base_url, 8) for _ in range(4)]
    try:
        _go(keepers)
        summaries = [_summary(keeper) for keeper in keepers]
    finally:
        _kill_all(keepers)
    assert sum(summary["refreshed"] for summary in summaries) == 200
    assert all(summary["refreshed"] > 0 for summary in summaries)  # the work was divided
    assert all(not summary["failed"] and not summary["reauthorization_required"] for summary in summaries)
    _assert_every_token_refreshed_once(fake, backend, before)


def test_a_sigkilled_keeper_leaves_no_token_torn_or_lost_and_the_others_finish(
    backend: Backend, fake: FakeTikTok, front: _GatedFront
) -> None:
    before = _store_due(fake, backend.store, 120)
    fake.token_delay = 0.05
    victim = _start(backend, front.base_url, 8)
    keepers = [_start(backend, front.base_url, 8) for _ in range(2)]
    try:
        _go([victim])
        assert victim.stdout is not None
        for _ in range(5):  # it is under way
            assert "outcome" in json.loads(victim.stdout.readline())
        front.gate.clear()  # hold every token request: the victim has refreshes in flight, under their locks
        time.sleep(0.5)  # answers already sent are written to the store by now
        assert backend.held_locks() >= 1
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        backend.check_dead_keepers_locks(list(before))
        _go(keepers)
        front.gate.set()
        summaries = [_summary(keeper) for keeper in keepers]
    finally:
        _kill_all([victim, *keepers])
    assert victim.returncode == -signal.SIGKILL
    assert front.dropped >= 1  # the victim's refreshes in flight never reached TikTok
    assert all(not summary["failed"] and not summary["reauthorization_required"] for summary in summaries)
    assert sum(summary["refreshed"] for summary in summaries) <= 120 - 5
    # The survivors took the dead keeper's locks (Redis: once expired; PostgreSQL: at once) and did the rest.
    _assert_every_token_refreshed_once(fake, backend, before)
