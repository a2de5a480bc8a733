"""The niquests `AsyncSession` driver: the requests driver's shape, with the token and the 401 awaited.

niquests calls a sync `auth` while it prepares the request, then awaits the request's hooks. An auth
object built with an `AsyncTikTokOAuth2Client` calls this driver: inside a running event loop it sets a
fresh bearer at once, or leaves a `pre_request` hook that awaits the token; its `response` hook awaits the
refresh and sends the retry. Outside a loop (a sync session) it is the requests driver, which names the
client to use. requests and niquests are never imported here.
"""

from __future__ import annotations

import inspect
from typing import Any

from tiktok_oauth.auth._flow import Answer, Exchange
from tiktok_oauth.auth._requests import RequestsDriver, in_event_loop, prepared_retry, retried


class NiquestsAsyncDriver(RequestsDriver):
    """`auth(request)` and its awaited hooks for `niquests.AsyncSession` (an async client's auth)."""

    __slots__ = ()

    def __call__(self, request: Any) -> Any:
        """Drive the flow for `niquests.AsyncSession` (and, outside an event loop, sync sessions)."""
        if not in_event_loop():
            return super().__call__(request)
        if not self.hosts.allows_str(request.url):
            return request  # another host: the token never goes there
        body = request.body
        bearer = self.source.fresh_bearer()
        if bearer is not None and (body is None or type(body) in (bytes, str)):
            request.headers["Authorization"] = bearer
            request.hooks["response"].append(self._afast_response)
            return request
        seekable = hasattr(body, "tell") and not inspect.iscoroutinefunction(body.tell)
        position = body.tell() if seekable else None
        exchange = self.exchange(
            request, replayable=body is None or isinstance(body, bytes | str) or seekable
        )
        pending = [True]

        async def token(prepared: Any, **_: Any) -> Any:
            # niquests runs this hook again for each redirect it follows: only this request gets a token here.
            if prepared is request and pending:
                pending.clear()
                await exchange.afirst()
            return prepared

        async def answered(response: Any, **kwargs: Any) -> Any:
            return await self._aresponse(exchange, position, response, **kwargs)

        request.hooks["pre_request"].append(token)
        request.hooks["response"].append(answered)
        return request

    async def _afast_response(self, response: Any, **kwargs: Any) -> Any:
        exchange = self.after_fast_401(response)
        return response if exchange is None else await self._aresponse(exchange, None, response, **kwargs)

    async def _aresponse(self, exchange: Exchange, position: int | None, response: Any, **kwargs: Any) -> Any:
        # As in the requests driver: the first call carries this request's own response; later calls (for
        # redirects) find the flow finished and change nothing.
        if not exchange.waiting:
            return response
        content = await _body(response) if response.status_code == 401 else b""
        retry = await exchange.aanswer(Answer(response.status_code, content, response.request))
        if retry is None:
            return response
        await _close(response)
        prepared = prepared_retry(retry, position, response)
        return retried(exchange, response, prepared, await response.connection.send(prepared, **kwargs))


async def _body(response: Any) -> bytes:
    content = response.content  # niquests' AsyncResponse awaits its body; a plain Response has it
    if inspect.isawaitable(content):
        content = await content
    return content if isinstance(content, bytes) else b""


async def _close(response: Any) -> None:
    closed = response.close()
    if inspect.isawaitable(closed):
        await closed
