"""`middleware(auth)`: `TikTokAuth` for aiohttp (>= 3.12) client sessions.

```python
session = aiohttp.ClientSession(middlewares=(middleware(auth),))
```

The middleware runs the same flow and token source as every other driver: a bearer only for the allowed
hosts (each redirect hop passes through it again, so the token never follows to another host), a refresh
before expiry and once after a 401 `access_token_invalid`, the store read again after other 401s. The retry
goes through the handler the middleware was given, so no middleware runs twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import payload

from tiktok_oauth.auth._flow import flow
from tiktok_oauth.auth._httpx import drive_async
from tiktok_oauth.auth._niquests import Answer
from tiktok_oauth.client import AsyncTikTokOAuth2Client

if TYPE_CHECKING:
    from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse

    from tiktok_oauth.auth import TikTokAuth

__all__ = ["middleware"]


def _replayable(request: ClientRequest) -> bool:
    """Bytes, text, JSON and urlencoded forms can be sent again; streams, files and multipart cannot."""
    body: Any = request.body
    return body == b"" or isinstance(body, payload.BytesPayload)


def middleware(auth: TikTokAuth) -> ClientMiddlewareType:
    """A client middleware that authenticates requests to TikTok with `auth` (built with an async client).

    Raises:
        TypeError: `auth` was built with a sync `TikTokOAuth2Client`.
    """
    if not isinstance(auth.client, AsyncTikTokOAuth2Client):
        raise TypeError("aiohttp needs a TikTokAuth built with an AsyncTikTokOAuth2Client")
    source = auth._source  # noqa: SLF001 - a driver of the auth object, as the others are
    hosts = auth._hosts  # noqa: SLF001

    async def tiktok_auth(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        url = request.url
        if not hosts.allows(url.scheme, url.host, url.port):
            return await handler(request)  # another host: the token never goes there
        bearer = source.fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = await handler(request)
            if response.status != 401:
                return response
            steps = flow(request, replayable=_replayable(request), sent=bearer[7:])
            next(steps)
        else:
            steps = flow(request, replayable=_replayable(request))
            response = await handler(await drive_async(source, steps, next(steps)))
        while True:
            content = await response.read() if response.status == 401 else b""
            try:
                step = steps.send(Answer(response.status, content, request))
            except StopIteration:
                return response
            retry = await drive_async(source, steps, step)
            if retry is None:
                return response
            response.release()
            response = await handler(retry)

    return tiktok_auth
