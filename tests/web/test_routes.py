"""The ready-made routes (`router()`, `blueprint()`, `urls()`) and `current_auth`, one table over every framework.

Each case runs on a Starlette app (an async client), a FastAPI app (a sync client: its exchange and logout run
in a thread), a Flask app and a Django app (sync clients), through the framework's own test client, with the
routes mounted under `/auth/tiktok` and a `/me` page that calls TikTok's user info API as `current_auth`.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import flask
import httpx
import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import include, path
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from tests.conftest import SECRET
from tests.web._support import AUTHORIZE_PATH, Page, path_of
from tiktok_oauth import AsyncTikTokOAuth2Client, MemoryTokenStore, TikTokOAuth2Client, TikTokOAuthError
from tiktok_oauth.integrations import django as django_flavour
from tiktok_oauth.integrations import flask as flask_flavour
from tiktok_oauth.integrations import starlette as starlette_flavour
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.web import USER_SESSION_KEY, LoginResult, error_page, route_redirect_uri, sibling_url

PREFIX = "/auth/tiktok"
REVOKE_PATH = "/v2/oauth/revoke/"
USER_INFO_PATH = "/v2/user/info/"


class Browser(Protocol):
    def visit(self, path: str) -> Page: ...
    def post(self, path: str) -> Page: ...


@dataclass(frozen=True)
class Site:
    """One app with the ready-made routes: its paths, and a new browser (own cookies) per call."""

    login_path: str
    logout_path: str
    browser: Callable[[], Browser]


@dataclass(frozen=True)
class Options:
    """What a test asks of the app: hooks answering `hooked: ...` pages, and the client's redirect URI."""

    hooks: bool = False
    redirect_uri: str | None = None


Maker = Callable[[FakeTikTok, MemoryTokenStore, Options], Any]  # a context manager yielding a Site


def _hook_login_text(result: LoginResult) -> str:
    return f"hooked login: {result.key} next={result.next}"


def _hook_error_text(exc: TikTokOAuthError) -> str:
    return f"hooked error: {type(exc).__name__} <b>"


def _client_kw(options: Options) -> dict[str, Any]:
    return {} if options.redirect_uri is None else {"redirect_uri": options.redirect_uri}


def _me_text(key: str | None, answer: httpx.Response | None) -> str:
    if key is None or answer is None:
        return "nobody"
    return f"{key}: {answer.json()['data']['user']['display_name']}"


class _HttpxBrowser:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def visit(self, path: str) -> Page:
        return _page(self.client.get(path))

    def post(self, path: str) -> Page:
        return _page(self.client.post(path))


def _page(response: Any) -> Page:  # an httpx (or httpx2) response
    return Page(response.status_code, response.headers.get("location"), response.text)


@contextmanager
def starlette_site(fake: FakeTikTok, store: MemoryTokenStore, options: Options) -> Iterator[Site]:
    http = httpx.AsyncClient(transport=fake.async_transport())
    client = AsyncTikTokOAuth2Client("test-key", SECRET, http_client=http, **_client_kw(options))
    login = starlette_flavour.TikTokLogin(client, store)

    async def on_login(request: Request, result: LoginResult) -> Response:
        return PlainTextResponse(_hook_login_text(result), status_code=200)

    async def on_error(request: Request, exc: TikTokOAuthError) -> Response:
        return PlainTextResponse(_hook_error_text(exc), status_code=418)

    async def me(request: Request) -> Response:
        auth = login.current_auth(request)
        answer = None
        if auth is not None:
            async with httpx.AsyncClient(transport=fake.async_transport()) as api:
                answer = await api.get(fake.user_info_url(), auth=auth)
        return PlainTextResponse(_me_text(None if auth is None else auth.key, answer))

    router = login.router(on_login=on_login, on_error=on_error) if options.hooks else login.router()
    app = Starlette(
        routes=[Route("/me", me), Mount(PREFIX, router)],
        middleware=[Middleware(SessionMiddleware, secret_key="test-only")],
    )
    yield Site(f"{PREFIX}/login", f"{PREFIX}/logout", lambda: _HttpxBrowser(_test_client(app)))


@contextmanager
def fastapi_site(fake: FakeTikTok, store: MemoryTokenStore, options: Options) -> Iterator[Site]:
    with httpx.Client(transport=fake.transport()) as http:
        client = TikTokOAuth2Client("test-key", SECRET, http_client=http, **_client_kw(options))
        login = starlette_flavour.TikTokLogin(client, store)
        app = FastAPI()
        app.add_middleware(SessionMiddleware, secret_key="test-only")

        def on_login(request: Request, result: LoginResult) -> Response:  # a sync hook is fine too
            return PlainTextResponse(_hook_login_text(result))

        def on_error(request: Request, exc: TikTokOAuthError) -> Response:
            return PlainTextResponse(_hook_error_text(exc), status_code=418)

        @app.get("/me")
        def me(request: Request) -> Response:
            auth = login.current_auth(request)
            answer = None if auth is None else http.get(fake.user_info_url(), auth=auth)
            return PlainTextResponse(_me_text(None if auth is None else auth.key, answer))

        app.mount(
            PREFIX, login.router(on_login=on_login, on_error=on_error) if options.hooks else login.router()
        )
        yield Site(f"{PREFIX}/login", f"{PREFIX}/logout", lambda: _HttpxBrowser(_test_client(app)))


def _test_client(app: Any) -> TestClient:
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


class _FlaskBrowser:
    def __init__(self, client: flask.testing.FlaskClient) -> None:
        self.client = client

    def visit(self, path: str) -> Page:
        return self._page(self.client.get(path, base_url="https://localhost"))

    def post(self, path: str) -> Page:
        return self._page(self.client.post(path, base_url="https://localhost"))

    @staticmethod
    def _page(response: Any) -> Page:
        return Page(response.status_code, response.headers.get("Location"), response.get_data(as_text=True))


@contextmanager
def flask_site(fake: FakeTikTok, store: MemoryTokenStore, options: Options) -> Iterator[Site]:
    with httpx.Client(transport=fake.transport()) as http:
        client = TikTokOAuth2Client("test-key", SECRET, http_client=http, **_client_kw(options))
        login = flask_flavour.TikTokLogin(client, store)
        app = flask.Flask(__name__)
        app.secret_key = "test-only"
        app.testing = True

        def on_login(request: flask.Request, result: LoginResult) -> str:
            return _hook_login_text(result)

        def on_error(request: flask.Request, exc: TikTokOAuthError) -> tuple[str, int]:
            return _hook_error_text(exc), 418

        @app.get("/me")
        def me() -> str:
            auth = login.current_auth()
            answer = None if auth is None else http.get(fake.user_info_url(), auth=auth)
            return _me_text(None if auth is None else auth.key, answer)

        blueprint = (
            login.blueprint(PREFIX, on_login=on_login, on_error=on_error)
            if options.hooks
            else login.blueprint(PREFIX)
        )
        app.register_blueprint(blueprint)
        yield Site(f"{PREFIX}/login", f"{PREFIX}/logout", lambda: _FlaskBrowser(app.test_client()))


class _DjangoBrowser:
    def __init__(self) -> None:
        self.client = DjangoClient()

    def visit(self, path: str) -> Page:
        return self._page(self.client.get(path, secure=True))

    def post(self, path: str) -> Page:
        return self._page(self.client.post(path, secure=True))

    @staticmethod
    def _page(response: Any) -> Page:
        return Page(response.status_code, response.headers.get("Location"), response.content.decode())


@contextmanager
def django_site(fake: FakeTikTok, store: MemoryTokenStore, options: Options) -> Iterator[Site]:
    with httpx.Client(transport=fake.transport()) as http:
        client = TikTokOAuth2Client("test-key", SECRET, http_client=http, **_client_kw(options))
        login = django_flavour.TikTokLogin(client, store)

        def on_login(request: HttpRequest, result: LoginResult) -> HttpResponse:
            return HttpResponse(_hook_login_text(result), content_type="text/plain")

        def on_error(request: HttpRequest, exc: TikTokOAuthError) -> HttpResponse:
            return HttpResponse(_hook_error_text(exc), status=418, content_type="text/plain")

        def me(request: HttpRequest) -> HttpResponse:
            auth = login.current_auth(request)
            answer = None if auth is None else http.get(fake.user_info_url(), auth=auth)
            return HttpResponse(_me_text(None if auth is None else auth.key, answer))

        views = login.urls(on_login=on_login, on_error=on_error) if options.hooks else login.urls()
        urls = types.ModuleType("django_routes_urls")
        urls.urlpatterns = [path("me", me), path("auth/tiktok/", include(views))]  # type: ignore[attr-defined]
        with override_settings(ROOT_URLCONF=urls):
            yield Site(f"{PREFIX}/login/", f"{PREFIX}/logout/", _DjangoBrowser)


MAKERS: dict[str, Maker] = {
    "starlette": starlette_site,
    "fastapi": fastapi_site,
    "flask": flask_site,
    "django": django_site,
}


@pytest.fixture(params=list(MAKERS))
def make_site(
    request: pytest.FixtureRequest, fake: FakeTikTok, store: MemoryTokenStore
) -> Iterator[Callable[..., Site]]:
    """`make_site(hooks=..., redirect_uri=...)`: the app of this framework, on the fake and the store."""
    with ExitStack() as stack:
        yield lambda **options: stack.enter_context(MAKERS[request.param](fake, store, Options(**options)))


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


def begin(site: Site, browser: Browser, next_: str | None = None) -> str:
    """Visit the login route and return TikTok's URL from its 302."""
    page = browser.visit(
        site.login_path if next_ is None else f"{site.login_path}?{urlencode({'next': next_})}"
    )
    assert page.status == 302, page.text
    assert page.location is not None
    assert urlsplit(page.location).path == AUTHORIZE_PATH
    return page.location


def log_in(site: Site, browser: Browser, fake: FakeTikTok, open_id: str, next_: str | None = None) -> Page:
    return browser.visit(path_of(fake.authorize(begin(site, browser, next_), open_id=open_id)))


def revokes(fake: FakeTikTok) -> int:
    return sum(urlsplit(request.url).path == REVOKE_PATH for request in fake.requests)


# -- logging in --------------------------------------------------------------------------------------------


def test_a_login_redirects_home_and_current_auth_uses_the_stored_token(
    site: Site, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    browser = site.browser()
    assert browser.visit("/me").text == "nobody"
    page = log_in(site, browser, fake, "alice")
    assert (page.status, page.location) == (302, "/")
    assert browser.visit("/me").text == "alice: Fake user alice"
    token = store.get("alice")
    assert token is not None
    user_info = [r for r in fake.requests if urlsplit(r.url).path == USER_INFO_PATH]
    assert user_info[-1].headers["authorization"] == f"Bearer {token.access_token}"


def test_the_redirect_uri_is_the_callback_route_beside_the_login_route(site: Site) -> None:
    tiktok = begin(site, site.browser())
    (redirect_uri,) = parse_qs(urlsplit(tiktok).query)["redirect_uri"]
    assert urlsplit(redirect_uri).path == site.login_path.replace("login", "callback")


def test_a_configured_redirect_uri_is_sent_as_it_is(make_site: Callable[..., Site]) -> None:
    site = make_site(redirect_uri="https://app.example/tiktok/callback")
    tiktok = begin(site, site.browser())
    assert parse_qs(urlsplit(tiktok).query)["redirect_uri"] == ["https://app.example/tiktok/callback"]


def test_next_is_kept_through_the_login(site: Site, fake: FakeTikTok) -> None:
    page = log_in(site, site.browser(), fake, "alice", next_="/videos?page=2")
    assert (page.status, page.location) == (302, "/videos?page=2")


def test_a_next_off_this_site_is_a_400_page(site: Site, fake: FakeTikTok) -> None:
    page = site.browser().visit(f"{site.login_path}?{urlencode({'next': '//evil.example/<x>'})}")
    assert page.status == 400
    assert "&lt;x&gt;" in page.text
    assert "<x>" not in page.text


def test_three_users_log_in_in_turn_each_with_their_own_token(
    site: Site, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    users = ["alice", "bob", "carol"]
    browsers = [site.browser() for _ in users]
    for browser, user in zip(browsers, users, strict=True):
        assert log_in(site, browser, fake, user).status == 302
    for browser, user in zip(browsers, users, strict=True):
        assert browser.visit("/me").text == f"{user}: Fake user {user}"
    tokens = [store.get(user) for user in users]
    assert len({token.access_token for token in tokens if token is not None}) == 3


def test_on_login_s_response_is_sent(make_site: Callable[..., Site], fake: FakeTikTok) -> None:
    site = make_site(hooks=True)
    browser = site.browser()
    page = log_in(site, browser, fake, "alice", next_="/videos")
    assert (page.status, page.text) == (200, "hooked login: alice next=/videos")
    assert browser.visit("/me").text == "alice: Fake user alice"  # the user is kept before the hook


# -- logging out ---------------------------------------------------------------------------------------------


def test_logout_revokes_the_token_and_clears_the_session(
    site: Site, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    browser = site.browser()
    log_in(site, browser, fake, "alice")
    page = browser.post(site.logout_path)
    assert (page.status, page.location) == (302, "/")
    assert revokes(fake) == 1
    assert store.get("alice") is None
    assert browser.visit("/me").text == "nobody"


def test_logout_without_a_user_only_redirects(site: Site, fake: FakeTikTok) -> None:
    page = site.browser().post(site.logout_path)
    assert (page.status, page.location) == (302, "/")
    assert revokes(fake) == 0


def test_logout_is_not_a_get(site: Site, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    browser = site.browser()
    log_in(site, browser, fake, "alice")
    assert browser.visit(site.logout_path).status == 405
    assert store.get("alice") is not None
    assert browser.visit("/me").text == "alice: Fake user alice"


def test_a_failed_revoke_keeps_the_user_logged_in(
    site: Site, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    browser = site.browser()
    log_in(site, browser, fake, "alice")
    fake.fail_next(503, times=10, endpoint="revoke")
    assert browser.post(site.logout_path).status == 502
    assert store.get("alice") is not None
    assert browser.visit("/me").text == "alice: Fake user alice"


# -- failed callbacks ----------------------------------------------------------------------------------------


def test_a_callback_in_another_browser_is_a_400_and_stores_nothing(
    site: Site, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    callback = fake.authorize(begin(site, site.browser()), open_id="victim")
    other = site.browser()
    page = other.visit(path_of(callback))
    assert page.status == 400
    assert "state" in page.text
    assert fake.token_requests == []
    assert list(store.keys()) == []
    assert other.visit("/me").text == "nobody"


def test_a_denial_is_a_403(site: Site, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    browser = site.browser()
    page = browser.visit(path_of(fake.authorize(begin(site, browser), deny=True)))
    assert page.status == 403
    assert "access_denied" in page.text
    assert list(store.keys()) == []


def test_a_tiktok_5xx_at_the_exchange_is_a_502(site: Site, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    browser = site.browser()
    callback = fake.authorize(begin(site, browser), open_id="alice")
    fake.fail_next(503, times=10)
    page = browser.visit(path_of(callback))
    assert page.status == 502
    assert list(store.keys()) == []
    assert browser.visit("/me").text == "nobody"


def test_a_callback_with_neither_code_nor_error_is_a_400(site: Site) -> None:
    browser = site.browser()
    state = parse_qs(urlsplit(begin(site, browser)).query)["state"][0]
    callback = site.login_path.replace("login", "callback")
    assert browser.visit(f"{callback}?{urlencode({'state': state})}").status == 400


def test_the_error_page_escapes_the_callback_s_description(site: Site) -> None:
    browser = site.browser()
    state = parse_qs(urlsplit(begin(site, browser)).query)["state"][0]
    callback = site.login_path.replace("login", "callback")
    query = urlencode({"state": state, "error": "access_denied", "error_description": "<script>x()</script>"})
    page = browser.visit(f"{callback}?{query}")
    assert page.status == 403
    assert "<script>" not in page.text
    assert "&lt;script&gt;x()&lt;/script&gt;" in page.text


def test_on_error_s_response_is_sent(make_site: Callable[..., Site], fake: FakeTikTok) -> None:
    site = make_site(hooks=True)
    browser = site.browser()
    page = browser.visit(path_of(fake.authorize(begin(site, browser), deny=True)))
    assert (page.status, page.text) == (418, "hooked error: AuthorizationDeniedError <b>")
    assert browser.visit("/me").text == "nobody"


# -- the shared decisions in tiktok_oauth.web (plain values) --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "sibling"),
    [
        ("https://h/auth/tiktok/login?next=/x", "https://h/auth/tiktok/callback"),
        ("https://h/auth/tiktok/login/?next=/x", "https://h/auth/tiktok/callback/"),
        ("http://127.0.0.1:8000/login", "http://127.0.0.1:8000/callback"),
    ],
)
def test_sibling_url(url: str, sibling: str) -> None:
    assert sibling_url(url, "callback") == sibling


def test_route_redirect_uri_prefers_a_configured_one() -> None:
    configured = TikTokOAuth2Client("k", "s", redirect_uri="https://app.example/cb")
    default = TikTokOAuth2Client("k", "s")
    assert route_redirect_uri(configured, "https://h/a/login") == "https://app.example/cb"
    assert route_redirect_uri(default, "https://h/a/login") == "https://h/a/callback"


def test_the_error_page_is_short() -> None:
    status, page = error_page(TikTokOAuthError("x" * 5000, error="invalid_grant"))
    assert status == 400
    assert len(page) < 1000


def test_the_session_key_is_the_documented_one() -> None:
    assert USER_SESSION_KEY == "tiktok_oauth_user"
