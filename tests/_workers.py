"""Helpers for the hostile-conditions tests: a misbehaving loopback front for FakeTikTok, and worker processes.

`FaultFront` is a real HTTP server on a loopback port that answers from a `FakeTikTok` (like `fake.serve()`),
but can also do what the fake cannot: refuse connections (`stop()`, then `start()` again on the same port),
or cut a response off mid-body with a TCP reset (`reset_next`).

`python -m tests._workers <command> ...` runs one worker process for `tests/test_redis_processes.py`:

- `refresh PORT BASE_URL KEY LOCK_TIMEOUT`: print `ready`, wait for a line on stdin, then GET the fake's
  user info URL through `httpx.Client(auth=TikTokAuth(client, RedisTokenStore(...), KEY))` and print one
  JSON line `{"status": ..., "error": ...}`.
- `hold PORT KEY LOCK_TIMEOUT`: take `RedisTokenStore.lock(KEY)`, print `locked`, and sleep until killed.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import struct
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Self

import httpx

if TYPE_CHECKING:
    from tiktok_oauth.testing import FakeTikTok

__all__ = ["CountingTransport", "FaultFront", "report"]

WORKER_SECRET = "SUPER-SECRET-client-secret-0xDEADBEEF"  # the same as tests.conftest.SECRET

_PARTIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"access_t'
)


def report(request: Any, title: str, lines: list[str]) -> None:
    """Write `title` and `lines` to the terminal, past pytest's output capture (for the closing summary)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or request.config.option.verbose < 0:
        return  # a quiet run prints dots and the summary only; -v shows these tables
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(title + ":")
        for line in lines:
            reporter.write_line("  " + line)


class CountingTransport(httpx.HTTPTransport):
    """An `httpx.HTTPTransport` that counts the requests it is asked to send to a path (connect errors too)."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.path:
            self.count += 1
        return super().handle_request(request)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for handlers: nothing outlives the test
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, front: FaultFront, port: int) -> None:
        self.front = front
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped front leaves no keep-alive connection behind.
    server: _Server

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Stay quiet."""

    def _answer(self) -> None:
        front = self.server.front
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if front.take_reset():
            # Headers promise 1000 bytes; 10 arrive, then a TCP reset (SO_LINGER 0 makes close() send RST).
            self.wfile.write(_PARTIAL_RESPONSE)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        url = f"{front.base_url}{self.path}"
        time.sleep(front.fake.request_delay(self.command, url))
        answer = front.fake.handle(self.command, url, dict(self.headers.items()), body)
        if answer is None:  # the fake lost the response: hold the request, then hang up without a word
            front.stopping.wait(front.lost_response_delay)
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):
            self.wfile.write(answer.body)


class FaultFront:
    """A loopback HTTP server answering from `fake`, with faults the fake cannot make on its own.

    Use as a context manager; `base_url` stays the same across `stop()` / `start()`.
    """

    def __init__(self, fake: FakeTikTok, *, lost_response_delay: float = 1.0) -> None:
        self.fake = fake
        self.lost_response_delay = lost_response_delay
        self.stopping = threading.Event()
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._resets = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        """Listen (again) on the same port."""
        self.stopping.clear()
        self._server = _Server(self, self.port)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: connecting now fails with "connection refused"."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None or thread is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()

    def reset_next(self, times: int = 1) -> None:
        """Cut the response to the next `times` requests off after 10 bytes of body, with a TCP reset."""
        with self._lock:
            self._resets += times

    def take_reset(self) -> bool:
        with self._lock:
            if self._resets:
                self._resets -= 1
                return True
            return False

    def clear(self) -> None:
        """Forget pending resets and listen again if stopped."""
        with self._lock:
            self._resets = 0
        if not self.running:
            self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- worker processes for tests/test_redis_processes.py -----------------------------------------------


def _redis_store(port: str, lock_timeout: str) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tiktok_oauth.stores.redis import RedisTokenStore

    client = redis.Redis(
        host="127.0.0.1",
        port=int(port),
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        retry=Retry(NoBackoff(), 0),
    )
    return client, RedisTokenStore(client, lock_timeout=float(lock_timeout), lock_blocking_timeout=20.0)


def _refresh(port: str, base_url: str, key: str, lock_timeout: str) -> None:
    from tiktok_oauth import TikTokAuth, TikTokOAuth2Client
    from tiktok_oauth.testing import FakeTikTok

    fake = FakeTikTok(client_key="test-key", client_secret=WORKER_SECRET)  # only for its URLs
    redis_client, store = _redis_store(port, lock_timeout)
    client = TikTokOAuth2Client("test-key", WORKER_SECRET, timeout=10.0, **fake.endpoints(base_url))
    print("ready", flush=True)
    sys.stdin.readline()
    result: dict[str, Any] = {"status": None, "error": None}
    try:
        with client, httpx.Client(auth=TikTokAuth(client, store, key), timeout=10.0) as http:
            result["status"] = http.get(fake.user_info_url(base_url)).status_code
    except Exception as exc:
        result["error"] = type(exc).__name__
    finally:
        redis_client.close()
    print(json.dumps(result), flush=True)


def _hold(port: str, key: str, lock_timeout: str) -> None:
    _, store = _redis_store(port, lock_timeout)
    with store.lock(key):
        print("locked", flush=True)
        time.sleep(600)


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "refresh":
        _refresh(*args)
    elif command == "hold":
        _hold(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
