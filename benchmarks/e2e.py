"""End to end on loopback: requests per second through `requests.Session` and `httpx.Client` to the served fake.

Each client pair differs only in how the `Authorization` header gets there: TikTokAuth, or a static header
set on the session. Rounds are interleaved (every contender runs once per round, in turn) so that drift in
the machine's load hits all of them; each contender keeps its own keep-alive connection. The fake is served
from a child process: in the same process its server thread would compete with the clients for the GIL, which
magnifies any difference in client-side CPU time far beyond its real cost.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection

import httpx
import requests

from tiktok_oauth import MemoryTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken
from tiktok_oauth.testing import FakeTikTok

KEY = "default"


@dataclass(frozen=True)
class Throughput:
    name: str
    rps: tuple[float, ...]  # one per round

    @property
    def best(self) -> float:
        return max(self.rps)

    @property
    def median(self) -> float:
        return statistics.median(self.rps)


class BareAuth(httpx.Auth):
    """The cheapest possible httpx auth: what any auth flow costs end to end, next to a static header."""

    def __init__(self, header: str) -> None:
        self.header = header

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        request.headers["Authorization"] = self.header
        yield request


def bare_requests_auth(header: str) -> Callable[[requests.PreparedRequest], requests.PreparedRequest]:
    """The cheapest possible requests auth callable."""

    def auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = header
        return request

    return auth


def _serve(connection: Connection) -> None:
    """In a child process: serve a fake, send its base URL, credentials and a token, wait to be told to stop."""
    fake = FakeTikTok()
    with fake.serve() as base_url:
        connection.send((base_url, fake.client_key, fake.client_secret, fake.issue_token()))
        connection.recv()


@contextmanager
def served_fake() -> Iterator[tuple[str, str, str, dict[str, object]]]:
    """`fake.serve()` in a child process, so that the server does not share the clients' GIL."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(theirs,), daemon=True)
    process.start()
    try:
        yield ours.recv()
    finally:
        ours.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


@contextmanager
def contenders() -> Iterator[list[tuple[str, Callable[[], int], str]]]:
    """(name, send one request and return its status, library) for each contender, against a served fake."""
    with ExitStack() as stack:
        base_url, client_key, client_secret, body = stack.enter_context(served_fake())
        urls = FakeTikTok()  # only for its URL helpers
        url = urls.user_info_url(base_url)
        token = TikTokToken(body)
        store = MemoryTokenStore()
        store.set(KEY, token)
        client = stack.enter_context(
            TikTokOAuth2Client(client_key, client_secret, **urls.endpoints(base_url))
        )
        auth = TikTokAuth(client, store, KEY)  # allowed_hosts includes the served host:port
        static = {"Authorization": f"Bearer {token.access_token}"}

        # trust_env off for both libraries: no proxy look-ups from the environment in the timed loop.
        with_auth = stack.enter_context(requests.Session())
        with_auth.trust_env = False
        with_auth.auth = auth
        with_header = stack.enter_context(requests.Session())
        with_header.trust_env = False
        with_header.headers.update(static)
        with_bare = stack.enter_context(requests.Session())
        with_bare.trust_env = False
        with_bare.auth = bare_requests_auth(static["Authorization"])
        httpx_auth = stack.enter_context(httpx.Client(auth=auth, trust_env=False))
        httpx_header = stack.enter_context(httpx.Client(headers=static, trust_env=False))
        httpx_bare = stack.enter_context(
            httpx.Client(auth=BareAuth(static["Authorization"]), trust_env=False)
        )
        yield [
            ("requests + TikTokAuth", lambda: with_auth.get(url).status_code, "requests"),
            ("requests + static header", lambda: with_header.get(url).status_code, "requests"),
            ("requests + bare auth", lambda: with_bare.get(url).status_code, "requests"),
            ("httpx + TikTokAuth", lambda: httpx_auth.get(url).status_code, "httpx"),
            ("httpx + static header", lambda: httpx_header.get(url).status_code, "httpx"),
            ("httpx + bare auth", lambda: httpx_bare.get(url).status_code, "httpx"),
        ]


def run(per_round: int, rounds: int) -> list[Throughput]:
    with contenders() as runners:
        for _, send, _ in runners:  # warm up: connect, fill caches
            for _ in range(20):
                send()
        results: dict[str, list[float]] = {name: [] for name, _, _ in runners}
        for round_number in range(rounds):
            # Every other round runs in reverse order, so no contender always follows the same one.
            for name, send, _ in runners if round_number % 2 == 0 else runners[::-1]:
                start = time.perf_counter()
                statuses = [send() for _ in range(per_round)]
                elapsed = time.perf_counter() - start
                if statuses.count(200) != per_round:
                    raise RuntimeError(f"{name}: not every request got a 200: {set(statuses)}")
                results[name].append(per_round / elapsed)
    return [Throughput(name, tuple(results[name])) for name, _, _ in runners]


def paired_ratio(auth: Throughput, header: Throughput) -> float:
    """The median over rounds of auth rps / static-header rps: the two ran back to back in each round."""
    return statistics.median(a / h for a, h in zip(auth.rps, header.rps, strict=True))
