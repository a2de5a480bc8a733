"""`tiktok-oauth demo --web`: "Log in with TikTok" in a real browser, against the fake's consent page.

A tiny web app (the standard library's HTTP server, no framework) on `tiktok_oauth.web.TikTokLogin`: a home
page, `/login`, the callback, `/me` (the user's display name, through `TikTokAuth`) and `/logout`. It keeps
each browser's session in memory under a random cookie. Everything runs on 127.0.0.1 until Ctrl-C.
"""

from __future__ import annotations

import argparse
import html
import http.server
import secrets
import threading
import webbrowser
from http.cookies import SimpleCookie
from typing import Any

import httpx2

from tiktok_oauth._api import unwrap
from tiktok_oauth._loopback import LoopbackHTTPServer
from tiktok_oauth.client import TikTokOAuth2Client
from tiktok_oauth.errors import (
    AuthorizationDeniedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokOAuthError,
)
from tiktok_oauth.web import TikTokLogin

__all__ = ["run_web_demo"]

_COOKIE = "demo_session"
_USER = "user"


class _App:
    """The app's state: the login, the browsers' sessions, and the fake's user-info URL."""

    def __init__(self, login: TikTokLogin, user_info_url: str) -> None:
        self.login = login
        self.user_info_url = user_info_url
        self.sessions: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.http = httpx2.Client(timeout=10)

    def session(self, cookie_header: str | None) -> tuple[str, dict[str, Any]]:
        cookies = SimpleCookie(cookie_header or "")
        sid = cookies[_COOKIE].value if _COOKIE in cookies else ""
        with self.lock:
            if sid not in self.sessions:
                sid = secrets.token_urlsafe(32)
                self.sessions[sid] = {}
            return sid, self.sessions[sid]

    def page(self, path: str, session: dict[str, Any], url: str) -> tuple[int, str, str]:
        """`(status, location, body)` for a GET of `path` (`url`: the full URL the browser asked for)."""
        if path == "/login":
            return 302, self.login.begin(session, next="/me"), ""
        if path == "/callback":
            return self._callback(session, url)
        if path == "/me":
            return self._me(session)
        if _USER in session:
            return 200, "", '<p>Logged in. <a href="/me">Your profile</a></p>'
        return 200, "", '<p><a href="/login">Log in with TikTok</a> (the fake one: any open_id will do)</p>'

    def logout(self, session: dict[str, Any]) -> tuple[int, str, str]:
        key = session.pop(_USER, None)
        if key is not None:
            self.login.auth(key).logout()
        return 303, "/", ""

    def _callback(self, session: dict[str, Any], url: str) -> tuple[int, str, str]:
        try:
            result = self.login.complete(session, url)
        except AuthorizationDeniedError:
            return 200, "", '<p>You did not log in. <a href="/login">Try again</a></p>'
        except StateMismatchError:
            return 400, "", '<p>This login link is no longer valid. <a href="/login">Log in</a></p>'
        except TikTokOAuthError as error:
            return 502, "", f"<p>The login failed: {html.escape(type(error).__name__)}</p>"
        session[_USER] = result.key
        return 303, result.next or "/me", ""

    def _me(self, session: dict[str, Any]) -> tuple[int, str, str]:
        key = session.get(_USER)
        if key is None:
            return 303, "/login", ""
        try:
            answer = self.http.get(
                self.user_info_url, params={"fields": "display_name"}, auth=self.login.auth(key)
            )
        except ReauthorizationRequiredError:
            session.pop(_USER)
            return 303, "/login", ""
        name = html.escape(unwrap(answer)["user"]["display_name"])
        form = '<form method="post" action="/logout"><button id="logout">Log out</button></form>'
        return 200, "", f"<h1>{name}</h1><p>Fetched through TikTokAuth.</p>{form}"


def _handler(app: _App, base: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(lambda session: app.page(self.path.split("?")[0], session, base + self.path))

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            self._answer(lambda session: app.logout(session) if path == "/logout" else (404, "", "Not found"))

        def _answer(self, route: Any) -> None:
            sid, session = app.session(self.headers.get("Cookie"))
            status, location, body = route(session)
            content = f"<!doctype html><title>tiktok-oauth web demo</title>{body}".encode()
            self.send_response(status)
            self.send_header("Set-Cookie", f"{_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax")
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            """Log nothing: request lines carry the authorization code."""

    return Handler


def run_web_demo(args: argparse.Namespace) -> int:
    """Serve the web demo until Ctrl-C; return 0."""
    from tiktok_oauth.testing import FakeTikTok  # noqa: PLC0415 - test helpers load only for the demo

    fake = FakeTikTok(client_key="demo-client-key", client_secret=secrets.token_urlsafe(24))
    with fake.serve() as base_url:
        server = LoopbackHTTPServer(("127.0.0.1", args.port), http.server.BaseHTTPRequestHandler)
        app_url = f"http://127.0.0.1:{server.server_port}"
        endpoints = fake.endpoints(base_url)
        client = TikTokOAuth2Client(
            fake.client_key,
            fake.client_secret,
            redirect_uri=f"{app_url}/callback",
            scope="user.info.basic",
            authorize_url=endpoints["authorize_url"],
            token_url=endpoints["token_url"],
            revoke_url=endpoints["revoke_url"],
        )
        app = _App(TikTokLogin(client), fake.user_info_url(base_url))
        server.RequestHandlerClass = _handler(app, app_url)
        print("tiktok-oauth demo --web: a web app with 'Log in with TikTok', against a fake TikTok.")
        print(f"The fake TikTok (its consent page included) is at {base_url}.")
        print(f"Open {app_url}/ in a browser. Press Ctrl-C to stop.", flush=True)
        if args.open:
            webbrowser.open(f"{app_url}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("Stopped.")
        finally:
            server.server_close()
            app.http.close()
            client.close()
    return 0
