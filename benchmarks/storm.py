"""The refresh storm: N threads share one client whose token has expired, and all send a request at once.

Counted is how many times each library hits the token endpoint (`len(fake.token_requests)`, which counts
rejected requests too). Every contender talks to a `FakeTikTok` through its in-process transport, whose
token endpoint takes `token_delay` seconds, so late threads arrive while the first refresh is in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import requests
from authlib.common.urls import add_params_to_qs
from authlib.integrations.httpx_client import OAuth2Client as AuthlibHttpxClient
from authlib.integrations.requests_client import OAuth2Session

from tiktok_oauth import MemoryTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken
from tiktok_oauth.testing import FakeTikTok

TOKEN_URL = "https://open.tiktokapis.com/v2/oauth/token/"
TOKEN_DELAY = 0.05
KEY = "default"


@dataclass(frozen=True)
class StormResult:
    contender: str
    callers: int
    token_calls: int
    refreshes_granted: int
    stale_refresh_uses: int
    ok: int  # callers whose API request got a 200
    seconds: float


def expired_token(fake: FakeTikTok) -> dict[str, Any]:
    """A grant the fake knows, whose access token we consider expired (its refresh token is valid)."""
    return {**fake.issue_token(), "expires_at": int(time.time()) - 10}


def tiktok_post_auth(auth: Any, method: str, uri: str, headers: Any, body: str) -> tuple[str, Any, str]:
    """An Authlib client-auth method speaking TikTok's dialect: `client_key` and secret in the form body."""
    body = add_params_to_qs(
        body or "", [("client_key", auth.client_id), ("client_secret", auth.client_secret)]
    )
    return uri, headers, body


def _storm(fake: FakeTikTok, callers: int, call: Callable[[], int]) -> tuple[int, float]:
    barrier = threading.Barrier(callers)
    statuses: list[int] = []
    lock = threading.Lock()

    def caller() -> None:
        barrier.wait()
        try:
            status = call()
        except Exception:
            status = 0
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(status == 200 for status in statuses), time.perf_counter() - start


def _fake() -> FakeTikTok:
    fake = FakeTikTok()
    fake.token_delay = TOKEN_DELAY
    return fake


def tiktok_requests(callers: int) -> StormResult:
    fake = _fake()
    client = TikTokOAuth2Client(
        fake.client_key, fake.client_secret, http_client=httpx.Client(transport=fake.transport())
    )
    store = MemoryTokenStore()
    store.set(KEY, TikTokToken(expired_token(fake)))
    session = requests.Session()
    fake.mount(session)
    session.auth = TikTokAuth(client, store, KEY)
    url = fake.user_info_url()
    return _result("TikTokAuth (requests.Session)", fake, callers, lambda: session.get(url).status_code)


def tiktok_httpx(callers: int) -> StormResult:
    fake = _fake()
    client = TikTokOAuth2Client(
        fake.client_key, fake.client_secret, http_client=httpx.Client(transport=fake.transport())
    )
    store = MemoryTokenStore()
    store.set(KEY, TikTokToken(expired_token(fake)))
    http = httpx.Client(transport=fake.transport(), auth=TikTokAuth(client, store, KEY))
    url = fake.user_info_url()
    return _result("TikTokAuth (httpx.Client)", fake, callers, lambda: http.get(url).status_code)


def authlib_requests(callers: int, *, tiktok_dialect: bool = False) -> StormResult:
    fake = _fake()
    extra = {"token_endpoint_auth_method": tiktok_post_auth} if tiktok_dialect else {}
    session = OAuth2Session(
        fake.client_key, fake.client_secret, token=expired_token(fake), token_endpoint=TOKEN_URL, **extra
    )
    fake.mount(session)
    url = fake.user_info_url()
    name = "Authlib OAuth2Session" + (" + TikTok client auth" if tiktok_dialect else "")
    return _result(name, fake, callers, lambda: session.get(url).status_code)


def authlib_httpx(callers: int) -> StormResult:
    fake = _fake()
    # Authlib's httpx integration is built on httpx2 when it is installed (Authlib >= 1.7).
    client = AuthlibHttpxClient(
        fake.client_key,
        fake.client_secret,
        token=expired_token(fake),
        token_endpoint=TOKEN_URL,
        transport=fake.transport(httpx_module=httpx2),
    )
    url = fake.user_info_url()
    return _result("Authlib httpx_client.OAuth2Client", fake, callers, lambda: client.get(url).status_code)


def _result(name: str, fake: FakeTikTok, callers: int, call: Callable[[], int]) -> StormResult:
    before = len(fake.token_requests)
    ok, seconds = _storm(fake, callers, call)
    return StormResult(
        contender=name,
        callers=callers,
        token_calls=len(fake.token_requests) - before,
        refreshes_granted=fake.grant_count("refresh_token"),
        stale_refresh_uses=fake.stale_refresh_token_uses,
        ok=ok,
        seconds=seconds,
    )


CONTENDERS: list[Callable[[int], StormResult]] = [
    tiktok_requests,
    tiktok_httpx,
    authlib_requests,
    lambda callers: authlib_requests(callers, tiktok_dialect=True),
    authlib_httpx,
]


def run(callers: tuple[int, ...]) -> list[StormResult]:
    return [contender(n) for n in callers for contender in CONTENDERS]
