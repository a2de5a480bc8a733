"""The httpx and httpx2 driver: `sync_auth_flow` and `async_auth_flow` over the one flow (`_flow`).

The two libraries share the API these use (`request.url`, `request.headers`, `response.read()`), so one
driver serves both; neither is imported here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any

from tiktok_oauth.auth._flow import Driver


def replayable(request: Any) -> bool:
    """Whether an httpx request's body is in memory, so it can be sent a second time."""
    try:
        _ = request.content
    except Exception:  # noqa: BLE001 - httpx and httpx2 each raise their own RequestNotRead
        return False
    return True


class HttpxDriver(Driver):
    """`Auth.sync_auth_flow` and `Auth.async_auth_flow` for httpx and httpx2 clients."""

    __slots__ = ()

    def sync_auth_flow(self, request: Any) -> Generator[Any, Any, None]:
        """Drive the flow for `httpx.Client` and `httpx2.Client`."""
        url = request.url
        if not self.hosts.allows(url.scheme, url.host, url.port):
            yield request  # another host: the token never goes there
            return
        bearer = self.source.fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = yield request
            if response.status_code != 401:
                return
        exchange = self.exchange(request, replayable=replayable(request), bearer=bearer)
        if bearer is None:
            response = yield exchange.first()
        while True:
            if response.status_code == 401:
                response.read()
            retry = exchange.answer(response)
            if retry is None:
                return
            response = yield retry

    async def async_auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
        """Drive the flow for `httpx.AsyncClient` and `httpx2.AsyncClient`."""
        url = request.url
        if not self.hosts.allows(url.scheme, url.host, url.port):
            yield request  # another host: the token never goes there
            return
        bearer = self.source.fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = yield request
            if response.status_code != 401:
                return
        exchange = self.exchange(request, replayable=replayable(request), bearer=bearer)
        if bearer is None:
            response = yield await exchange.afirst()
        while True:
            if response.status_code == 401:
                await response.aread()
            retry = await exchange.aanswer(response)
            if retry is None:
                return
            response = yield retry
