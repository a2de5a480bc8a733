"""`TikTokAuth`: bearer auth that refreshes TikTok tokens once, whoever needs them.

- `_source`: the token source (read, lock, read again, refresh shielded, write), shared with the keeper;
- `_locks`: in-process locks, wait limits, and the thread that holds a sync store's lock for async code;
- `_flow`: the request flow generator (bearer, 401, retry once), the allowed-hosts rule, and `Driver`: the
  fast path and the flow's token I/O, once;
- `_requests`, `_niquests` (niquests' AsyncSession), `_httpx` (httpx and httpx2), `_aiohttp`: one driver
  each over (token source, allowed hosts), with only its library's I/O;
- `_auth`: the public class composed of them; `_httpx_auth`: how it passes httpx's `isinstance` check.

`aiohttp_middleware` (`tiktok_oauth.integrations.aiohttp.middleware`) imports aiohttp when first asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiktok_oauth.auth._auth import TikTokAuth
from tiktok_oauth.auth._locks import StoreSection as StoreSection  # the keeper's reads of an async store
from tiktok_oauth.auth._source import TokenSource

if TYPE_CHECKING:
    from tiktok_oauth.auth._aiohttp import middleware as aiohttp_middleware

__all__ = ["TikTokAuth", "TokenSource", "aiohttp_middleware"]


def __getattr__(name: str) -> object:
    if name == "aiohttp_middleware":
        from tiktok_oauth.auth._aiohttp import middleware  # noqa: PLC0415 - imports aiohttp

        return middleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
