"""The httpx driver (also for httpx2): `sync_auth_flow` and `async_auth_flow` run the flow.

A fresh token takes the fast path: the header is set and the flow starts only if TikTok answers 401.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from tiktok_oauth.auth._flow import TokenNeeded, flow

if TYPE_CHECKING:
    import httpx

    from tiktok_oauth.auth._flow import Hosts
    from tiktok_oauth.auth._source import TokenSource
    from tiktok_oauth.token import TikTokToken


def drive_sync(source: TokenSource, steps: Generator[Any, Any, None], step: Any) -> Any:
    """Advance `steps` past token requests; return the next request to send (or raise StopIteration)."""
    while isinstance(step, TokenNeeded):
        if step.renew:
            step = steps.send(source.token(step.rejected))
        else:
            assert step.rejected is not None
            step = steps.send(source.stored_replacement(step.rejected))
    return step


async def drive_async(source: TokenSource, steps: Generator[Any, Any, None], step: Any) -> Any:
    """`drive_sync` for async drivers; the end of the flow is None here, not StopIteration.

    A StopIteration cannot leave a coroutine (Python turns it into a RuntimeError), and a flow can end on
    a token: a 401 that a refresh cannot cure, with no other token in the store.
    """
    while isinstance(step, TokenNeeded):
        token: TikTokToken | None
        if step.renew:
            token = await source.atoken(step.rejected)
        else:
            assert step.rejected is not None
            token = await source.astored_replacement(step.rejected)
        try:
            step = steps.send(token)
        except StopIteration:
            return None
    return step


def replayable(request: Any) -> bool:
    """Whether an httpx request's body is in memory, so it can be sent a second time."""
    try:
        _ = request.content
    except Exception:  # noqa: BLE001 - httpx and httpx2 each raise their own RequestNotRead
        return False
    return True


class HttpxDriver:
    """`httpx.Auth`'s two flows for `TikTokAuth`."""

    _source: TokenSource
    _hosts: Hosts

    def _httpx_allowed(self, request: Any) -> bool:
        url = request.url
        return self._hosts.allows(url.scheme, url.host, url.port)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive the flow for `httpx.Client` (and `httpx2.Client`)."""
        if not self._httpx_allowed(request):
            yield request  # another host: the token never goes there
            return
        source = self._source
        bearer = source.fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = yield request
            if response.status_code != 401:
                return
            steps = flow(request, replayable=replayable(request), sent=bearer[7:])
            next(steps)
        else:
            steps = flow(request, replayable=replayable(request))
            response = yield drive_sync(source, steps, next(steps))
        while True:
            if response.status_code == 401:
                response.read()
            try:
                next_request = drive_sync(source, steps, steps.send(response))
            except StopIteration:
                return
            response = yield next_request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive the flow for `httpx.AsyncClient` (and `httpx2.AsyncClient`)."""
        if not self._httpx_allowed(request):
            yield request  # another host: the token never goes there
            return
        source = self._source
        bearer = source.fresh_bearer()
        if bearer is not None:
            request.headers["Authorization"] = bearer
            response = yield request
            if response.status_code != 401:
                return
            steps = flow(request, replayable=replayable(request), sent=bearer[7:])
            next(steps)
        else:
            steps = flow(request, replayable=replayable(request))
            response = yield await drive_async(source, steps, next(steps))
        while True:
            if response.status_code == 401:
                await response.aread()
            try:
                next_request = await drive_async(source, steps, steps.send(response))
            except StopIteration:
                return
            if next_request is None:
                return
            response = yield next_request
