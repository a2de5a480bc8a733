"""`TikTokAuth`: bearer auth that refreshes TikTok tokens once, whoever needs them.

- `_source`: the token source (read, lock, read again, refresh shielded, write), shared with the keeper;
- `_locks`: in-process locks, wait limits, and the thread that holds a sync store's lock for async code;
- `_flow`: the request flow generator (bearer, 401, retry once) and the allowed-hosts rule;
- `_requests`, `_httpx`, `_niquests` (niquests' AsyncSession): the drivers; `_auth`: the public class that
  assembles them. The aiohttp driver is `tiktok_oauth.integrations.aiohttp.middleware`.
"""

from tiktok_oauth.auth._auth import TikTokAuth
from tiktok_oauth.auth._locks import StoreSection as StoreSection  # the keeper's reads of an async store
from tiktok_oauth.auth._source import TokenSource

__all__ = ["TikTokAuth", "TokenSource"]
