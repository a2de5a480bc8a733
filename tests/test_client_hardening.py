"""Regression tests for issue 8's client items: redirects (6), whole-attempt timeouts (3), successive event
loops (7), fork (8) and malformed lifetimes (11). Each talks to a real loopback server."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.conftest import SECRET
from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokOAuth2Client, TikTokServerError
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.token import TikTokToken

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


@contextmanager
def serving(handle: Handler) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback HTTP server answering every POST with `handle`; yields its base URL and the bodies it got."""
    bodies: list[bytes] = []

    class _Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            handle(self)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bodies
    finally:
        server.shutdown()
        server.server_close()


def _redirect_to(target: str) -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        request.send_response(307)
        request.send_header("Location", target)
        request.send_header("Content-Length", "0")
        request.end_headers()

    return handle


def _answer(status: int, body: dict[str, object]) -> Handler:
    def handle(request: http.server.BaseHTTPRequestHandler) -> None:
        raw = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        request.wfile.write(raw)

    return handle


def _trickle(request: http.server.BaseHTTPRequestHandler) -> None:
    """A token answer, one byte every 0.2 s: each read is quick, the whole answer takes seconds."""
    raw = json.dumps({"access_token": "act.x", "expires_in": 3600, "refresh_token": "rft.y"}).encode()
    request.send_response(200)
    request.send_header("Content-Length", str(len(raw)))
    request.end_headers()
    try:
        for byte in raw:
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass  # the client cut the answer


def _urls(base: str) -> dict[str, str]:
    return {
        "authorize_url": f"{base}/v2/auth/authorize/",
        "token_url": f"{base}/v2/oauth/token/",
        "revoke_url": f"{base}/v2/oauth/revoke/",
    }


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_item6_token_posts_never_follow_redirects(kind: str) -> None:
    with serving(_answer(200, {"access_token": "act.evil", "expires_in": 3600})) as (evil, evil_bodies):  # noqa: SIM117 - the second server needs the first's URL
        with serving(_redirect_to(f"{evil}/steal")) as (base, bodies):
            if kind == "sync":
                with (
                    httpx.Client(follow_redirects=True) as http,
                    TikTokOAuth2Client("k", SECRET, http_client=http, **_urls(base)) as client,
                    pytest.raises(TikTokServerError, match="redirect") as caught,
                ):
                    client.refresh_token("rft.old")
            else:

                async def go() -> TikTokServerError:
                    async with httpx.AsyncClient(follow_redirects=True) as http:
                        client = AsyncTikTokOAuth2Client("k", SECRET, http_client=http, **_urls(base))
                        with pytest.raises(TikTokServerError, match="redirect") as caught:
                            await client.refresh_token("rft.old")
                        return caught.value

                caught_error = asyncio.run(go())
                assert caught_error.status_code == 307
    assert len(bodies) == 1  # one attempt: a redirect is not retried
    assert evil_bodies == []  # the secret and the refresh token never went to the redirect's target
    if kind == "sync":
        assert caught.value.status_code == 307


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_item3_timeout_bounds_an_attempt_as_a_whole(kind: str) -> None:
    with serving(_trickle) as (base, bodies):
        started = time.monotonic()
        if kind == "sync":
            with (
                TikTokOAuth2Client("k", SECRET, timeout=1.0, **_urls(base)) as client,
                pytest.raises(TikTokServerError) as caught,
            ):
                client.refresh_token("rft.old")
        else:

            async def go() -> None:
                async with AsyncTikTokOAuth2Client("k", SECRET, timeout=1.0, **_urls(base)) as client:
                    await client.refresh_token("rft.old")

            with pytest.raises(TikTokServerError) as caught:
                asyncio.run(go())
        elapsed = time.monotonic() - started
    # The answer would take ~16 s; each read is 0.2 s. The attempt is cut, and a refresh that may have been
    # processed is never sent again.
    assert caught.value.error == "timeout"
    assert len(bodies) == 1
    assert elapsed < 8, "the trickling answer was not cut"


def test_item11_a_zero_or_negative_expires_in_is_malformed() -> None:
    for expires_in in (0, -5):
        with (
            serving(_answer(200, {"access_token": "act.x", "expires_in": expires_in})) as (base, _),
            TikTokOAuth2Client("k", SECRET, **_urls(base)) as client,
            pytest.raises(TikTokServerError, match="malformed expires_in"),
        ):
            client.refresh_token("rft.old")


def test_item7_an_async_client_works_from_successive_event_loops(fake: FakeTikTok) -> None:
    token = TikTokToken(fake.issue_token(open_id="u1"))
    with fake.serve() as base:
        client = AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base))
        for _ in range(3):
            token = asyncio.run(client.refresh_token(token))
        assert fake.grant_count("refresh_token") == 3

        async def close() -> None:
            await client.aclose()

        asyncio.run(close())


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_item8_a_forked_child_can_use_an_inherited_client(fake: FakeTikTok) -> None:
    token = TikTokToken(fake.issue_token(open_id="u1"))
    with fake.serve() as base, TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base)) as client:
        token = client.refresh_token(token)  # the parent's HTTP client now holds a pooled connection
        held = threading.Event()

        def hold_the_client_lock() -> None:
            with client._http_lock:
                held.set()
                time.sleep(1.0)

        holder = threading.Thread(target=hold_the_client_lock)
        holder.start()
        held.wait()
        reader, writer = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the child: the lock was held by a thread that does not exist here
            reader.close()
            try:
                client.refresh_token(token)
                writer.sendall(b"ok")
            except BaseException as exc:
                writer.sendall(type(exc).__name__.encode())
            finally:
                os._exit(0)
        writer.close()
        reader.settimeout(10)
        try:
            answer = reader.recv(100)
        finally:
            reader.close()
            os.waitpid(pid, 0)
            holder.join()
        assert answer == b"ok"
