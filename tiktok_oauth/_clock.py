"""The one clock: every expiry decision reads `now()`, so tests can move time without sleeping."""

from __future__ import annotations

import time

__all__ = ["now"]


def now() -> float:
    """Return the current time in epoch seconds."""
    return time.time()
