"""Token-endpoint faults, one table: every fault on a refresh, through `TikTokAuth` + a store and the bare client.

Each row injects one fault at the token endpoint (through `FakeTikTok.fail_next` / `timeout_next`, or
`tests._workers.FaultFront` for what needs a socket: a refused connection, a reset mid-body), then refreshes
three ways: `httpx.Client(auth=TikTokAuth(client, FileTokenStore))`, the same with a `MemoryTokenStore`, and
`TikTokOAuth2Client.refresh_token`. Each asserts the error class of API.md section 5 exactly
(`type(err) is ...`), the number of token-endpoint attempts, that the stored token is byte-for-byte
unchanged, and that the next request after the fault clears succeeds.

Rows that must fail are injected `times=3` (the library makes at most 3 attempts); leftover faults are
drained afterwards. The table is what the three targets all gave (the run prints it again):

| row                                   | error class                  | attempts | after the fault clears            |
|---------------------------------------|------------------------------|----------|-----------------------------------|
| 500                                   | TikTokServerError            | 3        | ok                                |
| 502 with an HTML body                 | TikTokServerError            | 3        | ok                                |
| 503 Retry-After: 1                    | TikTokServerError            | 3        | ok                                |
| 503 Retry-After: 120                  | TikTokServerError            | 1 (1)    | ok                                |
| 429                                   | RateLimitedError             | 1        | ok                                |
| 429 Retry-After: 1                    | RateLimitedError             | 3        | ok                                |
| read timeout, refresh processed       | TikTokServerError            | 1        | ReauthorizationRequiredError (2)  |
| read timeout, not processed           | TikTokServerError            | 1        | ok                                |
| connect error (port closed)           | TikTokServerError            | 3        | ok                                |
| reset mid-body (10 of 1000 bytes)     | TikTokServerError            | 1        | ok                                |
| 200, empty body                       | TikTokServerError            | 1 (3)    | ok                                |
| 200, `[]`                             | TikTokServerError            | 1 (3)    | ok                                |
| 200, `null`                           | TikTokServerError            | 1 (3)    | ok                                |
| 200, 2 MB body                        | TikTokServerError            | 1 (3)    | ok                                |
| 200, invalid UTF-8                    | TikTokServerError            | 1 (3)    | ok                                |
| 200, `error: invalid_client`          | TikTokOAuthError             | 1        | ok                                |
| 200, legacy v1 `error_code: 10010`    | ReauthorizationRequiredError | 1        | ok (4)                            |
| 200, `error: invalid_grant`           | ReauthorizationRequiredError | 1        | ok (4)                            |

(1) A `Retry-After` longer than 2 s is reported (`.retry_after` on the error) rather than slept through;
    found here as retried after 0.1 s and 0.3 s regardless, fixed since.
(2) Unavoidable: TikTok rotated the refresh token and the answer carrying the new one was lost. The library
    does not retry (the fake saw no stale refresh token during the fault), so the next call is the first
    to present the dead token and gets `invalid_grant`.
(4) For the bare client. Through the auth the key is then marked `needs_login` (the stored token kept,
    with the mark added, nothing else changed), and the next call raises ReauthorizationRequiredError at
    once, with no request, until a new login replaces the token.
(3) Found here as a bug, fixed since: these were retried (3 attempts), but API.md allows retrying a refresh
    only after a connect error, a 5xx or a 429, "where TikTok cannot have used the refresh token". A 200
    means TikTok answered, and may have rotated the token; see
    `test_a_refresh_answered_200_with_a_garbled_body_is_not_retried` for what the retry cost.

The backoff between attempts is shrunk to 10 ms here (`short_backoff`); it is not what the table tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._workers import CountingTransport, FaultFront, report
from tests.conftest import SECRET
from tiktok_oauth import (
    RateLimitedError,
    ReauthorizationRequiredError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokServerError,
    TikTokToken,
    _clock,
    _protocol,
)
from tiktok_oauth.stores import FileTokenStore, MemoryTokenStore
from tiktok_oauth.testing import FakeTikTok

TOKEN_PATH = "/v2/oauth/token/"
KEY = "alice"
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
OAUTH_ERROR = {"error_description": "Client key or secret is invalid.", "log_id": "20240101000000FAULTROW"}
V1_EXPIRED = {
    "data": {"error_code": 10010, "description": "refresh_token has expired", "log_id": "2024V1LOGID"},
    "message": "error",
}
INVALID_GRANT = {"error": "invalid_grant", "error_description": "Refresh token is invalid.", "log_id": "L1"}


class Faults:
    """What a row can do to the token endpoint, and how to undo it afterwards."""

    def __init__(self, fake: FakeTikTok, front: FaultFront) -> None:
        self.fake = fake
        self.front = front
        self.pending_fake_faults = 0

    def answer(self, status: int, body: bytes | None = None, headers: dict[str, str] | None = None) -> None:
        self.fake.fail_next(status, body, times=3, headers=headers)
        self.pending_fake_faults = 3

    def json(self, status: int, value: object) -> None:
        self.answer(status, json.dumps(value).encode())

    def timeout(self, *, processed: bool) -> None:
        self.fake.timeout_next(processed=processed)

    def clear(self, attempts: int) -> None:
        """Undo the fault: drain what the library did not consume, reopen the port."""
        self.front.clear()
        with httpx.Client() as http:
            for _ in range(self.pending_fake_faults - attempts):
                http.post(self.front.base_url + TOKEN_PATH, data={})


@dataclass(frozen=True)
class Row:
    name: str
    inject: Callable[[Faults], None]
    expected: type[TikTokOAuthError]
    attempts: int
    after: type[TikTokOAuthError] | None = None  # what the next call gives once the fault clears (None: ok)
    note: str = field(default="", compare=False)


ROWS: list[Row] = [
    Row("500", lambda f: f.answer(500), TikTokServerError, 3),
    Row("502 html", lambda f: f.answer(502, HTML_502, {"content-type": "text/html"}), TikTokServerError, 3),
    Row("503 retry-after 1", lambda f: f.answer(503, headers={"retry-after": "1"}), TikTokServerError, 3),
    Row("503 retry-after 120", lambda f: f.answer(503, headers={"retry-after": "120"}), TikTokServerError, 1),
    Row("429", lambda f: f.json(429, {"error": "rate_limit_exceeded"}), RateLimitedError, 1),
    Row(
        "429 retry-after 1",
        lambda f: f.answer(429, b'{"error":"rate_limit_exceeded"}', {"retry-after": "1"}),
        RateLimitedError,
        3,
    ),
    Row(
        "read timeout processed",
        lambda f: f.timeout(processed=True),
        TikTokServerError,
        1,
        after=ReauthorizationRequiredError,
    ),
    Row("read timeout unprocessed", lambda f: f.timeout(processed=False), TikTokServerError, 1),
    Row("connect error", lambda f: f.front.stop(), TikTokServerError, 3),
    Row("reset mid-body", lambda f: f.front.reset_next(3), TikTokServerError, 1),
    Row("200 empty body", lambda f: f.answer(200, b""), TikTokServerError, 1),
    Row("200 []", lambda f: f.answer(200, b"[]"), TikTokServerError, 1),
    Row("200 null", lambda f: f.answer(200, b"null"), TikTokServerError, 1),
    Row("200 2MB body", lambda f: f.answer(200, b"x" * (2 << 20)), TikTokServerError, 1),
    Row(
        "200 invalid utf-8",
        lambda f: f.answer(200, b'{"access_token": "\xff\xfe\xc3"}'),
        TikTokServerError,
        1,
    ),
    Row(
        "200 invalid_client",
        lambda f: f.json(200, {"error": "invalid_client", **OAUTH_ERROR}),
        TikTokOAuthError,
        1,
    ),
    Row("200 v1 10010", lambda f: f.json(200, V1_EXPIRED), ReauthorizationRequiredError, 1),
    Row("200 invalid_grant", lambda f: f.json(200, INVALID_GRANT), ReauthorizationRequiredError, 1),
]
TARGETS = ["auth+file", "auth+memory", "client"]

#: (row, target) -> (error class, attempts, outcome after the fault cleared), printed at the end.
RESULTS: dict[tuple[str, str], tuple[str, int, str]] = {}


@pytest.fixture(scope="module", autouse=True)
def print_matrix(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not RESULTS:
        return
    report(
        request,
        "token-endpoint fault matrix (row | target | error class | attempts | after)",
        [
            f"{row:26} | {target:11} | {cls:28} | {attempts} | {after}"
            for (row, target), (cls, attempts, after) in RESULTS.items()
        ],
    )


@pytest.fixture(autouse=True)
def short_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The backoff between attempts is not what this table tests: 10 ms instead of 0.1 s and 0.3 s."""
    monkeypatch.setattr(_protocol, "BACKOFF", (0.01, 0.01))


@pytest.fixture
def fake() -> FakeTikTok:
    return FakeTikTok(client_key="test-key", client_secret=SECRET)


@pytest.fixture
def front(fake: FakeTikTok) -> Iterator[FaultFront]:
    with FaultFront(fake, lost_response_delay=1.0) as running:
        yield running


def _expired_token(fake: FakeTikTok) -> TikTokToken:
    token = TikTokToken(fake.issue_token())
    token["expires_at"] = int(_clock.now()) - 10
    return token


class Subject:
    """One way of refreshing: `act()` refreshes, `snapshot()` is the stored token's exact bytes."""

    def __init__(self, target: str, fake: FakeTikTok, front: FaultFront, tmp_path: Path) -> None:
        self.target = target
        self.fake = fake
        self.front = front
        self.counter = CountingTransport(TOKEN_PATH)
        self.token_http = httpx.Client(transport=self.counter, timeout=0.5)
        self.client = TikTokOAuth2Client(
            "test-key",
            SECRET,
            http_client=self.token_http,
            **fake.endpoints(front.base_url),
        )
        self.token = _expired_token(fake)
        self.store: FileTokenStore | MemoryTokenStore | None = None
        self.http: httpx.Client | None = None
        if target != "client":
            self.store = FileTokenStore(tmp_path / "tokens") if target == "auth+file" else MemoryTokenStore()
            self.store.set(KEY, self.token)
            self.http = httpx.Client(auth=TikTokAuth(self.client, self.store, KEY), timeout=5.0)

    def act(self) -> None:
        if self.http is None:
            self.token_after = self.client.refresh_token(self.token)
            return
        response = self.http.get(self.fake.user_info_url(self.front.base_url))
        assert response.status_code == 200, response.text

    def snapshot(self) -> bytes:
        if isinstance(self.store, FileTokenStore):
            return self.store.token_path(KEY).read_bytes()
        token = self.token if self.store is None else self.store.get(KEY)
        return json.dumps(token, sort_keys=True).encode()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        self.token_http.close()


@pytest.fixture
def subject_for(fake: FakeTikTok, front: FaultFront, tmp_path: Path) -> Iterator[Callable[[str], Subject]]:
    made: list[Subject] = []

    def make(target: str) -> Subject:
        made.append(Subject(target, fake, front, tmp_path))
        return made[-1]

    yield make
    for subject in made:
        subject.close()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_token_endpoint_fault(row: Row, target: str, subject_for: Callable[[str], Subject]) -> None:
    subject = subject_for(target)
    faults = Faults(subject.fake, subject.front)
    before = subject.snapshot()

    row.inject(faults)
    with pytest.raises(TikTokOAuthError) as caught:
        subject.act()
    attempts = subject.counter.count
    faults.clear(attempts)
    assert subject.fake.stale_refresh_token_uses == 0, "a retry presented a rotated refresh token"
    after_fault = subject.snapshot()

    outcome = "ok"
    try:
        subject.act()
    except TikTokOAuthError as error:
        outcome = type(error).__name__
    RESULTS[row.name, target] = (type(caught.value).__name__, attempts, outcome)

    assert type(caught.value) is row.expected, repr(caught.value)
    assert attempts == row.attempts
    if subject.store is not None and row.expected is ReauthorizationRequiredError:  # (4): marked
        assert json.loads(after_fault) == {**json.loads(before), "needs_login": True}
        assert outcome == "ReauthorizationRequiredError"
        assert subject.counter.count == attempts, "a marked key was sent to TikTok again"
        return
    assert after_fault == before, "a failed refresh changed the stored token"
    assert outcome == (row.after.__name__ if row.after else "ok")
    if subject.store is not None and row.after is None:
        assert subject.snapshot() != before, "the refresh after the fault did not store a new token"


def test_a_refresh_answered_200_with_a_garbled_body_is_not_retried(
    subject_for: Callable[[str], Subject], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the retry on a 200 costs: TikTok rotated the token, the retry presents the dead one."""
    subject = subject_for("auth+memory")
    real_handle = subject.fake.handle

    def garble(*args: Any) -> Any:
        answer = real_handle(*args)  # the refresh really happens, and the token really rotates
        if answer is not None and args[1].endswith(TOKEN_PATH):
            return type(answer)(200, {"content-type": "application/json"}, b"")
        return answer

    monkeypatch.setattr(subject.fake, "handle", garble)
    with pytest.raises(TikTokOAuthError) as caught:
        subject.act()
    # Before the fix: 2 attempts, the second presenting the rotated-away refresh token, so the library
    # itself logged the user out (ReauthorizationRequiredError) and TikTok saw a refresh-token reuse.
    assert subject.fake.stale_refresh_token_uses == 0
    assert subject.counter.count == 1
    assert type(caught.value) is TikTokServerError
