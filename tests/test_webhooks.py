"""Webhooks: `verify` (signature, window, TikTok's JSON) and `WebhookHandler` (status, de-duplication, marking).

Deliveries here are signed by the test itself (HMAC over `"<t>.<body>"`, TIKTOK.md row 32), not by the library.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import SECRET
from tests.test_auth import AsyncDictStore
from tiktok_oauth import MemoryTokenStore, TikTokToken, TokenEvent, WebhookSignatureError, _clock
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.webhooks import WebhookEvent, WebhookHandler, verify

CLIENT_KEY = "test-key"
HOUR = 3600


def make_body(
    open_id: str = "alice",
    *,
    event: str = "authorization.removed",
    client_key: str = CLIENT_KEY,
    create_time: int | None = None,
    content: str | None = None,
) -> bytes:
    payload = {
        "client_key": client_key,
        "event": event,
        "create_time": int(_clock.now()) if create_time is None else create_time,
        "user_openid": open_id,
        "content": json.dumps({"reason": 1}) if content is None else content,
    }
    return json.dumps(payload).encode()


def expected_signature(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    t = int(_clock.now()) if timestamp is None else timestamp
    return {"TikTok-Signature": f"t={t},s={expected_signature(body, secret, t)}"}


def token_for(open_id: str, issued_at: float) -> TikTokToken:
    return TikTokToken(
        {
            "access_token": f"act.{open_id}",
            "refresh_token": f"rft.{open_id}",
            "open_id": open_id,
            "expires_at": int(issued_at) + 86400,
            "issued_at": int(issued_at),
        }
    )


class CountingStore(MemoryTokenStore):
    """A memory store counting its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def set(self, key: str, token: TikTokToken) -> None:
        self.writes += 1
        super().set(key, token)


@pytest.fixture
def store() -> CountingStore:
    store = CountingStore()
    store.set("alice", token_for("alice", _clock.now() - HOUR))
    store.writes = 0
    return store


@pytest.fixture
def events() -> list[WebhookEvent]:
    return []


@pytest.fixture
def token_events() -> list[TokenEvent]:
    return []


@pytest.fixture
def handler(
    store: CountingStore, events: list[WebhookEvent], token_events: list[TokenEvent]
) -> WebhookHandler:
    return WebhookHandler(
        SECRET, store, client_key=CLIENT_KEY, on_webhook=events.append, on_event=token_events.append
    )


# -- verify ------------------------------------------------------------------------------------------


def test_a_signed_delivery_verifies_into_its_event() -> None:
    body = make_body(create_time=1_700_000_000)
    event = verify(body, sign(body), SECRET)
    assert event.event == "authorization.removed"
    assert (event.client_key, event.user_openid, event.create_time) == (CLIENT_KEY, "alice", 1_700_000_000)
    assert event.content == {"reason": 1}
    assert event.reason == 1
    assert event.id == hashlib.sha256(body).hexdigest()
    assert event.raw == json.loads(body)


@pytest.mark.parametrize("name", ["TikTok-Signature", "tiktok-signature", "TIKTOK-SIGNATURE"])
def test_the_header_name_is_case_insensitive(name: str) -> None:
    body = make_body()
    value = sign(body)["TikTok-Signature"]
    assert verify(body, {"Content-Type": "application/json", name: value}, SECRET).user_openid == "alice"


def test_the_signature_value_itself_is_accepted() -> None:
    body = make_body()
    assert verify(body, sign(body)["TikTok-Signature"], SECRET).user_openid == "alice"


def test_a_retry_signed_later_has_the_same_id(clock: Callable[[float], None]) -> None:
    body = make_body()
    first = verify(body, sign(body), SECRET)
    clock(120)
    again = verify(body, sign(body), SECRET)
    assert sign(body) != sign(body, timestamp=int(_clock.now()) - 120)
    assert first.id == again.id


def test_other_events_have_no_reason() -> None:
    body = make_body(event="video.publish.completed", content=json.dumps({"publish_id": "p1"}))
    event = verify(body, sign(body), SECRET)
    assert (event.event, event.reason, event.content) == (
        "video.publish.completed",
        None,
        {"publish_id": "p1"},
    )


def test_a_removal_without_a_reason_has_reason_0_unknown() -> None:
    body = make_body(content="{}")
    assert verify(body, sign(body), SECRET).reason == 0


@pytest.mark.parametrize("offset", [-300, 300])
def test_t_at_the_edge_of_the_window_is_accepted(offset: int) -> None:
    body = make_body()
    now = int(_clock.now())
    assert verify(body, sign(body, timestamp=now + offset), SECRET, tolerance=305).user_openid == "alice"


def test_verify_takes_the_raw_bytes_not_text() -> None:
    body = make_body()
    with pytest.raises(TypeError):
        verify(body.decode(), sign(body), SECRET)  # type: ignore[arg-type]


def test_the_error_pickles_with_its_status() -> None:
    body = make_body()
    with pytest.raises(WebhookSignatureError) as caught:
        verify(body, sign(body, secret="other"), SECRET)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.status_code, copy.error) == (401, "invalid_signature")


# -- each bad input: its status, nothing changed, no secret shown -------------------------------------


def _one_byte_changed(body: bytes) -> bytes:
    return body.replace(b'"alice"', b'"alicf"')


BAD_SIGNATURES: dict[str, Callable[[bytes], tuple[bytes, dict[str, str]]]] = {
    "no header": lambda body: (body, {"Content-Type": "application/json"}),
    "empty header": lambda body: (body, {"TikTok-Signature": ""}),
    "not key=value": lambda body: (body, {"TikTok-Signature": "garbage"}),
    "no t": lambda body: (body, {"TikTok-Signature": "s=" + "0" * 64}),
    "no s": lambda body: (body, {"TikTok-Signature": f"t={int(_clock.now())}"}),
    "t not a number": lambda body: (
        body,
        {"TikTok-Signature": sign(body)["TikTok-Signature"].replace("t=", "t=x")},
    ),
    "s not hex": lambda body: (body, {"TikTok-Signature": f"t={int(_clock.now())},s=" + "z" * 64}),
    "s truncated": lambda body: (body, {"TikTok-Signature": sign(body)["TikTok-Signature"][:-2]}),
    "two t": lambda body: (body, {"TikTok-Signature": "t=1," + sign(body)["TikTok-Signature"]}),
    "wrong secret": lambda body: (body, sign(body, secret="not-the-secret")),
    "body changed by one byte": lambda body: (_one_byte_changed(body), sign(body)),
    "signed over the body only": lambda body: (
        body,
        {
            "TikTok-Signature": f"t={int(_clock.now())},s="
            + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        },
    ),
    "t too old": lambda body: (body, sign(body, timestamp=int(_clock.now()) - 301)),
    "t in the future": lambda body: (body, sign(body, timestamp=int(_clock.now()) + 301)),
}

MALFORMED_BODIES: dict[str, bytes] = {
    "not JSON": b"not json at all",
    "not UTF-8": b"\xff\xfe{}",
    "a JSON array": b"[]",
    "no user_openid": json.dumps(
        {"client_key": CLIENT_KEY, "event": "x", "create_time": 1, "content": "{}"}
    ).encode(),
    "create_time a string": json.dumps(
        {"client_key": CLIENT_KEY, "event": "x", "create_time": "1", "user_openid": "alice", "content": "{}"}
    ).encode(),
    "content not JSON": make_body(content="reason=1"),
    "content a list": make_body(content="[1]"),
}


def _assert_nothing_changed(
    store: CountingStore, events: list[WebhookEvent], token_events: list[TokenEvent]
) -> None:
    assert store.writes == 0
    assert token_events == []
    token = store.get("alice")
    assert token is not None
    assert not token.needs_login
    assert events == []


def _assert_no_secret(text: str, body: bytes) -> None:
    assert SECRET not in text
    now = int(_clock.now())
    for t in range(now - 400, now + 400):  # no expected signature for any plausible t either
        assert expected_signature(body, SECRET, t) not in text


@pytest.mark.parametrize("case", list(BAD_SIGNATURES))
def test_a_bad_signature_is_401_and_changes_nothing(
    case: str,
    *,
    handler: WebhookHandler,
    store: CountingStore,
    events: list[WebhookEvent],
    token_events: list[TokenEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body, headers = BAD_SIGNATURES[case](make_body())
    assert handler.handle(body, headers) == 401
    _assert_nothing_changed(store, events, token_events)
    with pytest.raises(WebhookSignatureError) as caught:
        verify(body, headers, SECRET)
    assert caught.value.status_code == 401
    _assert_no_secret(caplog.text + str(caught.value) + repr(caught.value), make_body())
    assert "refused" in caplog.text


@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
def test_a_signed_body_that_is_not_tiktoks_json_is_400_and_changes_nothing(
    case: str,
    *,
    handler: WebhookHandler,
    store: CountingStore,
    events: list[WebhookEvent],
    token_events: list[TokenEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = MALFORMED_BODIES[case]
    assert handler.handle(body, sign(body)) == 400
    _assert_nothing_changed(store, events, token_events)
    with pytest.raises(WebhookSignatureError) as caught:
        verify(body, sign(body), SECRET)
    assert (caught.value.status_code, caught.value.error) == (400, "malformed_body")
    _assert_no_secret(caplog.text + str(caught.value), body)


def test_another_apps_delivery_is_200_and_changes_nothing(
    handler: WebhookHandler,
    store: CountingStore,
    events: list[WebhookEvent],
    token_events: list[TokenEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = make_body(client_key="another-app")
    assert handler.handle(body, sign(body)) == 200
    _assert_nothing_changed(store, events, token_events)
    _assert_no_secret(caplog.text, body)


def test_without_client_key_any_apps_delivery_signed_with_the_secret_is_handled(store: CountingStore) -> None:
    body = make_body(client_key="another-app")
    assert WebhookHandler(SECRET, store).handle(body, sign(body)) == 200
    assert store.get("alice").needs_login  # type: ignore[union-attr]


def test_a_replayed_delivery_is_200_and_changes_nothing(
    handler: WebhookHandler, store: CountingStore, events: list[WebhookEvent], clock: Callable[[float], None]
) -> None:
    body = make_body()
    assert handler.handle(body, sign(body)) == 200
    assert store.get("alice").needs_login  # type: ignore[union-attr]
    assert len(events) == 1
    # The token is back unmarked (as if restored); a replay, even signed anew, must not mark it again.
    store.set("alice", token_for("alice", _clock.now() - HOUR))
    store.writes = 0
    clock(60)
    assert handler.handle(body, sign(body)) == 200
    assert store.writes == 0
    assert not store.get("alice").needs_login  # type: ignore[union-attr]
    assert len(events) == 1


# -- what a good delivery does ------------------------------------------------------------------------


def test_a_removed_grant_marks_the_users_token_needs_login(
    handler: WebhookHandler,
    store: CountingStore,
    events: list[WebhookEvent],
    token_events: list[TokenEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    body = make_body()
    assert handler.handle(body, sign(body)) == 200
    token = store.get("alice")
    assert token is not None
    assert token.needs_login
    assert token.access_token == "act.alice"  # marked, not replaced or deleted
    assert store.writes == 1
    assert [event.user_openid for event in events] == ["alice"]
    assert [(e.kind, e.key, e.open_id, e.error) for e in token_events] == [
        ("needs_login", "alice", "alice", None)
    ]
    _assert_no_secret(caplog.text, body)


def test_a_token_issued_after_the_event_is_left_alone(
    handler: WebhookHandler, store: CountingStore, token_events: list[TokenEvent]
) -> None:
    """TikTok retries for 72 hours: a delivery may arrive after the user logged in again."""
    store.set("alice", token_for("alice", _clock.now()))
    store.writes = 0
    body = make_body(create_time=int(_clock.now()) - HOUR)
    assert handler.handle(body, sign(body)) == 200
    assert not store.get("alice").needs_login  # type: ignore[union-attr]
    assert store.writes == 0
    assert token_events == []


def test_an_on_event_that_raises_changes_nothing(
    store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    def on_event(event: TokenEvent) -> None:
        raise RuntimeError("the app's metrics are down")

    handler = WebhookHandler(SECRET, store, on_event=on_event)
    body = make_body()
    assert handler.handle(body, sign(body)) == 200
    assert store.get("alice").needs_login  # type: ignore[union-attr]
    assert "on_event raised" in caplog.text


def test_key_for_names_the_stored_key(store: CountingStore) -> None:
    store.set("user:alice", token_for("alice", _clock.now() - HOUR))
    token_events: list[TokenEvent] = []
    handler = WebhookHandler(
        SECRET, store, key_for=lambda open_id: f"user:{open_id}", on_event=token_events.append
    )
    body = make_body()
    assert handler.handle(body, sign(body)) == 200
    assert [(event.key, event.open_id) for event in token_events] == [("user:alice", "alice")]
    assert store.get("user:alice").needs_login  # type: ignore[union-attr]
    assert not store.get("alice").needs_login  # type: ignore[union-attr]


def test_a_removal_of_a_user_with_nothing_stored_is_200(
    handler: WebhookHandler, store: CountingStore
) -> None:
    body = make_body("nobody")
    assert handler.handle(body, sign(body)) == 200
    assert store.writes == 0


def test_other_events_reach_on_webhook_and_change_nothing(
    handler: WebhookHandler, store: CountingStore, events: list[WebhookEvent]
) -> None:
    body = make_body(event="video.publish.completed", content=json.dumps({"publish_id": "p1"}))
    assert handler.handle(body, sign(body)) == 200
    assert [event.event for event in events] == ["video.publish.completed"]
    assert store.writes == 0


def test_a_delivery_whose_on_webhook_failed_is_handled_again(store: CountingStore) -> None:
    calls: list[str] = []

    def on_webhook(event: WebhookEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("the app's own handling failed")

    handler = WebhookHandler(SECRET, store, on_webhook=on_webhook)
    body = make_body()
    with pytest.raises(RuntimeError):
        handler.handle(body, sign(body))  # the framework answers 500; TikTok retries
    assert handler.handle(body, sign(body)) == 200
    assert len(calls) == 2
    assert handler.handle(body, sign(body)) == 200
    assert len(calls) == 2
    assert store.writes == 1


def test_a_shared_seen_drops_a_delivery_another_worker_handled(store: CountingStore) -> None:
    shared: set[str] = set()  # e.g. a Redis set behind `in` and `add`
    first_worker = WebhookHandler(SECRET, store, seen=shared)
    events: list[WebhookEvent] = []
    second_worker = WebhookHandler(SECRET, store, seen=shared, on_webhook=events.append)
    body = make_body()
    assert first_worker.handle(body, sign(body)) == 200
    assert shared == {hashlib.sha256(body).hexdigest()}
    assert second_worker.handle(body, sign(body)) == 200
    assert events == []


def test_the_default_seen_forgets_after_72_hours(
    handler: WebhookHandler, events: list[WebhookEvent], clock: Callable[[float], None]
) -> None:
    body = make_body(event="video.publish.completed")
    handler.handle(body, sign(body))
    clock(72 * HOUR - 60)
    handler.handle(body, sign(body))
    assert len(events) == 1
    clock(120)
    handler.handle(body, sign(body))
    assert len(events) == 2


def test_handle_refuses_an_async_store() -> None:
    handler = WebhookHandler(SECRET, AsyncDictStore())
    body = make_body()
    with pytest.raises(TypeError, match="ahandle"):
        handler.handle(body, sign(body))


@pytest.mark.parametrize("kind", ["sync store", "async store"])
def test_ahandle_marks_with_either_store_kind(kind: str) -> None:
    store: Any = MemoryTokenStore() if kind == "sync store" else AsyncDictStore()
    token_events: list[TokenEvent] = []

    async def scenario() -> tuple[int, int, TikTokToken | None]:
        token = token_for("alice", _clock.now() - HOUR)
        await store.set("alice", token) if kind == "async store" else store.set("alice", token)
        handler = WebhookHandler(SECRET, store, on_event=token_events.append)
        body = make_body()
        bad = await handler.ahandle(body, sign(body, secret="wrong"))
        good = await handler.ahandle(body, sign(body))
        stored = await store.get("alice") if kind == "async store" else store.get("alice")
        return bad, good, stored

    bad, good, stored = asyncio.run(scenario())
    assert (bad, good) == (401, 200)
    assert stored is not None
    assert stored.needs_login
    assert [event.kind for event in token_events] == ["needs_login"]


def test_the_handlers_repr_shows_no_secret(handler: WebhookHandler) -> None:
    assert SECRET not in repr(handler)


# -- against the fake's deliveries --------------------------------------------------------------------


def test_the_fakes_delivery_verifies_and_marks(fake: FakeTikTok, store: CountingStore) -> None:
    handler = WebhookHandler(fake.client_secret, store, client_key=fake.client_key)
    fake.webhook_url = handler.handle
    fake.revoke_grants("alice", reason=2)
    [(body, headers, status)] = fake.webhook_deliveries
    assert status == 200
    assert verify(body, headers, fake.client_secret).reason == 2
    assert store.get("alice").needs_login  # type: ignore[union-attr]
