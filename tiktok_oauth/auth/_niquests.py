"""The niquests `AsyncSession` driver: the requests driver's shape, with the token and the 401 awaited.

niquests calls a sync `auth` while it prepares the request, then awaits the request's hooks. An auth
object built with an `AsyncTikTokOAuth2Client` gets this driver's `__call__` (see `async_variant`): inside
a running event loop it sets a fresh bearer at once, or leaves a `pre_request` hook that awaits the token;
its `response` hook awaits the refresh and sends the retry. Outside a loop (a sync session) it is the
requests driver, which names the client to use. requests and niquests are never imported here.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, NamedTuple

from tiktok_oauth.auth._flow import flow
from tiktok_oauth.auth._httpx import drive_async
from tiktok_oauth.auth._requests import RequestsDriver, in_event_loop, prepared_retry

if TYPE_CHECKING:
    from tiktok_oauth.auth._flow import Hosts
    from tiktok_oauth.auth._source import TokenSource


class Answer(NamedTuple):
    """What the flow reads of a response whose body must be awaited: status, body, and its request."""

    status_code: int
    content: bytes
    request: Any


class NiquestsAsyncDriver(RequestsDriver):
    """`__call__` and awaited hooks of `TikTokAuth` (async client) for `niquests.AsyncSession`."""

    _source: TokenSource
    _hosts: Hosts

    def __call__(self, request: Any) -> Any:
        """Drive the flow for `niquests.AsyncSession` (and, outside an event loop, sync sessions)."""
        if not in_event_loop():
            return super().__call__(request)
        if not self._hosts.allows_str(request.url):
            return request  # another host: the token never goes there
        body = request.body
        bearer = self._source.fresh_bearer()
        if bearer is not None and (body is None or type(body) in (bytes, str)):
            request.headers["Authorization"] = bearer
            request.hooks["response"].append(self._niquests_fast_response)
            return request
        seekable = hasattr(body, "tell") and not inspect.iscoroutinefunction(body.tell)
        position = body.tell() if seekable else None
        steps = flow(request, replayable=body is None or isinstance(body, bytes | str) or seekable)
        step = next(steps)
        source = self._source

        async def token(prepared: Any, **_: Any) -> Any:
            # niquests runs this hook again for each redirect it follows: only this request gets a token here.
            if prepared is request and inspect.getgeneratorstate(steps) == inspect.GEN_SUSPENDED:
                await drive_async(source, steps, step)
            return prepared

        async def answered(response: Any, **kwargs: Any) -> Any:
            return await self._niquests_response(steps, position, response, **kwargs)

        request.hooks["pre_request"].append(token)
        request.hooks["response"].append(answered)
        return request

    async def _niquests_fast_response(self, response: Any, **kwargs: Any) -> Any:
        steps = self._flow_after_fast_401(response)
        return response if steps is None else await self._niquests_response(steps, None, response, **kwargs)

    async def _niquests_response(
        self, steps: Generator[Any, Any, None], position: int | None, response: Any, **kwargs: Any
    ) -> Any:
        # As in the requests driver: the first call carries this request's own response; later calls (for
        # redirects) find the flow finished and change nothing.
        if inspect.getgeneratorstate(steps) != inspect.GEN_SUSPENDED:
            return response
        content = await _body(response) if response.status_code == 401 else b""
        try:
            step = steps.send(Answer(response.status_code, content, response.request))
        except StopIteration:
            return response
        retry = await drive_async(self._source, steps, step)
        if retry is None:
            return response
        await _close(response)
        prepared = prepared_retry(retry, position, response)
        retried = await response.connection.send(prepared, **kwargs)
        retried.history.append(response)
        retried.request = prepared
        steps.close()
        return retried


async def _body(response: Any) -> bytes:
    content = response.content  # niquests' AsyncResponse awaits its body; a plain Response has it
    if inspect.isawaitable(content):
        content = await content
    return content if isinstance(content, bytes) else b""


async def _close(response: Any) -> None:
    closed = response.close()
    if inspect.isawaitable(closed):
        await closed


_ASYNC_VARIANTS: dict[type[Any], type[Any]] = {}


def async_variant(cls: type[Any]) -> type[Any]:
    """`cls` with `NiquestsAsyncDriver` first: the class of an auth object built with an async client.

    Only those pay for the event-loop check; a sync client's auth keeps the requests driver's hot path.
    """
    if issubclass(cls, NiquestsAsyncDriver):
        return cls
    variant = _ASYNC_VARIANTS.get(cls)
    if variant is None:
        variant = type(
            cls.__name__,
            (NiquestsAsyncDriver, cls),
            {"__module__": cls.__module__, "__qualname__": cls.__qualname__},
        )
        _ASYNC_VARIANTS[cls] = variant
    return variant
