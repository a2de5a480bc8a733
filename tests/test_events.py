"""`on_event`: one `TokenEvent` per thing done to a token, delivered outside every lock, never a token,
never able to change an outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    MemoryTokenStore,
    ReauthorizationRequiredError,
    TikTokOAuth2Client,
    TikTokToken,
    TokenEvent,
    TokenStoreError,
    refresh_due,
)
from tiktok_oauth.auth import TokenSource
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.web import TikTokLogin


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


class Recorder:
    """Records events, and checks each arrives with the key's lock free."""

    def __init__(self, store: MemoryTokenStore) -> None:
        self.store = store
        self.events: list[TokenEvent] = []

    def __call__(self, event: TokenEvent) -> None:
        with self.store.lock(event.key):  # would wait for ever (then fail) under the lock: 1 s is plenty
            self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]


def _due(fake: FakeTikTok, store: MemoryTokenStore, key: str = "u1") -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=key))
    token["expires_at"] = int(time.time())
    store.set(key, token)
    return token


def _no_secret_in(events: list[TokenEvent], *tokens: TikTokToken) -> None:
    text = repr(events) + "".join(repr(dataclasses.astuple(event)) for event in events)
    for token in tokens:
        assert token.access_token not in text
        assert str(token.refresh_token) not in text
    assert SECRET not in text


def test_a_refresh_then_a_revoked_grant_then_a_logout_report_each_once(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore(lock_timeout=1.0)
    recorder = Recorder(store)
    old = _due(fake, store)
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        source = TokenSource.over(client, store, "u1", on_event=recorder)
        assert source.renew()[0] == "refreshed"
        refreshed = store.get("u1")
        assert refreshed is not None
        fake.revoke_grants("u1")
        with pytest.raises(ReauthorizationRequiredError):
            source.renew(rejected=refreshed.access_token)
        with pytest.raises(ReauthorizationRequiredError):
            source.renew(rejected=refreshed.access_token)  # marked: nothing sent, nothing reported
        source.logout()
    assert recorder.kinds == ["refreshed", "refresh_failed", "needs_login", "revoked"]
    assert {event.key for event in recorder.events} == {"u1"}
    assert {event.open_id for event in recorder.events} == {"u1"}
    failed = recorder.events[1]
    assert isinstance(failed.error, ReauthorizationRequiredError)
    assert failed.log_id is not None  # TikTok's log_id, for its support
    _no_secret_in(recorder.events, old, refreshed)


def test_a_login_is_reported_from_sync_and_async_apps(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore(lock_timeout=1.0)
    recorder = Recorder(store)
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        login = TikTokLogin(client, store, on_event=recorder)
        session: dict[str, Any] = {}
        login.complete(session, fake.authorize(login.begin(session), open_id="u1"))

    async def main() -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            login = TikTokLogin(client, store, on_event=recorder)
            session: dict[str, Any] = {}
            await login.acomplete(session, fake.authorize(login.begin(session), open_id="u2"))

    asyncio.run(main())
    assert [(e.kind, e.key) for e in recorder.events] == [("logged_in", "u1"), ("logged_in", "u2")]


def test_the_keeper_reports_refreshes_and_retried_writes(fake: FakeTikTok, served: str) -> None:
    class RefusesOnce(MemoryTokenStore):
        armed = False

        def set(self, key: str, token: TikTokToken) -> None:
            if self.armed and key == "u2":
                self.armed = False
                raise TokenStoreError("the database is restarting")
            super().set(key, token)

    store = RefusesOnce(lock_timeout=1.0)
    recorder = Recorder(store)
    _due(fake, store, "u1")
    _due(fake, store, "u2")
    store.armed = True
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
        report = refresh_due(client, store, within=10**9, on_event=recorder, concurrency=1)
    assert sorted(report.refreshed) == ["u1", "u2"]
    assert sorted(recorder.kinds) == ["refreshed", "refreshed", "write_retried"]


def test_a_callback_that_raises_is_logged_and_changes_nothing(
    fake: FakeTikTok, served: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryTokenStore()
    _due(fake, store)

    def broken(event: TokenEvent) -> None:
        raise RuntimeError(f"boom {event.kind}")

    with (
        caplog.at_level(logging.WARNING, logger="tiktok_oauth"),
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
    ):
        assert TokenSource.over(client, store, "u1", on_event=broken).renew()[0] == "refreshed"
    assert "on_event raised RuntimeError" in caplog.text
    assert fake.grant_count("refresh_token") == 1


def test_tiktok_auth_reports_its_refreshes(fake: FakeTikTok, served: str) -> None:
    import httpx

    from tiktok_oauth import TikTokAuth

    store = MemoryTokenStore(lock_timeout=1.0)
    recorder = Recorder(store)
    _due(fake, store)
    with (
        TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
        httpx.Client(auth=TikTokAuth(client, store, "u1", on_event=recorder)) as http,
    ):
        assert http.get(fake.user_info_url(served), params={"fields": "open_id"}).status_code == 200
    assert recorder.kinds == ["refreshed"]
