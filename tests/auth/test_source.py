"""The one writer (`TokenSource`): what it promises whoever calls it and whatever happens to the caller.

Real threads, tasks and cancellations against FakeTikTok served on loopback, with strict rotation: a
refresh token used twice is counted by the fake (`stale_refresh_token_uses`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SECRET, token_request_arrived
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    LockLostError,
    MemoryTokenStore,
    NothingStoredError,
    ReauthorizationRequiredError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    refresh_due,
)
from tiktok_oauth.auth import TokenSource
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.web import TikTokLogin

DEADLINE = 30.0  # generous: these wait on events, and a busy machine is slow


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def due_token(fake: FakeTikTok, store: Any, key: str = "u1") -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=key))
    token["expires_at"] = int(time.time())
    store.set(key, token)
    return token


def wait_until(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_refresh_under_way_is_stored_even_when_asyncio_run_ends(
    fake: FakeTikTok, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller gives up after the refresh reached TikTok, and `asyncio.run` returns at once, cancelling
    every task left: the refresh still completes and its rotated token reaches the store."""
    store = MemoryTokenStore()
    old = due_token(fake, store)
    arrived = token_request_arrived(fake, monkeypatch)
    fake.token_delay = 1.0  # TikTok is slow to answer: the loop ends meanwhile

    async def main() -> None:
        client = AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served))
        api = httpx.AsyncClient(auth=TikTokAuth(client, store, "u1"))
        request = asyncio.create_task(api.get(fake.user_info_url(served) + "?fields=open_id"))
        assert await asyncio.to_thread(arrived.wait, DEADLINE)
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await request
        await api.aclose()
        # main returns: asyncio.run now cancels every task left, the refresh's among them

    asyncio.run(main())
    stored = store.get("u1")
    assert stored is not None
    assert stored.refresh_token != old.refresh_token, "the rotated token died with the event loop"
    assert fake.grant_count("refresh_token") == 1
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        client.refresh_token(stored)  # the stored refresh token is the live one
    assert fake.stale_refresh_token_uses == 0


class LoginWatchingStore(FileTokenStore):
    """A file store that tells when the web app asks for the key's lock or writes the key."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.login_reached_the_store = threading.Event()

    def lock(self, key: str) -> Any:
        self.login_reached_the_store.set()
        return super().lock(key)

    def set(self, key: str, token: TikTokToken) -> None:
        self.login_reached_the_store.set()
        super().set(key, token)


class HoldAnswer(httpx.BaseTransport):
    """Real HTTP; a token answer is held back until `release` is set (TikTok answered, we are slow)."""

    def __init__(self, release: threading.Event) -> None:
        self.sent = threading.Event()
        self._release = release
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.url.path == "/v2/oauth/token/":
            self.sent.set()
            assert self._release.wait(DEADLINE)
        return response

    def close(self) -> None:
        self._inner.close()


def test_a_new_login_is_not_undone_by_a_refresh_already_in_flight(
    fake: FakeTikTok, served: str, tmp_path: Path
) -> None:
    """The user logs in again (more scopes) while a worker (another process: its own store object on
    the same directory) refreshes the old grant: the login wins."""
    web_store = LoginWatchingStore(tmp_path)
    store = FileTokenStore(tmp_path)
    due_token(fake, store, "u1")
    held = HoldAnswer(web_store.login_reached_the_store)
    worker_http = httpx.Client(transport=held)
    worker_client = TikTokOAuth2Client("test-key", SECRET, http_client=worker_http, **fake.endpoints(served))
    worker = threading.Thread(target=TokenSource.over(worker_client, store, "u1").renew)
    worker.start()
    assert held.sent.wait(DEADLINE)  # the worker's refresh is answered, not yet written

    with TikTokOAuth2Client(
        "test-key", SECRET, redirect_uri="https://app.example/cb", **fake.endpoints(served)
    ) as client:
        login = TikTokLogin(client, web_store)
        session: dict[str, Any] = {}
        callback = fake.authorize(
            login.begin(session), open_id="u1", scopes=("user.info.basic", "video.list")
        )
        result = login.complete(session, callback)
    worker.join(DEADLINE)
    assert not worker.is_alive()
    worker_http.close()

    stored = store.get("u1")
    assert stored is not None
    assert stored.access_token == result.token.access_token, "the refresh overwrote the new login"
    assert "video.list" in stored.scopes


class LosingLock(MemoryTokenStore):
    """A memory store whose held lock reports itself lost (as a Redis lock that expired would)."""

    class Lost:
        def check(self) -> None:
            raise LockLostError("the lock of 'u1' was lost")

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[Any]:
        with super().lock(key):
            yield self.Lost()

    @contextlib.asynccontextmanager
    async def alock(self, key: str) -> AsyncIterator[Any]:
        async with super().alock(key):
            yield self.Lost()


def test_a_lost_lock_sends_no_refresh_and_changes_nothing(fake: FakeTikTok, served: str) -> None:
    store = LosingLock()
    old = due_token(fake, store)
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        pytest.raises(LockLostError),
    ):
        TokenSource.over(client, store, "u1").renew()
    assert fake.grant_count("refresh_token") == 0
    assert store.get("u1") == old


def test_a_lost_lock_sends_no_refresh_from_async_code_either(fake: FakeTikTok, served: str) -> None:
    store = LosingLock()
    old = due_token(fake, store)

    async def main() -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            with pytest.raises(LockLostError):
                await TokenSource.over(client, store, "u1").arenew()

    asyncio.run(main())
    assert fake.grant_count("refresh_token") == 0
    assert store.get("u1") == old


class FailingWrites(MemoryTokenStore):
    """A memory store whose next `failures` writes fail (a database down for a moment)."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def set(self, key: str, token: TikTokToken) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise LockLostError(f"the lock of {key!r} was lost")
        super().set(key, token)


def test_a_token_whose_write_failed_is_written_under_the_next_lock(fake: FakeTikTok, served: str) -> None:
    store = FailingWrites(0)
    due_token(fake, store)
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        source = TokenSource.over(client, store, "u1")
        store.failures = 1
        with pytest.raises(LockLostError):
            source.renew()
        assert source.renew()[0] == "refreshed"  # the kept token is written, nothing is sent again
    stored = store.get("u1")
    assert stored is not None
    assert fake.grant_count("refresh_token") == 1
    assert fake.stale_refresh_token_uses == 0


def test_a_kept_token_never_overwrites_a_new_login(fake: FakeTikTok, served: str) -> None:
    store = FailingWrites(0)
    due_token(fake, store)
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        source = TokenSource.over(client, store, "u1")
        store.failures = 1
        with pytest.raises(LockLostError):
            source.renew()
        relogin = TikTokToken(fake.issue_token(open_id="u1", scopes=("user.info.basic", "video.list")))
        store.set("u1", relogin)
        assert source.renew()[1].access_token == relogin.access_token
    assert store.get("u1") == relogin


def test_a_key_holding_nothing_raises_nothing_stored(fake: FakeTikTok, served: str) -> None:
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        pytest.raises(NothingStoredError, match="'u9'"),
    ):
        TokenSource.over(client, MemoryTokenStore(), "u9").token()


def test_a_refresh_refused_with_invalid_grant_marks_the_key_and_nothing_is_sent_again(
    fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    old = due_token(fake, store)
    fake.revoke_grants("u1")  # the user removed the app
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        source = TokenSource.over(client, store, "u1")
        with pytest.raises(ReauthorizationRequiredError):
            source.token()
        marked = store.get("u1")
        assert marked is not None
        assert marked.needs_login
        assert (marked.access_token, marked.refresh_token) == (old.access_token, old.refresh_token)
        sent = len(fake.token_requests)
        for fresh_source in (source, TokenSource.over(client, store, "u1")):
            with pytest.raises(ReauthorizationRequiredError, match="must log in again"):
                fresh_source.token()
        report = refresh_due(client, store, keys=["u1"])
        assert report.reauthorization_required == ["u1"]
    assert len(fake.token_requests) == sent, "a marked key was sent to TikTok again"


def test_a_new_login_replaces_a_marked_token(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    due_token(fake, store)
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        source = TokenSource.over(client, store, "u1")
        assert source.mark_needs_login()
        assert not source.mark_needs_login()  # already marked
        source.store_login(TikTokToken(fake.issue_token(open_id="u1")))
        assert source.token().needs_login is False


def test_marking_skips_a_token_issued_after_the_event(fake: FakeTikTok, served: str) -> None:
    """A webhook retried for 72 hours must not undo a login that came after it."""
    store = MemoryTokenStore()
    token = TikTokToken(fake.issue_token(open_id="u1"))
    store.set("u1", token)
    assert token.issued_at is not None
    source = TokenSource.over(None, store, "u1")
    assert not source.mark_needs_login(unless_issued_after=token.issued_at - 10)
    assert not store.get("u1").needs_login  # type: ignore[union-attr]
    assert source.mark_needs_login(unless_issued_after=token.issued_at + 10)
    assert store.get("u1").needs_login  # type: ignore[union-attr]


def test_marking_from_async_code_uses_the_same_lock(fake: FakeTikTok) -> None:
    store = MemoryTokenStore()
    store.set("u1", TikTokToken(fake.issue_token(open_id="u1")))

    async def main() -> bool:
        return await TokenSource.over(None, store, "u1").amark_needs_login()

    assert asyncio.run(main())
    assert store.get("u1").needs_login  # type: ignore[union-attr]
