"""The hot path: what attaching a valid token costs per request, with no network, for requests and httpx.

Every contender gets a fresh request object per call (built before the clock starts) and its response
step is driven too: for requests, the response hooks the auth registered are called with a 200 response
(TikTokAuth registers one per request); for httpx, the flow is driven from `next()` to `StopIteration`
with a 200 `httpx.Response`, as `httpx.Client` does.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import requests
from _timing import Prepare, Timing, time_interleaved
from authlib.integrations.httpx_client import OAuth2Auth as AuthlibHttpxAuth
from authlib.integrations.requests_client import OAuth2Auth as AuthlibRequestsAuth
from authlib.integrations.requests_client import OAuth2Session

from tiktok_oauth import FileTokenStore, MemoryTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken

URL = "https://open.tiktokapis.com/v2/user/info/?fields=open_id"
KEY = "default"

BARE = "bare header"
AUTHLIB = "Authlib OAuth2Auth"
AUTHLIB_SESSION = "Authlib OAuth2Session.token_auth"
MEMORY = "TikTokAuth + MemoryTokenStore"
FILE = "TikTokAuth + FileTokenStore"


def valid_token() -> TikTokToken:
    return TikTokToken(
        access_token="act.benchmark-access-token",
        refresh_token="rft.benchmark-refresh-token",
        open_id="benchmark-open-id",
        scope="user.info.basic",
        token_type="Bearer",
        expires_in=86400,
        refresh_expires_in=31536000,
    )


@contextlib.contextmanager
def tiktok_auths() -> Iterator[dict[str, TikTokAuth]]:
    """TikTokAuth on a memory store and on a file store in a temporary directory, both holding a valid token."""
    client = TikTokOAuth2Client("benchmark-key", "benchmark-secret")
    with tempfile.TemporaryDirectory(prefix="tiktok-oauth-bench-") as directory:
        memory, file = MemoryTokenStore(), FileTokenStore(directory)
        memory.set(KEY, valid_token())
        file.set(KEY, valid_token())
        yield {MEMORY: TikTokAuth(client, memory, KEY), FILE: TikTokAuth(client, file, KEY)}
    client.close()


# -- requests ---------------------------------------------------------------------------------------


@dataclass
class _RequestsResponse:
    """What TikTokAuth's response hook reads of a `requests.Response`: a 200 answer to `request`."""

    request: Any
    status_code: int = 200
    content: bytes = b'{"data": {}}'


def bare_requests(request: requests.PreparedRequest) -> requests.PreparedRequest:
    request.headers["Authorization"] = "Bearer x"
    return request


def _requests_prepare(auth: Any, template: requests.PreparedRequest) -> Prepare:
    def prepare(number: int) -> Any:
        pairs = []
        for _ in range(number):
            request = template.copy()
            request.hooks = {"response": []}  # copy() shares the template's hooks dict
            pairs.append((request, _RequestsResponse(request)))

        def loop() -> None:
            for request, response in pairs:
                prepared = auth(request)
                for hook in prepared.hooks["response"]:  # what requests' dispatch_hook does
                    hook(response)

        return loop

    return prepare


def requests_contenders(auths: dict[str, TikTokAuth]) -> list[tuple[str, Prepare]]:
    template = requests.Request("GET", URL).prepare()
    session = OAuth2Session(
        "benchmark-key", "benchmark-secret", token=dict(valid_token()), token_endpoint=URL
    )
    return [
        (BARE, _requests_prepare(bare_requests, template)),
        (AUTHLIB, _requests_prepare(AuthlibRequestsAuth(dict(valid_token())), template)),
        (AUTHLIB_SESSION, _requests_prepare(session.token_auth, template)),
        (MEMORY, _requests_prepare(auths[MEMORY], template)),
        (FILE, _requests_prepare(auths[FILE], template)),
    ]


# -- httpx ------------------------------------------------------------------------------------------


class BareHttpxAuth(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = "Bearer x"
        yield request


def _httpx_prepare(auth: Any) -> Prepare:
    def prepare(number: int) -> Any:
        pairs = []
        for _ in range(number):
            request = httpx.Request("GET", URL)
            pairs.append((request, httpx.Response(200, request=request)))

        def loop() -> None:
            for request, response in pairs:
                flow = auth.sync_auth_flow(request)
                next(flow)
                try:
                    while True:
                        flow.send(response)
                except StopIteration:
                    pass

        return loop

    return prepare


def httpx_contenders(auths: dict[str, TikTokAuth]) -> list[tuple[str, Prepare]]:
    return [
        (BARE, _httpx_prepare(BareHttpxAuth())),
        (AUTHLIB, _httpx_prepare(AuthlibHttpxAuth(dict(valid_token())))),
        (MEMORY, _httpx_prepare(auths[MEMORY])),
        (FILE, _httpx_prepare(auths[FILE])),
    ]


def run(number: int, repeat: int) -> dict[str, list[Timing]]:
    """Time both hot paths; return the timings per library ("requests", "httpx")."""
    results = {}
    with tiktok_auths() as auths:
        for library, contenders in (
            ("requests", requests_contenders(auths)),
            ("httpx", httpx_contenders(auths)),
        ):
            time_interleaved(contenders, number=min(number, 500), repeat=1)  # warm up
            results[library] = time_interleaved(contenders, number=number, repeat=repeat)
    return results
