"""refresh_due / arefresh_due against the served fake: outcomes, once-only, back-off, untouched failures."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    MemoryTokenStore,
    RefreshReport,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    arefresh_due,
    refresh_due,
)
from tiktok_oauth.testing import FakeTikTok


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def _stored(fake: FakeTikTok, store: MemoryTokenStore, key: str, *, due: bool) -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=key))
    token["expires_at"] = int(time.time()) + (60 if due else 86_000)
    store.set(key, token)
    return token


def _keep(kind: str, fake: FakeTikTok, served: str, store: Any, **kwargs: Any) -> RefreshReport:
    if kind == "sync":
        with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            return refresh_due(client, store, **kwargs)

    async def go() -> RefreshReport:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            return await arefresh_due(client, store, **kwargs)

    return asyncio.run(go())


KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


@KINDS
def test_due_tokens_are_refreshed_once_and_others_counted_fresh(
    kind: str, fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    for i in range(10):
        _stored(fake, store, f"due-{i}", due=True)
    for i in range(5):
        _stored(fake, store, f"later-{i}", due=False)
    seen: list[tuple[str, str]] = []
    report = _keep(
        kind, fake, served, store, within=3600, concurrency=4, progress=lambda k, o: seen.append((k, o))
    )
    assert sorted(report.refreshed) == [f"due-{i}" for i in range(10)]
    assert report.fresh == 0  # expiring() lists only the due ones
    assert fake.grant_count("refresh_token") == 10
    assert sorted(seen) == sorted((f"due-{i}", "refreshed") for i in range(10))
    again = _keep(kind, fake, served, store, within=3600, keys=[f"due-{i}" for i in range(10)])
    assert again.fresh == 10
    assert fake.grant_count("refresh_token") == 10
    assert "10 fresh" in str(again)


@KINDS
def test_failures_are_reported_per_key_and_leave_the_stored_token_byte_identical(
    kind: str, fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    revoked = _stored(fake, store, "revoked", due=True)
    fake.revoke_grants("revoked")
    report = _keep(kind, fake, served, store, keys=["revoked", "missing"])
    assert report.reauthorization_required == ["revoked"]
    assert report.failed == {}
    assert json.dumps(store.get("revoked"), sort_keys=True) == json.dumps(revoked, sort_keys=True)
    fake.fail_next(status=503, times=3)
    failing = _stored(fake, store, "flaky", due=True)
    report = _keep(kind, fake, served, store, keys=["flaky"])
    assert list(report.failed) == ["flaky"]
    assert type(report.failed["flaky"]).__name__ == "TikTokServerError"
    assert store.get("flaky") == failing


@KINDS
def test_a_429_slows_the_run_down_and_fails_no_key(kind: str, fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    for i in range(6):
        _stored(fake, store, f"u{i}", due=True)
    fake.fail_next(status=429, body=b'{"error": "rate_limit_exceeded"}', times=4)
    report = _keep(kind, fake, served, store, concurrency=2)
    assert report.failed == {}
    assert len(report.refreshed) == 6


@KINDS
def test_concurrency_is_bounded(kind: str, fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    for i in range(12):
        _stored(fake, store, f"u{i}", due=True)
    fake.token_delay = 0.1
    in_flight, peak = [0], [0]
    guard = threading.Lock()
    original = fake.handle

    def counting(*args: Any, **kwargs: Any) -> Any:
        with guard:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            time.sleep(0.05)
            return original(*args, **kwargs)
        finally:
            with guard:
                in_flight[0] -= 1

    fake.handle = counting  # type: ignore[method-assign]
    report = _keep(kind, fake, served, store, concurrency=3)
    assert len(report.refreshed) == 12
    assert 2 <= peak[0] <= 3


def test_a_keeper_and_live_traffic_never_refresh_one_token_twice(fake: FakeTikTok, served: str) -> None:
    store = MemoryTokenStore()
    for i in range(8):
        _stored(fake, store, f"u{i}", due=True)
    fake.token_delay = 0.1
    with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:

        def traffic() -> None:
            for i in range(8):
                auth = TikTokAuth(client, store, f"u{i}", leeway=3600)
                httpx.get(fake.user_info_url(served), params={"fields": "open_id"}, auth=auth)

        threads = [threading.Thread(target=traffic) for _ in range(3)]
        for thread in threads:
            thread.start()
        report = refresh_due(client, store, within=3600, concurrency=4)
        for thread in threads:
            thread.join()
    assert fake.grant_count("refresh_token") == 8
    assert fake.stale_refresh_token_uses == 0
    assert len(report.refreshed) + report.fresh == 8


def test_the_wrong_client_kind_is_a_type_error(fake: FakeTikTok) -> None:
    async def go() -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET) as client:
            with pytest.raises(TypeError, match="arefresh_due"):
                refresh_due(client, MemoryTokenStore())  # type: ignore[arg-type]

    asyncio.run(go())
