"""The requests driver (also niquests' sync `Session`): a callable plus a response hook; requests is never imported.

A fresh token for a plainly allowed URL takes the fast path: the header and one bound hook, and the flow
starts only on a 401. The retry after a 401 follows requests' `HTTPDigestAuth.handle_401`.
"""

from __future__ import annotations

import sys
from functools import partial
from types import FrameType
from typing import Any, Final

from tiktok_oauth import _clock
from tiktok_oauth.auth._flow import Driver, Exchange, Hosts, sent_token
from tiktok_oauth.auth._source import TokenSource


class RequestsDriver(Driver):
    """`auth(request)` and its response hook for requests-style sessions."""

    __slots__ = ("_fast_hook", "_prefixes")

    def __init__(self, source: TokenSource, hosts: Hosts) -> None:
        super().__init__(source, hosts)
        self._prefixes = hosts.prefixes  # read on the hot path: one attribute, not two
        self._fast_hook = self._fast_response  # bound once: the hot path appends it

    def __call__(self, request: Any) -> Any:
        """Drive the flow for requests: `session.auth = auth` calls this with each `PreparedRequest`."""
        body = request.body
        token, fresh_until, bearer = self.source.current  # `fresh_bearer()`, inlined: the hot path
        if (
            token is not None
            and _clock.now() < fresh_until
            and (body is None or type(body) in (bytes, str))
            and request.url.startswith(self._prefixes)
        ):  # the fast path: a fresh token for a plainly allowed URL; the flow starts only on a 401
            request.headers["Authorization"] = bearer
            request.hooks["response"].append(self._fast_hook)
            return request
        if not self.hosts.allows_str(request.url):
            return request  # another host: the token never goes there
        refuse_an_async_session()
        position = body.tell() if hasattr(body, "tell") else None
        replayable = body is None or isinstance(body, bytes | str) or position is not None
        exchange = self.exchange(request, replayable=replayable)
        prepared = exchange.first()
        request.register_hook("response", partial(self._response, exchange, position))
        return prepared

    def after_fast_401(self, response: Any) -> Exchange | None:
        """The flow a fast-path request starts on its 401, or None when the answer is not ours to handle.

        The hook also sees the answers of redirects the session followed: act only for an allowed URL that
        carried our bearer (requests and niquests strip it when a redirect leaves the host).
        """
        if response.status_code != 401:
            return None
        request = response.request
        bearer = request.headers.get("Authorization")
        if sent_token(bearer) is None or not self.hosts.allows_str(request.url):
            return None
        return self.exchange(request, replayable=True, bearer=bearer)

    def _fast_response(self, response: Any, **kwargs: Any) -> Any:
        exchange = self.after_fast_401(response)
        return response if exchange is None else self._response(exchange, None, response, **kwargs)

    def _response(self, exchange: Exchange, position: int | None, response: Any, **kwargs: Any) -> Any:
        # The first call carries this request's own response and ends the flow unless it asks for a retry;
        # later calls (for redirects requests follows) find the flow finished and change nothing.
        if not exchange.waiting:
            return response
        refuse_an_async_session()
        retry = exchange.answer(response)
        if retry is None:
            return response
        _ = response.content  # consume the body and release the connection for the retry
        response.close()
        prepared = prepared_retry(retry, position, response)
        return retried(exchange, response, prepared, response.connection.send(prepared, **kwargs))


def in_event_loop() -> bool:
    """Whether the caller runs inside an asyncio event loop (no loop without asyncio imported)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refuse_an_async_session() -> None:
    """`TypeError` when niquests' `AsyncSession` calls the sync driver: its token I/O would block the loop.

    niquests calls a sync auth from `AsyncSession.request` too. A sync `requests`/`niquests.Session` may
    legitimately run inside a loop (a notebook), so the caller's frames tell the two apart. Only the slow
    path asks (a token to read or renew), never the hot path.
    """
    if not in_event_loop():
        return
    frame: FrameType | None = sys._getframe(2)  # noqa: SLF001
    for _ in range(_FRAMES_TO_AN_ASYNC_SESSION):
        if frame is None:
            return
        if frame.f_globals.get("__name__") == "niquests.async_session":
            raise TypeError(
                "niquests.AsyncSession needs a TikTokAuth built with an AsyncTikTokOAuth2Client; "
                "a TikTokOAuth2Client would block the event loop while it reads or refreshes the token"
            )
        frame = frame.f_back


#: How far up `AsyncSession.request` is from the driver: prepare_auth, prepare, prepare_request, request.
_FRAMES_TO_AN_ASYNC_SESSION: Final = 8


def prepared_retry(retry: Any, position: int | None, response: Any) -> Any:
    """The request to send again after a 401: a copy, its file body rewound, carrying the 401's cookies.

    Cookies the 401 set go out with the retry, as requests' digest auth does; requests and niquests have
    already parsed them into `response.cookies`, so neither library need be imported for it.
    """
    prepared = retry.copy()
    if position is not None:
        prepared.body.seek(position)
    cookie_jar = getattr(prepared, "_cookies", None)
    if cookie_jar is not None:
        cookie_jar.update(response.cookies)
        prepared.headers.pop("Cookie", None)
        prepared.prepare_cookies(cookie_jar)
    return prepared


def retried(exchange: Exchange, response: Any, prepared: Any, answer: Any) -> Any:
    """The retry's `answer`, with the 401 `response` in its history; the exchange is over."""
    answer.history.append(response)
    answer.request = prepared
    exchange.close()
    return answer
