"""The Django flavour through `django.test.Client`, with Django's real session middleware (signed cookies)."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.test import Client, override_settings
from django.urls import path

from tests.web._support import Page, begin, path_of, three_users_log_in
from tiktok_oauth import AuthorizationDeniedError, MemoryTokenStore, StateMismatchError, TikTokOAuth2Client
from tiktok_oauth.integrations.django import TikTokLogin
from tiktok_oauth.testing import FakeTikTok


def make_urls(login: TikTokLogin) -> types.ModuleType:
    """A URLconf module for `login`: /login, /callback and /me."""

    def start(request: HttpRequest) -> HttpResponse:
        return login.authorize_redirect(request, next=request.GET.get("next"))

    def callback(request: HttpRequest) -> HttpResponse:
        try:
            result = login.authorize_access_token(request)
        except AuthorizationDeniedError:
            return HttpResponse("denied", status=403)
        except StateMismatchError:
            return HttpResponse("state mismatch", status=400)
        request.session["user"] = result.key
        return HttpResponseRedirect(result.next or "/me")

    def me(request: HttpRequest) -> HttpResponse:
        return HttpResponse(request.session.get("user", ""))

    urls = types.ModuleType("django_test_urls")
    urls.urlpatterns = [path("login", start), path("callback", callback), path("me", me)]  # type: ignore[attr-defined]
    return urls


class _Browser:
    def __init__(self) -> None:
        self.client = Client()

    def visit(self, path: str) -> Page:
        response = self.client.get(path)
        return Page(response.status_code, response.headers.get("Location"), response.content.decode())


@pytest.fixture
def login(client: TikTokOAuth2Client, store: MemoryTokenStore) -> Iterator[TikTokLogin]:
    login = TikTokLogin(client, store)
    with override_settings(ROOT_URLCONF=make_urls(login)):
        yield login


@pytest.fixture
def browsers(login: TikTokLogin) -> list[_Browser]:
    del login  # its URLconf is installed
    return [_Browser() for _ in range(3)]


def test_three_users_log_in_on_one_app(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    three_users_log_in(list(browsers), fake, store)


def test_authorize_redirect_is_an_http_response_redirect(
    login: TikTokLogin, browsers: list[_Browser]
) -> None:
    response = browsers[0].client.get("/login")
    assert isinstance(response, HttpResponseRedirect)
    assert response.status_code == 302


def test_next_comes_back_after_the_login(browsers: list[_Browser], fake: FakeTikTok) -> None:
    browser = browsers[0]
    page = browser.visit(path_of(fake.authorize(begin(browser, "/videos"))))
    assert (page.status, page.location) == (302, "/videos")


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
    with override_settings(MIDDLEWARE=[]), pytest.raises(RuntimeError, match="SessionMiddleware"):
        Client().get("/login")
