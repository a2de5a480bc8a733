"""`HttpxTikTokAuth`: what `TikTokAuth.__class__` answers once httpx is imported, so it is an `httpx.Auth` too.

httpx keeps an auth that is an instance of its own `Auth` and drives its `sync_auth_flow` /
`async_auth_flow`; any other callable it wraps in a `FunctionAuth`, which would call the requests driver.
`isinstance(auth, httpx.Auth)` falls back to `auth.__class__` when `type(auth)` is not a subclass, and
`TikTokAuth.__class__` names this class, which is one. It is never instantiated. This module imports
httpx, so `TikTokAuth` imports it only when httpx is already in `sys.modules`.
"""

from __future__ import annotations

import httpx

from tiktok_oauth.auth._auth import TikTokAuth


class HttpxTikTokAuth(TikTokAuth, httpx.Auth):  # type: ignore[misc] # httpx2.Auth and httpx.Auth alike
    """`TikTokAuth`, as httpx's `isinstance` check sees it."""
