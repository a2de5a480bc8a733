"""Transports that hand requests to a `FakeTikTok`: httpx2/httpx sync and async, a requests adapter, a respx route.

The httpx transports answer with the classes of the library the request comes from (httpx2 or httpx), so
one transport serves either client; httpx is never imported here.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx2

if TYPE_CHECKING:
    from types import ModuleType

    from tiktok_oauth.testing._fake import FakeTikTok

__all__ = ["FakeAsyncTransport", "FakeTransport", "add_respx_route", "mount_requests_adapter"]

TIKTOK_ORIGINS = ("https://open.tiktokapis.com", "https://www.tiktok.com")
TIKTOK_HOSTS = tuple(origin.removeprefix("https://") for origin in TIKTOK_ORIGINS)


def _library(request: Any, given: ModuleType | None) -> Any:
    """`given`, or the library (httpx2 or httpx) whose request this is."""
    return sys.modules[type(request).__module__.partition(".")[0]] if given is None else given


class FakeTransport(httpx2.BaseTransport):
    """An `httpx2.BaseTransport` (and an httpx one, duck-typed) answering every request from a `FakeTikTok`."""

    def __init__(self, fake: FakeTikTok, httpx_module: ModuleType | None = None) -> None:
        """Answer from `fake`, building responses and exceptions of `httpx_module` (default: the request's)."""
        self._fake = fake
        self._httpx = httpx_module

    def handle_request(self, request: Any) -> Any:
        """Answer `request`, or raise `ReadTimeout` where the fake loses the response."""
        body = request.read()
        method, url = request.method, str(request.url)
        time.sleep(self._fake.request_delay(method, url))
        answer = self._fake.handle(method, url, dict(request.headers), body)
        library = _library(request, self._httpx)
        if answer is None:
            raise library.ReadTimeout("FakeTikTok lost the response", request=request)
        return library.Response(answer.status, headers=answer.headers, content=answer.body, request=request)


class FakeAsyncTransport(httpx2.AsyncBaseTransport):
    """An `httpx2.AsyncBaseTransport` (and an httpx one, duck-typed) answering every request from a `FakeTikTok`."""

    def __init__(self, fake: FakeTikTok, httpx_module: ModuleType | None = None) -> None:
        """Answer from `fake`, building responses and exceptions of `httpx_module` (default: the request's)."""
        self._fake = fake
        self._httpx = httpx_module

    async def handle_async_request(self, request: Any) -> Any:
        """Answer `request`, or raise `ReadTimeout` where the fake loses the response."""
        body = await request.aread()
        method, url = request.method, str(request.url)
        await asyncio.sleep(self._fake.request_delay(method, url))
        answer = self._fake.handle(method, url, dict(request.headers), body)
        library = _library(request, self._httpx)
        if answer is None:
            raise library.ReadTimeout("FakeTikTok lost the response", request=request)
        return library.Response(answer.status, headers=answer.headers, content=answer.body, request=request)


def add_respx_route(fake: FakeTikTok, router: Any) -> Any:
    """Add to a respx `router` one route for TikTok's two origins, answered by `fake`; return the route.

    respx hands the route an `httpx.Request` whose body it has already read, from sync and async clients
    alike, so the sync transport answers both (a `token_delay` then blocks an event loop: a test's knob).
    """
    transport = FakeTransport(fake)
    return router.route(scheme="https", host__in=TIKTOK_HOSTS).mock(side_effect=transport.handle_request)


def mount_requests_adapter(fake: FakeTikTok, session: Any) -> None:
    """Mount an adapter answering from `fake` on `session` for TikTok's two origins."""
    import requests  # noqa: PLC0415 - the library never imports requests at import time
    import requests.adapters  # noqa: PLC0415
    from requests.structures import CaseInsensitiveDict  # noqa: PLC0415

    class FakeTikTokAdapter(requests.adapters.BaseAdapter):
        """A requests transport adapter answering every request from a `FakeTikTok`."""

        def send(self, request: Any, *_: Any, **__: Any) -> Any:
            body = request.body or b""
            if isinstance(body, str):
                body = body.encode()
            elif not isinstance(body, bytes):
                body = b"".join(body) if not hasattr(body, "read") else body.read()
            method, url = request.method, request.url
            time.sleep(fake.request_delay(method, url))
            answer = fake.handle(method, url, dict(request.headers), body)
            if answer is None:
                raise requests.exceptions.ReadTimeout("FakeTikTok lost the response", request=request)
            response = requests.Response()
            response.status_code = answer.status
            response.headers = CaseInsensitiveDict(answer.headers)
            response.raw = io.BytesIO(answer.body)
            response._content = answer.body  # noqa: SLF001 - requests' own adapters do this
            response._content_consumed = True  # type: ignore[attr-defined] # noqa: SLF001
            response.encoding = requests.utils.get_encoding_from_headers(response.headers)
            response.url = url
            response.request = request
            response.reason = _reason(answer.status)
            response.connection = self  # type: ignore[assignment] # used by auth retries
            return response

        def close(self) -> None:
            """Nothing to close."""

    adapter = FakeTikTokAdapter()
    for origin in TIKTOK_ORIGINS:
        session.mount(origin, adapter)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
