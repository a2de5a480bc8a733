"""`TokenEvent`: what the library tells an app's `on_event` callback after each thing it did to a token.

Events are built from plain values (the key, the open_id, a typed error): never a token or a secret. They
are delivered after every lock is released, and a callback that raises is logged, never allowed to change
the outcome (as `logging` handlers are).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from tiktok_oauth import _clock

__all__ = ["EventKind", "OnEvent", "TokenEvent", "emit"]

logger = logging.getLogger("tiktok_oauth")

EventKind = Literal[
    "logged_in", "refreshed", "refresh_failed", "needs_login", "revoked", "lock_lost", "write_retried"
]


@dataclass(frozen=True)
class TokenEvent:
    """One thing the library did to the token under `key`.

    Attributes:
        kind: `"logged_in"`, `"refreshed"`, `"refresh_failed"` (`error` set; the token kept),
            `"needs_login"` (the key got marked: the user must log in again), `"revoked"` (logout, a
            webhook), `"lock_lost"`, `"write_retried"` (a store write failed and was retried).
        key: the store key.
        open_id: the user's open_id, when known.
        at: when it happened (epoch seconds).
        error: the typed error, for failures.
        log_id: TikTok's `log_id` / `request_id` when its answer had one.
    """

    kind: EventKind
    key: str
    open_id: str | None = None
    at: float = field(default_factory=_clock.now)
    error: Exception | None = None
    log_id: str | None = None

    @classmethod
    def of(
        cls, kind: EventKind, key: str, open_id: str | None = None, error: Exception | None = None
    ) -> TokenEvent:
        """An event, with `log_id` taken from `error` when it carries one."""
        log_id = getattr(error, "log_id", None)
        return cls(kind, key, open_id, error=error, log_id=log_id if isinstance(log_id, str) else None)


OnEvent = Callable[[TokenEvent], object]


def emit(on_event: OnEvent | None, events: Iterable[TokenEvent]) -> None:
    """Call `on_event` with each event; an exception it raises is logged and goes no further."""
    if on_event is None:
        return
    for event in events:
        try:
            on_event(event)
        except Exception as exc:  # noqa: BLE001 - a callback never changes an outcome
            logger.warning("on_event raised %s for a %r event; ignored", type(exc).__name__, event.kind)
