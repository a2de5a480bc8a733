"""The aiohttp driver (>= 3.12): a client middleware over the one flow; `middleware(auth)` builds it.

Each redirect hop passes through the middleware again, so the token never follows to another host. The
retry goes through the handler the middleware was given, so no middleware runs twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import payload

from tiktok_oauth.auth._flow import Answer, Driver
from tiktok_oauth.client import AsyncTikTokOAuth2Client

if TYPE_CHECKING:
    from aiohttp import ClientHandlerType, ClientMiddlewareType, ClientRequest, ClientResponse

    from tiktok_oauth.auth._auth import TikTokAuth


def replayable(request: ClientRequest) -> bool:
    """Bytes, text, JSON and urlencoded forms can be sent again; streams, files and multipart cannot."""
    body: Any = request.body
    return body == b"" or isinstance(body, payload.BytesPayload)


class AiohttpDriver(Driver):
    """An aiohttp client middleware: `session = aiohttp.ClientSession(middlewares=(driver,))`."""

    __slots__ = ()

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        url = request.url
        if not self.hosts.allows(url.scheme, url.host, url.port):
            return await handler(request)  # another host: the token never goes there
        bearer = self.source.fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = await handler(request)
            if response.status != 401:
                return response
        exchange = self.exchange(request, replayable=replayable(request), bearer=bearer)
        if bearer is None:
            response = await handler(await exchange.afirst())
        while True:
            content = await response.read() if response.status == 401 else b""
            retry = await exchange.aanswer(Answer(response.status, content, request))
            if retry is None:
                return response
            response.release()
            response = await handler(retry)


def middleware(auth: TikTokAuth) -> ClientMiddlewareType:
    """A client middleware that authenticates requests to TikTok with `auth` (built with an async client).

    Raises:
        TypeError: `auth` was built with a sync `TikTokOAuth2Client`.
    """
    if not isinstance(auth.client, AsyncTikTokOAuth2Client):
        raise TypeError("aiohttp needs a TikTokAuth built with an AsyncTikTokOAuth2Client")
    return auth.driver(AiohttpDriver)
