"""The Flask flavour through Flask's own test client."""

from __future__ import annotations

import flask
import pytest
from flask.testing import FlaskClient
from werkzeug.wrappers import Response

from tests.web._support import Page, begin, path_of, three_users_log_in
from tiktok_oauth import AuthorizationDeniedError, MemoryTokenStore, StateMismatchError, TikTokOAuth2Client
from tiktok_oauth.integrations.flask import TikTokLogin
from tiktok_oauth.testing import FakeTikTok

SESSION_KEY = "flask-test-session-key"


def make_app(login: TikTokLogin, *, secret_key: str | None = SESSION_KEY) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = secret_key
    app.testing = True  # errors reach the test instead of a 500 page

    @app.get("/login")
    def start() -> Response:
        return login.authorize_redirect(next=flask.request.args.get("next"))

    @app.get("/callback")
    def callback() -> Response | tuple[str, int]:
        try:
            result = login.authorize_access_token()
        except AuthorizationDeniedError:
            return "denied", 403
        except StateMismatchError:
            return "state mismatch", 400
        flask.session["user"] = result.key
        return flask.redirect(result.next or "/me", code=303)

    @app.get("/me")
    def me() -> str:
        return str(flask.session.get("user", ""))

    return app


class _Browser:
    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def visit(self, path: str) -> Page:
        response = self.client.get(path)
        return Page(response.status_code, response.headers.get("Location"), response.get_data(as_text=True))


@pytest.fixture
def login(client: TikTokOAuth2Client, store: MemoryTokenStore) -> TikTokLogin:
    return TikTokLogin(client, store)


@pytest.fixture
def browsers(login: TikTokLogin) -> list[_Browser]:
    app = make_app(login)
    return [_Browser(app.test_client()) for _ in range(3)]


def test_three_users_log_in_on_one_app(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    three_users_log_in(list(browsers), fake, store)


def test_next_comes_back_after_the_login(browsers: list[_Browser], fake: FakeTikTok) -> None:
    browser = browsers[0]
    page = browser.visit(path_of(fake.authorize(begin(browser, "/videos"))))
    assert (page.status, page.location) == (303, "/videos")


def test_a_callback_in_another_browser_is_a_state_mismatch(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    callback = fake.authorize(begin(browsers[0]), open_id="victim")
    page = browsers[1].visit(path_of(callback))
    assert (page.status, page.text) == (400, "state mismatch")
    assert fake.token_requests == []
    assert list(store.keys()) == []


def test_a_replayed_callback_is_a_state_mismatch(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    browser = browsers[0]
    callback = path_of(fake.authorize(begin(browser), open_id="u"))
    assert browser.visit(callback).status == 303
    assert browser.visit(callback).text == "state mismatch"
    assert len(fake.token_requests) == 1


def test_a_denial_reaches_the_app(
    browsers: list[_Browser], fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    browser = browsers[0]
    page = browser.visit(path_of(fake.authorize(begin(browser), deny=True)))
    assert (page.status, page.text) == (403, "denied")
    assert list(store.keys()) == []


def test_without_a_secret_key_flask_says_the_session_is_unavailable(login: TikTokLogin) -> None:
    app = make_app(login, secret_key=None)
    with pytest.raises(RuntimeError, match="secret key"):
        app.test_client().get("/login")
