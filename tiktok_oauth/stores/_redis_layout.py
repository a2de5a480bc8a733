"""Where the Redis stores keep things, and how they write and list them (no I/O, no redis import).

Layout for `prefix = "tiktok-oauth:"` (any non-empty prefix works the same way):

- `tiktok-oauth:<key>`: the token's JSON, a string (the layout of version 0.1.0).
- `tiktok-oauth#lock:<key>`: the lock of `<key>`, redis-py's lock (a string holding its owner's token).
- `tiktok-oauth#expiries`: a sorted set, member `<key>`, score the access token's `expires_at`.

The bookkeeping names swap the prefix's last character (`:` for `#`, or any other for `#`; `#` for
`:`), so they never start with the prefix: no token key, whatever its string, can be a lock or the
index, and a `SCAN` of `prefix*` sees token keys only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["DELETE_SCRIPT", "SET_SCRIPT", "ExpiryPager", "Layout", "index_score"]

# Both scripts: KEYS = value, index, lock; ARGV[1] = the lock token this store holds ("" when it
# holds none: no check). A script runs atomically, so the value and its index entry change together,
# and a write under a lost lock changes nothing.
SET_SCRIPT = """
if ARGV[1] ~= "" and redis.call("GET", KEYS[3]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[1], ARGV[2])
if ARGV[3] == "" then redis.call("ZREM", KEYS[2], ARGV[4]) else redis.call("ZADD", KEYS[2], ARGV[3], ARGV[4]) end
return 1
"""
DELETE_SCRIPT = """
if ARGV[1] ~= "" and redis.call("GET", KEYS[3]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
redis.call("ZREM", KEYS[2], ARGV[2])
return 1
"""

_GLOB_SPECIAL = frozenset("*?[]\\")
PAGE = 1000  # SCAN COUNT and ZRANGEBYSCORE LIMIT: enough per round trip, little memory


def index_score(expiry: float | None) -> str:
    """The index score argument of `SET_SCRIPT` for an access expiry (`""`: not indexed)."""
    return "" if expiry is None else repr(expiry)


class Layout:
    """The Redis key names of one store (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        if not prefix:
            raise ValueError("a Redis store needs a non-empty prefix: its keys live under it")
        self.prefix = prefix
        self.prefix_bytes = prefix.encode()
        last = prefix[-1]
        self.meta = prefix[:-1] + ("#" if last != "#" else ":")
        self.index = self.meta + "expiries"
        self.scan_pattern = "".join(f"\\{c}" if c in _GLOB_SPECIAL else c for c in prefix) + "*"

    def value(self, key: str) -> str:
        """The Redis key holding the token for `key`."""
        return self.prefix + key

    def lock(self, key: str) -> str:
        """The Redis key of the lock for `key`."""
        return f"{self.meta}lock:{key}"

    def key_of(self, name: bytes | str) -> str | None:
        """The store key for a scanned Redis key name (None for a name that `set` cannot have made)."""
        raw = name.encode() if isinstance(name, str) else name
        if not raw.startswith(self.prefix_bytes):
            return None
        try:
            return raw[len(self.prefix_bytes) :].decode()
        except UnicodeDecodeError:
            return None


def _decode(member: bytes | str) -> str:
    return member if isinstance(member, str) else member.decode()


class ExpiryPager:
    """Pages through the expiry index by score, `PAGE` members at a time, for `expiring(before)`.

    Paging by score (not by offset) means tokens that are refreshed while the caller works through
    the list (their score moves past `before`) never make it skip others. Members that share the
    score a page ended on are remembered, so a page that starts on that score again skips them.

    Use: `while (query := pager.query()) is not None: keys = pager.feed(ZRANGEBYSCORE(*query))`, where
    a query is `(min, max, count)` for `ZRANGEBYSCORE index min max WITHSCORES LIMIT 0 count`.
    """

    def __init__(self, before: float) -> None:
        before = float(before)
        if math.isnan(before):
            raise ValueError("before must be a number, not NaN")
        self._max = "+inf" if before == math.inf else f"({before!r}"
        self._min = "-inf"
        self._min_score: float | None = None
        self._seen_at_min: set[bytes | str] = set()
        self._done = before == -math.inf

    def query(self) -> tuple[str, str, int] | None:
        """The next `(min, max, count)` to ask for, or None when every page was read."""
        return None if self._done else (self._min, self._max, PAGE + len(self._seen_at_min))

    def feed(self, rows: Iterable[tuple[bytes | str, float]]) -> list[str]:
        """Take one page's `(member, score)` rows; return the keys not listed before."""
        rows = list(rows)
        limit = PAGE + len(self._seen_at_min)
        fresh = [
            member for member, score in rows if not (score == self._min_score and member in self._seen_at_min)
        ]
        if len(rows) < limit:
            self._done = True
        else:
            last = rows[-1][1]
            if last != self._min_score:
                self._min_score, self._seen_at_min = last, set()
            self._seen_at_min.update(member for member, score in rows if score == last)
            self._min = repr(last)
        return [_decode(member) for member in fresh]
