"""TikTok's webhooks: `verify` a delivery (pure), and `WebhookHandler`, which acts on it through the one writer.

```python
handler = WebhookHandler(client_secret, store)
status = handler.handle(request_body, request_headers)     # 200, 400 or 401: answer it at once
```

TikTok signs each delivery with the app's client secret (`TikTok-Signature: t=<epoch>,s=<hex>`, the hex
HMAC-SHA256 of `"<t>.<raw body>"`), delivers at least once and retries a non-200 answer for 72 hours. When a user
removes the app (`authorization.removed`) their token is already dead: the handler marks it `needs_login`, so
nothing sends it to TikTok again.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tiktok_oauth import _clock
from tiktok_oauth.auth import TokenSource
from tiktok_oauth.errors import WebhookSignatureError
from tiktok_oauth.events import OnEvent

__all__ = [
    "AUTHORIZATION_REMOVED",
    "SIGNATURE_HEADER",
    "Headers",
    "SeenIds",
    "WebhookEvent",
    "WebhookHandler",
    "verify",
]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "TikTok-Signature"
AUTHORIZATION_REMOVED = "authorization.removed"
#: How long the default `seen` remembers a delivery: as long as TikTok retries one.
SEEN_FOR = 72 * 3600.0

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


class Headers(Protocol):
    """A request's headers: any mapping of names to values, or anything with `items()` (Werkzeug's)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery.

    Attributes:
        event: the event's name, e.g. `"authorization.removed"`.
        client_key: the app the delivery is for.
        create_time: when TikTok made the event (epoch seconds).
        user_openid: the user it is about.
        content: the delivery's `content` (a JSON string on the wire), parsed.
        reason: for `authorization.removed`, why (0 unknown, 1 user disconnected, 2 account deleted, 3 age
            changed, 4 banned, 5 developer revoked; 0 when TikTok sent none); None for other events.
        id: a stable id for de-duplication: the SHA-256 of the raw body, which a retried delivery repeats.
        raw: the whole body, as parsed JSON.
    """

    event: str
    client_key: str
    create_time: int
    user_openid: str
    content: dict[str, Any]
    reason: int | None
    id: str
    raw: dict[str, Any] = field(repr=False)


def verify(
    body: bytes,
    headers_or_signature: Headers | str | None,
    client_secret: str,
    *,
    tolerance: float = 300.0,
) -> WebhookEvent:
    """Check one delivery's signature and return its event; raise `WebhookSignatureError` otherwise.

    `body` is the raw request body, exactly as received; `headers_or_signature` the request's headers (any
    mapping, names compared case-insensitively) or the `TikTok-Signature` value itself. The signature is
    compared in constant time and its `t` must be within `tolerance` seconds of now. The error's
    `status_code` is the status to answer: 401 for a missing, malformed, wrong or stale signature, 400 for a
    correctly signed body that is not TikTok's JSON. No error or log line shows the secret or the expected
    signature.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError("verify() takes the raw request body as bytes")
    raw_body = bytes(body)
    timestamp, signatures = _parse_signature(_signature_value(headers_or_signature))
    signed = timestamp.encode() + b"." + raw_body
    expected = hmac.new(client_secret.encode(), signed, hashlib.sha256).hexdigest()
    # Every `s` offered is compared (a sender may offer several while it rotates secrets), none skipped early.
    matches = [hmac.compare_digest(expected, signature.lower()) for signature in signatures]
    if not any(matches):
        raise _refused("the signature does not match the body")
    if abs(_clock.now() - int(timestamp)) > tolerance:
        raise _refused(f"the signature's timestamp is more than {tolerance:g} s from now")
    return _parse_event(raw_body)


def _signature_value(headers_or_signature: Headers | str | None) -> str | None:
    if headers_or_signature is None or isinstance(headers_or_signature, str):
        return headers_or_signature
    wanted = SIGNATURE_HEADER.lower()
    for name, value in headers_or_signature.items():
        if name.lower() == wanted:
            return value
    return None


def _parse_signature(value: str | None) -> tuple[str, list[str]]:
    """`t=<epoch>,s=<hex>` -> (the timestamp as sent, the signatures offered)."""
    if value is None or not value.strip():
        raise _refused(f"no {SIGNATURE_HEADER} header")
    timestamp: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise _refused(f"the {SIGNATURE_HEADER} header is malformed")
        if name == "t":
            timestamp = item if timestamp is None else ""  # two timestamps: malformed
        elif name == "s" and _HEX.fullmatch(item):
            signatures.append(item)
        elif name == "s":
            raise _refused(f"the {SIGNATURE_HEADER} header is malformed")
    if timestamp is None or not _TIMESTAMP.fullmatch(timestamp) or not signatures:
        raise _refused(f"the {SIGNATURE_HEADER} header is malformed")
    return timestamp, signatures


def _parse_event(body: bytes) -> WebhookEvent:
    try:
        raw = json.loads(body)
    except ValueError:
        raise _malformed("the body is not JSON") from None
    if not isinstance(raw, dict):
        raise _malformed("the body is not a JSON object")
    for name in ("event", "client_key", "user_openid", "content"):
        if not isinstance(raw.get(name), str):
            raise _malformed(f"the body's {name!r} is missing or not a string")
    create_time = raw.get("create_time")
    if not isinstance(create_time, int) or isinstance(create_time, bool):
        raise _malformed("the body's 'create_time' is missing or not an integer")
    try:
        content = json.loads(raw["content"])
    except ValueError:
        raise _malformed("the body's 'content' is not a JSON string") from None
    if not isinstance(content, dict):
        raise _malformed("the body's 'content' is not a JSON object")
    reason: int | None = None
    if raw["event"] == AUTHORIZATION_REMOVED:
        given = content.get("reason")
        reason = given if isinstance(given, int) and not isinstance(given, bool) else 0
    return WebhookEvent(
        event=raw["event"],
        client_key=raw["client_key"],
        create_time=create_time,
        user_openid=raw["user_openid"],
        content=content,
        reason=reason,
        id=hashlib.sha256(body).hexdigest(),
        raw=raw,
    )


def _refused(description: str) -> WebhookSignatureError:
    return WebhookSignatureError(description, error="invalid_signature", status_code=401)


def _malformed(description: str) -> WebhookSignatureError:
    return WebhookSignatureError(description, error="malformed_body", status_code=400)


class SeenIds(Protocol):
    """Where a handler remembers the deliveries it handled: anything with `in` and `add` (e.g. over Redis)."""

    def __contains__(self, event_id: object, /) -> bool: ...

    def add(self, event_id: str, /) -> None: ...


class _RecentIds:
    """The default `seen`: in this process's memory, forgetting an id after `SEEN_FOR` seconds."""

    def __init__(self, keep_for: float = SEEN_FOR) -> None:
        self.keep_for = keep_for
        self._added: dict[str, float] = {}  # insertion order is time order
        self._lock = threading.Lock()

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            self._forget_old()
            return event_id in self._added

    def add(self, event_id: str) -> None:
        with self._lock:
            self._forget_old()
            self._added.pop(event_id, None)
            self._added[event_id] = _clock.now()

    def _forget_old(self) -> None:
        cutoff = _clock.now() - self.keep_for
        while self._added:
            oldest = next(iter(self._added))
            if self._added[oldest] > cutoff:
                return
            del self._added[oldest]


class WebhookHandler:
    """Verify deliveries, drop repeats, and mark a removed grant's token `needs_login`.

    `handle(body, headers)` (a sync store) and `await ahandle(body, headers)` (either store kind) return the
    HTTP status to answer at once: 401 for a bad signature, 400 for a signed body that is not TikTok's JSON,
    200 for a delivery handled or ignored.

    - `seen` holds the ids of handled deliveries (TikTok delivers at least once): any object with `in` and
      `add`, e.g. a wrapper over a Redis set shared by every web worker; by default an in-memory set that
      forgets after 72 hours. An id is added once the delivery has been handled, so a delivery that failed
      (the store was down, `on_webhook` raised: the framework answers 500) is handled again when TikTok
      retries; two copies arriving at the same moment may both reach `on_webhook`.
    - `on_webhook(event)` is called with every verified new `WebhookEvent` of this app, after the handler's
      own work; if it raises, the delivery is not marked seen and the error reaches the framework.
    - For `authorization.removed` the token under `key_for(open_id)` (default: the open_id, as the web login
      stores it) is marked `needs_login` under the store's lock, unless it was issued after the event (the
      user logged in again since), and a `TokenEvent` of kind `"needs_login"` goes to `on_event` when it
      was marked (after the lock is released; a callback that raises is logged and changes nothing). With
      `client_key` given, another app's deliveries are ignored.
    """

    def __init__(
        self,
        client_secret: str,
        store: Any,
        *,
        client_key: str | None = None,
        key_for: Callable[[str], str] | None = None,
        on_webhook: Callable[[WebhookEvent], object] | None = None,
        on_event: OnEvent | None = None,
        seen: SeenIds | None = None,
    ) -> None:
        """Handle deliveries signed with `client_secret`, acting on the tokens of `store`."""
        self._client_secret = client_secret
        self.store = store
        self.client_key = client_key
        self.key_for: Callable[[str], str] = key_for if key_for is not None else _same
        self.on_webhook = on_webhook
        self.on_event = on_event
        self.seen: SeenIds = seen if seen is not None else _RecentIds()

    def __repr__(self) -> str:
        return f"WebhookHandler(store={self.store!r}, client_key={self.client_key!r})"

    def handle(self, body: bytes, headers: Headers) -> int:
        """Handle one delivery with a sync store; return the HTTP status to answer."""
        if inspect.iscoroutinefunction(getattr(self.store, "get", None)):
            raise TypeError("an async store needs `await handler.ahandle(body, headers)`")
        event = self._new_event(body, headers)
        if isinstance(event, int):
            return event
        if event.event == AUTHORIZATION_REMOVED:
            self._marked(event, self._source(event).mark_needs_login(unless_issued_after=event.create_time))
        return self._done(event)

    async def ahandle(self, body: bytes, headers: Headers) -> int:
        """Handle one delivery in async code (either store kind); return the HTTP status to answer."""
        event = self._new_event(body, headers)
        if isinstance(event, int):
            return event
        if event.event == AUTHORIZATION_REMOVED:
            marking: Awaitable[bool] = self._source(event).amark_needs_login(
                unless_issued_after=event.create_time
            )
            self._marked(event, await marking)
        return self._done(event)

    # -- decisions, shared by both ---------------------------------------------------------------------

    def _new_event(self, body: bytes, headers: Headers) -> WebhookEvent | int:
        """The event to act on, or the status to answer right away (refused, a repeat, another app's)."""
        try:
            event = verify(body, headers, self._client_secret)
        except WebhookSignatureError as error:
            logger.warning("webhook delivery refused: %s", error.description)
            return error.status_code or 401
        if self.client_key is not None and event.client_key != self.client_key:
            logger.warning("webhook delivery for another app (client_key %r) ignored", event.client_key)
            return 200
        if event.id in self.seen:
            logger.debug("webhook delivery %s seen before: ignored", event.id)
            return 200
        return event

    def _source(self, event: WebhookEvent) -> TokenSource:
        return TokenSource.over(None, self.store, self.key_for(event.user_openid), on_event=self.on_event)

    def _marked(self, event: WebhookEvent, marked: bool) -> None:
        key = self.key_for(event.user_openid)
        if marked:
            logger.info("grant removed (reason %s): key %r marked needs_login", event.reason, key)
        else:
            logger.info("grant removed (reason %s): key %r had nothing to mark", event.reason, key)

    def _done(self, event: WebhookEvent) -> int:
        if self.on_webhook is not None:
            self.on_webhook(event)
        self.seen.add(event.id)
        return 200


def _same(open_id: str) -> str:
    return open_id
