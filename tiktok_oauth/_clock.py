"""The one clock: every expiry decision reads `now()`, so tests can move time without sleeping."""

from __future__ import annotations

import time

__all__ = ["now"]

#: The current time in epoch seconds. `time.time` itself, not a function around it: the auth's hot path
#: reads it on every request. Tests replace the module attribute (`monkeypatch.setattr(_clock, "now", ...)`).
now = time.time
