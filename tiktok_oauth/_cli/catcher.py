"""`RedirectCatcher`: a one-shot HTTP server on the loopback redirect URI that catches TikTok's callback.

Real browsers are not polite one-request clients: they preconnect sockets that may never send anything,
ask for `/favicon.ico`, and keep connections alive. So the server handles each connection in its own
daemon thread with a socket timeout, answers every other path with 404 and carries on, finishes only on a
request to the redirect URI's path carrying `code` or `error`, and on exit wakes idle connections
instead of waiting for them.
"""

from __future__ import annotations

import contextlib
import html
import http.server
import socket
import threading
import time
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, urlsplit

from tiktok_oauth._loopback import LoopbackHTTPServer

__all__ = ["RedirectCatcher", "loopback_redirect"]

_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1"})
#: Seconds an idle connection (a preconnect, a keep-alive) may wait for a request before it is closed.
CONNECTION_TIMEOUT: Final = 10.0


def loopback_redirect(redirect_uri: str) -> tuple[str, int, str] | None:
    """`(host, port, path)` to listen on for an `http://localhost` or `http://127.0.0.1` URI, else None."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS:
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    return parts.hostname, port, parts.path or "/"


def _page(title: str, message: str) -> bytes:
    return (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>tiktok-oauth</title>'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        "<p>You can close this tab and return to the terminal.</p></html>"
    ).encode()


class _Server(LoopbackHTTPServer):
    block_on_close = False  # `RedirectCatcher.close` wakes and joins the threads itself, with a bound

    def __init__(self, host: str, port: int, path: str) -> None:
        self.path = path
        self.callback: str | None = None
        self.caught = threading.Event()
        self._catcher: int | None = None  # ident of the thread that caught the callback
        self._lock = threading.Lock()
        self._live: dict[socket.socket, threading.Thread] = {}
        super().__init__((host, port), _Handler)

    def claim(self, request_path: str) -> bool:
        """Record the first callback; False if one was already caught."""
        with self._lock:
            if self.callback is not None:
                return False
            self.callback = request_path
            self._catcher = threading.get_ident()
            return True

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered before the thread starts, so `wake_and_join` sees every accepted connection.
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._lock:
            self._live[request] = thread
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # closes the socket at the end
        finally:
            with self._lock:
                self._live.pop(request, None)
                caught = self._catcher == threading.get_ident()
            if caught:
                self.caught.set()  # only now: the page is sent and the connection closed

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a browser dropping a connection is normal, and the terminal has better things to show."""

    def wake_and_join(self, timeout: float) -> None:
        """Close every connection still open (idle preconnects, keep-alives) and wait for their threads."""
        with self._lock:
            live = dict(self._live)
        for connection in live:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread in live.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = CONNECTION_TIMEOUT
    server: _Server

    def do_GET(self) -> None:
        """Catch the callback; answer anything else (favicon.ico, ...) with 404 and keep serving."""
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path != self.server.path or not ("code" in query or "error" in query):
            self._send(404, _page("Not found", "This is tiktok-oauth waiting for TikTok's redirect."))
            return
        if not self.server.claim(self.path):
            self._send(409, _page("Already done", "The login has already received TikTok's answer."))
            return
        if "error" in query:
            reason = ": ".join(query.get("error", []) + query.get("error_description", []))
            page = _page("TikTok did not grant access", reason)
        else:
            page = _page("Authorization received", "tiktok-oauth is finishing the login in the terminal.")
        self.close_connection = True
        self._send(200, page, close=True)

    def do_HEAD(self) -> None:
        """Answer a HEAD (some link checkers send one) with an empty 404."""
        self._send(404, b"")

    def _send(self, status: int, body: bytes, *, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Log nothing: request lines carry the authorization code."""


class RedirectCatcher:
    """Listen on `host:port` until a request to `path` brings TikTok's callback; a context manager.

    Args:
        host: `127.0.0.1` or `localhost` (bound as is: the redirect URI's host).
        port: the redirect URI's port.
        path: the redirect URI's path; requests elsewhere get a 404.
        scheme_and_netloc: how the callback URL handed back begins, e.g. `http://127.0.0.1:8080`.
    """

    def __init__(self, host: str, port: int, path: str, *, scheme_and_netloc: str) -> None:
        self._origin = scheme_and_netloc
        self._server = _Server(host, port, path)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="tiktok-oauth redirect catcher",
            daemon=True,
        )
        self._thread.start()

    def wait(self, timeout: float) -> str | None:
        """The full callback URL once the browser brought it (and got its page), or None after `timeout`."""
        if not self._server.caught.wait(timeout):
            return None
        return f"{self._origin}{self._server.callback}"

    def close(self) -> None:
        """Stop listening and close every connection, without waiting on idle ones."""
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        self._server.wake_and_join(timeout=2.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
