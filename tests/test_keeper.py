"""refresh_due / arefresh_due against the served fake: outcomes, once-only, back-off, untouched failures."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SECRET
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    MemoryTokenStore,
    NothingStoredError,
    RateLimitedError,
    RefreshReport,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokServerError,
    TikTokToken,
    TokenStoreError,
    arefresh_due,
    keeper,
    refresh_due,
)
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing import FakeTikTok


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def _stored(fake: FakeTikTok, store: Any, key: str, *, due: bool) -> TikTokToken:
    token = TikTokToken(fake.issue_token(open_id=key))
    token["expires_at"] = int(time.time()) + (60 if due else 86_000)
    store.set(key, token)
    return token


def _keep(
    kind: str, fake: FakeTikTok, served: str, store: Any, *, timeout: float = 10.0, **kwargs: Any
) -> RefreshReport:
    endpoints = fake.endpoints(served)
    if kind == "sync":
        with TikTokOAuth2Client("test-key", SECRET, timeout=timeout, **endpoints) as client:
            return refresh_due(client, store, **kwargs)

    async def go() -> RefreshReport:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, timeout=timeout, **endpoints) as client:
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
    # kept, only marked: the next run reports it at once, with no request
    assert json.dumps(store.get("revoked"), sort_keys=True) == json.dumps(
        {**revoked, "needs_login": True}, sort_keys=True
    )
    fake.fail_next(status=503, times=3)
    failing = _stored(fake, store, "flaky", due=True)
    report = _keep(kind, fake, served, store, keys=["flaky"])
    assert list(report.failed) == ["flaky"]
    assert type(report.failed["flaky"]).__name__ == "TikTokServerError"
    assert store.get("flaky") == failing


@KINDS
@pytest.mark.parametrize("retry_after", [None, "1"])
def test_a_429_slows_the_run_down_and_fails_no_key(
    kind: str, retry_after: str | None, fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    for i in range(6):
        _stored(fake, store, f"u{i}", due=True)
    headers = {"content-type": "application/json"}
    if retry_after is not None:
        headers["retry-after"] = retry_after
    # Without Retry-After the client does not retry: every 429 reaches the keeper's shared back-off.
    # With it the client first retries (up to 3 attempts) itself.
    fake.fail_next(status=429, body=b'{"error": "rate_limit_exceeded"}', times=4, headers=headers)
    report = _keep(kind, fake, served, store, concurrency=2)
    assert report.failed == {}
    assert sorted(report.refreshed) == [f"u{i}" for i in range(6)]
    assert fake.grant_count("refresh_token") == 6
    assert len(fake.token_requests) == 6 + 4  # every 429 was answered, and each key then refreshed once


class _Bare:
    """A user's store with neither `keys()` nor `expiring()`."""

    def __init__(self) -> None:
        self.inner = MemoryTokenStore()
        self.get, self.set = self.inner.get, self.inner.set
        self.delete, self.lock = self.inner.delete, self.inner.lock


class _KeysOnly(_Bare):
    """A user's store with `keys()` but no `expiring()`."""

    def keys(self) -> Iterator[str]:
        return iter(list(self.inner.keys()))


@KINDS
def test_a_store_with_only_keys_is_walked_whole(kind: str, fake: FakeTikTok, served: str) -> None:
    store = _KeysOnly()
    for i in range(4):
        _stored(fake, store.inner, f"due-{i}", due=True)
    for i in range(3):
        _stored(fake, store.inner, f"later-{i}", due=False)
    report = _keep(kind, fake, served, store)
    assert sorted(report.refreshed) == [f"due-{i}" for i in range(4)]
    assert report.fresh == 3  # examined, not due
    bare = _Bare()
    _stored(fake, bare.inner, "u", due=True)
    with pytest.raises(TypeError, match="pass keys="):
        _keep(kind, fake, served, bare)
    assert _keep(kind, fake, served, bare, keys=["u"]).refreshed == ["u"]


@KINDS
def test_mixed_failures_each_get_their_outcome_and_failed_files_stay_byte_identical(
    kind: str, fake: FakeTikTok, served: str, tmp_path: Path
) -> None:
    store = FileTokenStore(tmp_path / "tokens")
    names = ["broken", "html", "slow", "revoked", "fine"]
    for name in names:
        _stored(fake, store, name, due=True)
    before = {name: store.token_path(name).read_bytes() for name in names}
    fake.serve_timeout_delay = 1.0
    html = b"<html><body>502 Bad Gateway</body></html>"
    faults: dict[str, Callable[[], None]] = {
        "broken": lambda: fake.fail_next(status=503, times=3),
        "html": lambda: fake.fail_next(status=502, body=html, headers={"content-type": "text/html"}, times=3),
        "slow": fake.timeout_next,  # a refresh lost on the way back is not retried
        "revoked": lambda: fake.revoke_grants("revoked"),
        "fine": lambda: None,
    }
    seen: list[tuple[str, str]] = []
    for name in names:
        faults[name]()
        report = _keep(
            kind,
            fake,
            served,
            store,
            keys=[name, "gone"],
            timeout=5.0,  # the lost answer ("slow") ends when the served fake closes, after 1 s
            progress=lambda k, o: seen.append((k, o)),
        )
        assert all(type(error) is TikTokServerError for error in report.failed.values())
    outcomes = dict(seen)  # "gone" (nothing stored) is skipped: no progress, not in the report
    assert outcomes == {
        "broken": "failed",
        "html": "failed",
        "slow": "failed",
        "revoked": "reauthorization_required",
        "fine": "refreshed",
    }
    assert len(seen) == len(names)
    for name in ["broken", "html", "slow"]:
        assert store.token_path(name).read_bytes() == before[name]
    revoked = store.get("revoked")
    assert revoked is not None
    assert revoked.needs_login
    old = TikTokToken.from_json(before["revoked"])
    assert (revoked.access_token, revoked.refresh_token) == (old.access_token, old.refresh_token)
    assert store.token_path("fine").read_bytes() != before["fine"]
    assert fake.stale_refresh_token_uses == 0


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


def _beside_traffic(kind: str, fake: FakeTikTok, served: str, store: Any, keys: list[str]) -> RefreshReport:
    """A keeper over `keys` while three callers make requests for each key through `TikTokAuth`."""
    url, endpoints, params = fake.user_info_url(served), fake.endpoints(served), {"fields": "open_id"}
    if kind == "sync":
        with TikTokOAuth2Client("test-key", SECRET, **endpoints) as client:

            def traffic() -> None:
                with httpx.Client() as http:
                    for key in keys:
                        http.get(
                            url, params=params, auth=TikTokAuth(client, store, key, leeway=3600)
                        ).raise_for_status()

            threads = [threading.Thread(target=traffic) for _ in range(3)]
            for thread in threads:
                thread.start()
            report = refresh_due(client, store, within=3600, keys=keys, concurrency=4)
            for thread in threads:
                thread.join()
            return report

    async def go() -> RefreshReport:
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **endpoints) as client,
            httpx.AsyncClient() as http,
        ):

            async def traffic() -> None:
                for key in keys:
                    auth = TikTokAuth(client, store, key, leeway=3600)
                    (await http.get(url, params=params, auth=auth)).raise_for_status()

            async with asyncio.TaskGroup() as group:
                for _ in range(3):
                    group.create_task(traffic())
                keeper = group.create_task(arefresh_due(client, store, within=3600, keys=keys, concurrency=4))
            return keeper.result()

    return asyncio.run(go())


@KINDS
def test_a_keeper_and_live_traffic_never_refresh_one_token_twice(
    kind: str, fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    keys = [f"u{i}" for i in range(8)]
    for key in keys:
        _stored(fake, store, key, due=True)
    fake.token_delay = 0.1
    report = _beside_traffic(kind, fake, served, store, keys)
    assert fake.grant_count("refresh_token") == 8
    assert fake.stale_refresh_token_uses == 0
    assert len(report.refreshed) + report.fresh == 8
    assert not report.failed


def test_the_wrong_client_kind_is_a_type_error(fake: FakeTikTok) -> None:
    async def go() -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET) as client:
            with pytest.raises(TypeError, match="arefresh_due"):
                refresh_due(client, MemoryTokenStore())  # type: ignore[arg-type]

    asyncio.run(go())


class WritesFailFor(MemoryTokenStore):
    """A memory store whose writes fail while `down` is set (a database restarting)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    def set(self, key: str, token: TikTokToken) -> None:
        if self.down:
            self.refused += 1
            if self.refused >= 3:
                self.down = False  # back after three refused writes
            raise TokenStoreError("the database is restarting")
        super().set(key, token)


@KINDS
def test_a_refreshed_token_the_store_refused_is_written_when_the_store_is_back(
    kind: str, fake: FakeTikTok, served: str
) -> None:
    store = WritesFailFor()
    old = _stored(fake, store, "u1", due=True)
    store.down = True

    report = _keep(kind, fake, served, store)

    assert report.refreshed == ["u1"], report.failed
    stored = store.get("u1")
    assert stored is not None
    assert stored.refresh_token != old.refresh_token
    assert fake.grant_count("refresh_token") == 1
    assert _keep(kind, fake, served, store, within=10**9).refreshed == ["u1"]  # the stored token is live
    assert fake.stale_refresh_token_uses == 0


@KINDS
def test_a_refreshed_token_that_cannot_be_written_is_reported_failed_as_such(
    kind: str, fake: FakeTikTok, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keeper, "WRITE_RETRIES", (0.0, 0.0))
    store = WritesFailFor()
    old = _stored(fake, store, "u1", due=True)
    store.down = True
    monkeypatch.setattr(store, "refused", -(10**6))  # never back

    report = _keep(kind, fake, served, store)

    assert list(report.failed) == ["u1"]
    assert isinstance(report.failed["u1"], TokenStoreError)
    assert "new token could not be written" in str(report.failed["u1"])
    assert store.get("u1") == old


# -- one key's steps as plain values: no store read, no request, no sleep -------------------------------------


def _steps(store: Any = None) -> Any:
    run = keeper._Run(TikTokOAuth2Client("test-key", SECRET), store or MemoryTokenStore(), 3600.0, None, None)
    return run.key("alice").steps()


def _token(expires_in: float, **extra: Any) -> TikTokToken:
    return TikTokToken({"access_token": "act.x", "expires_at": int(time.time() + expires_in), **extra})


def _finish(steps: Any, answer: object) -> object:
    with pytest.raises(StopIteration) as done:
        steps.send(answer)
    return done.value.value


def test_a_key_not_due_is_fresh_after_one_read() -> None:
    steps = _steps()
    assert next(steps) == keeper._READ
    assert _finish(steps, _token(86_000)) == ("fresh", None)


def test_a_key_marked_needs_login_is_reported_without_a_renewal() -> None:
    steps = _steps()
    next(steps)
    assert _finish(steps, _token(60, needs_login=True)) == ("reauthorization_required", None)


def test_an_unreadable_key_fails_and_an_empty_one_is_skipped() -> None:
    broken = OSError("disk")
    steps = _steps()
    next(steps)
    assert _finish(steps, broken) == ("failed", broken)
    steps = _steps()
    next(steps)
    assert _finish(steps, None) == (None, None)


def test_a_due_key_is_renewed_after_a_pause_and_reports_the_renewal() -> None:
    steps = _steps()
    next(steps)
    assert steps.send(_token(60)) == keeper._Sleep(0.0)
    assert steps.send(None) == keeper._RENEW
    assert _finish(steps, "refreshed") == ("refreshed", None)


def test_a_429_pauses_for_its_retry_after_and_renews_again() -> None:
    steps = _steps()
    next(steps)
    steps.send(_token(60))
    steps.send(None)
    pause = steps.send(RateLimitedError("slow down", retry_after=5.0))
    assert isinstance(pause, keeper._Sleep)
    assert 4.0 < pause.seconds <= 5.0
    assert steps.send(None) == keeper._RENEW
    assert _finish(steps, "fresh") == ("fresh", None)


def test_a_key_deleted_before_its_renewal_is_skipped() -> None:
    steps = _steps()
    next(steps)
    steps.send(_token(60))
    steps.send(None)
    assert _finish(steps, NothingStoredError("nothing stored")) == (None, None)
