"""The hot path: what attaching a valid token costs per request, with no network, for requests, httpx and httpx2.

Every contender gets a fresh request object per call (built before the clock starts) and its response
step is driven too: for requests, the response hooks the auth registered are called with a 200 response
(TikTokAuth registers one per request); for httpx, the flow is driven from `next()` to `StopIteration`
with a 200 `httpx.Response`, as `httpx.Client` does (the same with httpx2's own classes).

The yardstick is MINIMAL: a hand-written auth that does the least a correct one must (the host check, the
header, and a 401 retry hook), against which `TikTokAuth` is held (1.05x for requests, 1.10x for httpx and
httpx2). `python benchmarks/hot_path.py` prints that comparison alone.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import requests
from _timing import Prepare, Timing, time_interleaved
from authlib.integrations.httpx_client import OAuth2Auth as AuthlibHttpxAuth
from authlib.integrations.requests_client import OAuth2Auth as AuthlibRequestsAuth
from authlib.integrations.requests_client import OAuth2Session

from tiktok_oauth import FileTokenStore, MemoryTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken

URL = "https://open.tiktokapis.com/v2/user/info/?fields=open_id"
KEY = "default"

BARE = "bare header"
MINIMAL = "minimal correct auth"
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


class MinimalRequestsAuth:
    """The least a correct requests auth does: the host check, the header, a hook that retries after a 401."""

    def __init__(self, access_token: str) -> None:
        self.bearer = f"Bearer {access_token}"
        self.prefixes = ("https://open.tiktokapis.com/",)

    def __call__(self, request: Any) -> Any:
        if request.url.startswith(self.prefixes):
            request.headers["Authorization"] = self.bearer
            request.hooks["response"].append(self.retry_on_401)
        return request

    def retry_on_401(self, response: Any, **kwargs: Any) -> Any:
        if response.status_code != 401:
            return response
        retry = response.request.copy()  # (a refresh would go here)
        return response.connection.send(retry, **kwargs)  # pragma: no cover - never a 401 here


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
        (MINIMAL, _requests_prepare(MinimalRequestsAuth("x"), template)),
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


class MinimalHttpxAuth(httpx.Auth):
    """The least a correct httpx auth does: the host check, the header, one retry after a 401."""

    def __init__(self, access_token: str) -> None:
        self.bearer = f"Bearer {access_token}"

    def auth_flow(self, request: httpx.Request) -> Any:
        url = request.url
        if url.scheme != "https" or url.host != "open.tiktokapis.com":
            yield request
            return
        request.headers["Authorization"] = self.bearer
        response = yield request
        if response.status_code == 401:  # (a refresh would go here)
            yield request  # pragma: no cover - never a 401 here


class BareHttpx2Auth(httpx2.Auth):
    def auth_flow(self, request: httpx2.Request) -> Any:
        request.headers["Authorization"] = "Bearer x"
        yield request


class MinimalHttpx2Auth(httpx2.Auth):
    """`MinimalHttpxAuth` for httpx2."""

    def __init__(self, access_token: str) -> None:
        self.bearer = f"Bearer {access_token}"

    auth_flow = MinimalHttpxAuth.auth_flow


def _httpx_prepare(auth: Any, module: Any = httpx) -> Prepare:
    def prepare(number: int) -> Any:
        pairs = []
        for _ in range(number):
            request = module.Request("GET", URL)
            pairs.append((request, module.Response(200, request=request)))

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
        (MINIMAL, _httpx_prepare(MinimalHttpxAuth("x"))),
        (AUTHLIB, _httpx_prepare(AuthlibHttpxAuth(dict(valid_token())))),
        (MEMORY, _httpx_prepare(auths[MEMORY])),
        (FILE, _httpx_prepare(auths[FILE])),
    ]


def httpx2_contenders(auths: dict[str, TikTokAuth]) -> list[tuple[str, Prepare]]:
    return [
        (BARE, _httpx_prepare(BareHttpx2Auth(), httpx2)),
        (MINIMAL, _httpx_prepare(MinimalHttpx2Auth("x"), httpx2)),
        (MEMORY, _httpx_prepare(auths[MEMORY], httpx2)),
        (FILE, _httpx_prepare(auths[FILE], httpx2)),
    ]


def run(number: int, repeat: int) -> dict[str, list[Timing]]:
    """Time the hot paths; return the timings per library ("requests", "httpx", "httpx2")."""
    results = {}
    with tiktok_auths() as auths:
        for library, contenders in (
            ("requests", requests_contenders(auths)),
            ("httpx", httpx_contenders(auths)),
            ("httpx2", httpx2_contenders(auths)),
        ):
            time_interleaved(contenders, number=min(number, 500), repeat=1)  # warm up
            results[library] = time_interleaved(contenders, number=number, repeat=repeat)
    return results


#: The floor `TikTokAuth` is held to: at most this times MINIMAL's time, per library.
FLOOR_LIMITS = {"requests": 1.05, "httpx": 1.10, "httpx2": 1.10}


def main() -> None:
    """Print TikTokAuth (memory store) against MINIMAL: best and median µs, and the ratio of the medians."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    for library, timings in run(args.number, args.repeat).items():
        by_name = {timing.name: timing for timing in timings}
        ours, floor = by_name[MEMORY], by_name[MINIMAL]
        ratio = ours.median_us / floor.median_us
        print(
            f"{library}: minimal {floor.best_us:.3f}/{floor.median_us:.3f} µs, "
            f"TikTokAuth {ours.best_us:.3f}/{ours.median_us:.3f} µs (best/median); "
            f"median ratio {ratio:.3f} (limit {FLOOR_LIMITS[library]})"
        )


if __name__ == "__main__":
    main()
