"""The Starlette/FastAPI flavour through Starlette's `TestClient`: a FastAPI app with SessionMiddleware."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.testclient import TestClient

from tests.conftest import SECRET
from tests.web._support import Page, begin, log_in, path_of, three_users_log_in
from tests.web.conftest import REDIRECT_URI
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    AuthorizationDeniedError,
    MemoryTokenStore,
    StateMismatchError,
    TikTokOAuth2Client,
)
from tiktok_oauth.integrations.starlette import TikTokLogin
from tiktok_oauth.testing import FakeTikTok


def make_app(login: TikTokLogin, *, sessions: bool = True) -> FastAPI:
    app = FastAPI()
    if sessions:
        app.add_middleware(SessionMiddleware, secret_key="starlette-test-session-key")

    @app.get("/login")
    async def start(request: Request, next: str | None = None) -> Response:  # noqa: A002
        return await login.authorize_redirect(request, next=next)

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        try:
            result = await login.authorize_access_token(request)
        except AuthorizationDeniedError:
            return PlainTextResponse("denied", status_code=403)
        except StateMismatchError:
            return PlainTextResponse("state mismatch", status_code=400)
        request.session["user"] = result.key
        return RedirectResponse(result.next or "/me", status_code=303)

    @app.get("/me")
    async def me(request: Request) -> Response:
        return PlainTextResponse(request.session.get("user", ""))

    return app


class _Browser:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def visit(self, path: str) -> Page:
        response = self.client.get(path)
        return Page(response.status_code, response.headers.get("location"), response.text)


@pytest.fixture
def login(client: TikTokOAuth2Client, store: MemoryTokenStore) -> TikTokLogin:
    return TikTokLogin(client, store)


@pytest.fixture
def browsers(login: TikTokLogin) -> Iterator[list[_Browser]]:
    app = make_app(login)
    made = [_Browser(TestClient(app, follow_redirects=False)) for _ in range(3)]
    yield made
    for browser in made:
        browser.client.close()


def test_three_users_log_in_on_one_app(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    three_users_log_in(list(browsers), fake, store)


def test_authorize_redirect_answers_302_to_tiktok(browsers: list[_Browser]) -> None:
    url = begin(browsers[0])
    assert "client_key=test-key" in url
    assert f"redirect_uri={REDIRECT_URI.replace(':', '%3A').replace('/', '%2F')}" in url


def test_next_comes_back_after_the_login(browsers: list[_Browser], fake: FakeTikTok) -> None:
    browser = browsers[0]
    page = browser.visit(path_of(fake.authorize(begin(browser, "/videos"))))
    assert (page.status, page.location) == (303, "/videos")


def test_an_open_redirect_next_is_refused(browsers: list[_Browser]) -> None:
    with pytest.raises(ValueError, match="next must be a path on this site"):
        browsers[0].visit("/login?next=//evil.example")


def test_a_callback_in_another_browser_is_a_state_mismatch(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    callback = fake.authorize(begin(browsers[0]), open_id="victim")
    page = browsers[1].visit(path_of(callback))
    assert (page.status, page.text) == (400, "state mismatch")
    assert fake.token_requests == []
    assert list(store.keys()) == []


def test_a_denial_reaches_the_app(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    browser = browsers[0]
    page = browser.visit(path_of(fake.authorize(begin(browser), deny=True)))
    assert (page.status, page.text) == (403, "denied")
    assert list(store.keys()) == []


def test_without_session_middleware_a_runtime_error_names_it(login: TikTokLogin) -> None:
    with (
        TestClient(make_app(login, sessions=False)) as http,
        pytest.raises(RuntimeError, match="SessionMiddleware"),
    ):
        http.get("/login", follow_redirects=False)


def test_an_async_client_on_the_served_fake(fake: FakeTikTok) -> None:
    store = MemoryTokenStore()
    with fake.serve() as base_url:
        aclient = AsyncTikTokOAuth2Client(
            "test-key", SECRET, redirect_uri=REDIRECT_URI, **fake.endpoints(base_url)
        )
        login = TikTokLogin(aclient, store)
        with TestClient(make_app(login), follow_redirects=False) as http:
            page = log_in(_Browser(http), fake, "async-user")
        asyncio.run(aclient.aclose())
    assert (page.status, page.location) == (303, "/me")
    token = store.get("async-user")
    assert token is not None
    assert token.open_id == "async-user"
