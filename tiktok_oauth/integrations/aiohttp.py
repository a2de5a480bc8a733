"""`middleware(auth)`: `TikTokAuth` for aiohttp (>= 3.12) client sessions.

```python
session = aiohttp.ClientSession(middlewares=(middleware(auth),))
```

The middleware runs the same flow and token source as every other driver: a bearer only for the allowed
hosts (each redirect hop passes through it again, so the token never follows to another host), a refresh
before expiry and once after a 401 `access_token_invalid`, the store read again after other 401s. The retry
goes through the handler the middleware was given, so no middleware runs twice. The driver lives beside
the others, in `tiktok_oauth.auth`.
"""

from __future__ import annotations

from tiktok_oauth.auth import aiohttp_middleware as middleware

__all__ = ["middleware"]
