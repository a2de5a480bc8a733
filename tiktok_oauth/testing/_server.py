"""A real HTTP/1.1 server on a loopback port, answering from a `FakeTikTok` (`FakeTikTok.serve`)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tiktok_oauth._loopback import LoopbackHTTPServer
from tiktok_oauth.testing._control import CONTROL_PREFIX, answer_control
from tiktok_oauth.testing._models import FakeResponse

if TYPE_CHECKING:
    from tiktok_oauth.testing._fake import FakeTikTok

__all__ = ["running_server"]


class _Server(LoopbackHTTPServer):
    def __init__(self, fake: FakeTikTok, port: int = 0) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        """Wake handler threads idling on keep-alive connections, so they finish now."""
        with self._connections_lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exception(), ConnectionError):
            return  # the client went away: normal for keep-alive and lost responses
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK holds each keep-alive
    # answer for about 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def do_DELETE(self) -> None:
        self._answer()

    def send_header(self, keyword: str, value: str) -> None:
        """Write one header; one holding CR or LF is a bug here, never written (`_answer` checks first)."""
        if _splits_header(keyword) or _splits_header(value):
            raise ValueError("a header holding CR or LF")
        super().send_header(keyword, value)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Stay quiet: tests read `fake.requests` instead."""

    def _answer(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host, port = self.server.server_address[:2]
        url = f"http://{host!s}:{port}{self.path}"
        if self.path.startswith(CONTROL_PREFIX):
            self._send(answer_control(fake, self.command, self.path, body))
            return
        time.sleep(fake.request_delay(self.command, url))
        answer = fake.handle(self.command, url, dict(self.headers.items()), body)
        if answer is None:
            self.server.stopping.wait(fake.serve_timeout_delay)
            self.close_connection = True
            return
        if any(_splits_header(text) for header in answer.headers.items() for text in header):
            # A CR or LF would end the header early and start another (a planted Set-Cookie): never written.
            answer = FakeResponse(
                500,
                {"content-type": "text/plain; charset=utf-8"},
                b"FakeTikTok refused a header holding CR or LF\n",
            )
        self._send(answer)

    def _send(self, answer: FakeResponse) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


def _splits_header(text: str) -> bool:
    return "\r" in text or "\n" in text


@contextlib.contextmanager
def running_server(fake: FakeTikTok, port: int = 0) -> Iterator[str]:
    """Run a server for `fake` in a daemon thread on `port` (0: a free one); yield `http://127.0.0.1:PORT`;
    stop it on exit."""
    server = _Server(fake, port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeTikTok", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
