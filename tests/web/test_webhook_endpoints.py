"""The ready-made webhook endpoints (`login.webhook_endpoint(handler)`) of every web flavour.

A grant revoked on the served fake reaches a FastAPI, a Starlette, a Flask and a Django app through the
framework's own test client; the first answer is lost on the way back, so the fake delivers twice, and the
user's token is marked `needs_login` exactly once. The last tests do the same over real HTTP on loopback: a
Flask app served by Werkzeug, a FastAPI app served by uvicorn.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import flask
import httpx
import pytest
import uvicorn
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import path
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.serving import make_server

from tests.conftest import SECRET
from tiktok_oauth import (
    MemoryTokenStore,
    ReauthorizationRequiredError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokToken,
    TokenEvent,
)
from tiktok_oauth.integrations import django as django_flavour
from tiktok_oauth.integrations import flask as flask_flavour
from tiktok_oauth.integrations import starlette as starlette_flavour
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.webhooks import WebhookEvent, WebhookHandler

WEBHOOK_PATH = "/tiktok/webhook"

Post = Callable[[bytes, dict[str, str]], int]


class CountingStore(MemoryTokenStore):
    """A memory store counting the writes that marked a token `needs_login`."""

    def __init__(self) -> None:
        super().__init__()
        self.markings = 0

    def set(self, key: str, token: TikTokToken) -> None:
        self.markings += token.needs_login
        super().set(key, token)


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


@pytest.fixture
def events() -> list[WebhookEvent]:
    return []


@pytest.fixture
def token_events() -> list[TokenEvent]:
    return []


@pytest.fixture
def handler(
    fake: FakeTikTok, store: CountingStore, events: list[WebhookEvent], token_events: list[TokenEvent]
) -> WebhookHandler:
    return WebhookHandler(
        fake.client_secret,
        store,
        client_key=fake.client_key,
        on_webhook=events.append,
        on_event=token_events.append,
    )


@contextmanager
def fastapi_app(client: TikTokOAuth2Client, handler: WebhookHandler) -> Iterator[Post]:
    login = starlette_flavour.TikTokLogin(client, handler.store)
    app = FastAPI()
    app.add_api_route(WEBHOOK_PATH, login.webhook_endpoint(handler), methods=["POST"])
    with TestClient(app) as test_client:
        yield lambda body, headers: test_client.post(WEBHOOK_PATH, content=body, headers=headers).status_code


@contextmanager
def starlette_app(client: TikTokOAuth2Client, handler: WebhookHandler) -> Iterator[Post]:
    login = starlette_flavour.TikTokLogin(client, handler.store)
    app = Starlette(routes=[Route(WEBHOOK_PATH, login.webhook_endpoint(handler), methods=["POST"])])
    with TestClient(app) as test_client:
        yield lambda body, headers: test_client.post(WEBHOOK_PATH, content=body, headers=headers).status_code


def make_flask_app(client: TikTokOAuth2Client, handler: WebhookHandler) -> flask.Flask:
    login = flask_flavour.TikTokLogin(client, handler.store)
    app = flask.Flask(__name__)
    app.add_url_rule(WEBHOOK_PATH, view_func=login.webhook_endpoint(handler), methods=["POST"])
    return app


@contextmanager
def flask_app(client: TikTokOAuth2Client, handler: WebhookHandler) -> Iterator[Post]:
    test_client = make_flask_app(client, handler).test_client()
    yield lambda body, headers: test_client.post(WEBHOOK_PATH, data=body, headers=headers).status_code


@contextmanager
def django_app(client: TikTokOAuth2Client, handler: WebhookHandler) -> Iterator[Post]:
    login = django_flavour.TikTokLogin(client, handler.store)
    urls = types.ModuleType("django_webhook_urls")
    urls.urlpatterns = [path(WEBHOOK_PATH.lstrip("/"), login.webhook_endpoint(handler))]  # type: ignore[attr-defined]
    middleware = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",  # the endpoint must be exempt from it
    ]
    with override_settings(ROOT_URLCONF=urls, MIDDLEWARE=middleware):
        test_client = DjangoClient(enforce_csrf_checks=True)

        def post(body: bytes, headers: dict[str, str]) -> int:
            extra = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            response = test_client.post(
                WEBHOOK_PATH, data=body, content_type="application/json", headers=extra
            )
            return int(response.status_code)

        yield post


APPS = {"fastapi": fastapi_app, "starlette": starlette_app, "flask": flask_app, "django": django_app}


@pytest.fixture(params=list(APPS))
def post(
    request: pytest.FixtureRequest, client: TikTokOAuth2Client, handler: WebhookHandler
) -> Iterator[Post]:
    with APPS[request.param](client, handler) as post:
        yield post


def first_answer_lost(post: Post) -> Post:
    """A route from the fake to the app whose first answer never reaches TikTok (it sees a 504)."""
    attempts: list[int] = []

    def deliver(body: bytes, headers: dict[str, str]) -> int:
        status = post(body, headers)
        attempts.append(status)
        return 504 if len(attempts) == 1 else status

    return deliver


def test_a_revoked_grant_on_the_served_fake_marks_the_token_once_though_delivered_twice(
    fake: FakeTikTok,
    store: CountingStore,
    events: list[WebhookEvent],
    token_events: list[TokenEvent],
    post: Post,
) -> None:
    with fake.serve() as base_url:
        store.set("alice", TikTokToken(fake.issue_token(open_id="alice")))
        store.set("bob", TikTokToken(fake.issue_token(open_id="bob")))
        with TikTokOAuth2Client(fake.client_key, SECRET, **fake.endpoints(base_url)) as oauth:
            auth = TikTokAuth(oauth, store, "alice")
            assert httpx.get(fake.user_info_url(base_url), auth=auth).status_code == 200
            fake.webhook_url = first_answer_lost(post)
            fake.webhook_backoff = 0.01
            fake.revoke_grants("alice", reason=1)
            with pytest.raises(ReauthorizationRequiredError):
                httpx.get(fake.user_info_url(base_url), auth=auth)
    assert [status for _, _, status in fake.webhook_deliveries] == [504, 200]
    assert fake.webhook_deliveries[0][0] == fake.webhook_deliveries[1][0]
    assert store.markings == 1
    assert [(event.user_openid, event.reason) for event in events] == [("alice", 1)]
    assert [(event.kind, event.key) for event in token_events] == [("needs_login", "alice")]
    assert store.get("alice").needs_login  # type: ignore[union-attr]
    assert not store.get("bob").needs_login  # type: ignore[union-attr]


def test_a_bad_signature_is_401_with_an_empty_body(
    fake: FakeTikTok, store: CountingStore, events: list[WebhookEvent], post: Post
) -> None:
    store.set("alice", TikTokToken(fake.issue_token(open_id="alice")))
    fake.webhook_url = post
    fake.webhook_retries = 0
    fake.client_secret = "not-the-apps-secret"  # the delivery is signed with another secret
    fake.revoke_grants("alice")
    assert [status for _, _, status in fake.webhook_deliveries] == [401]
    assert store.markings == 0
    assert events == []


def test_the_flask_endpoint_answers_an_empty_body(
    client: TikTokOAuth2Client, handler: WebhookHandler, fake: FakeTikTok
) -> None:
    test_client = make_flask_app(client, handler).test_client()
    response = test_client.post(WEBHOOK_PATH, data=b"{}", headers={"TikTok-Signature": "t=1,s=00"})
    assert (response.status_code, response.get_data()) == (401, b"")


def test_the_starlette_endpoint_answers_an_empty_body(
    client: TikTokOAuth2Client, handler: WebhookHandler
) -> None:
    login = starlette_flavour.TikTokLogin(client, handler.store)
    app = Starlette(routes=[Route(WEBHOOK_PATH, login.webhook_endpoint(handler), methods=["POST"])])
    with TestClient(app) as test_client:
        response = test_client.post(WEBHOOK_PATH, content=b"{}")
    assert (response.status_code, response.content) == (401, b"")


def test_the_django_endpoint_takes_only_post(client: TikTokOAuth2Client, handler: WebhookHandler) -> None:
    with django_app(client, handler):
        test_client = DjangoClient()
        assert test_client.get(WEBHOOK_PATH).status_code == 405
        response = test_client.post(WEBHOOK_PATH, data=b"{}", content_type="application/json")
        assert (response.status_code, response.content) == (401, b"")


# -- over real HTTP -----------------------------------------------------------------------------------


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a loopback port in a thread; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_the_fake_reaches_a_served_flask_app_over_loopback(
    fake: FakeTikTok,
    client: TikTokOAuth2Client,
    handler: WebhookHandler,
    store: CountingStore,
    events: list[WebhookEvent],
) -> None:
    app = make_flask_app(client, handler)
    answered: list[int] = []

    @app.after_request
    def lose_the_first_answer(response: flask.Response) -> flask.Response:
        answered.append(response.status_code)
        return flask.Response(status=502) if len(answered) == 1 else response

    store.set("alice", TikTokToken(fake.issue_token(open_id="alice")))
    with served(app) as base_url:
        fake.webhook_url = base_url + WEBHOOK_PATH
        fake.webhook_backoff = 0.01
        fake.revoke_grants("alice", reason=2)
        assert fake.wait_webhooks(timeout=10)
    assert answered == [200, 200]
    assert [status for _, _, status in fake.webhook_deliveries] == [502, 200]
    assert store.markings == 1
    assert [(event.user_openid, event.reason) for event in events] == [("alice", 2)]


@contextmanager
def served_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port in a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_fake_reaches_a_fastapi_app_served_by_uvicorn(
    fake: FakeTikTok,
    client: TikTokOAuth2Client,
    handler: WebhookHandler,
    store: CountingStore,
    token_events: list[TokenEvent],
) -> None:
    login = starlette_flavour.TikTokLogin(client, handler.store)
    app = FastAPI()
    app.add_api_route(WEBHOOK_PATH, login.webhook_endpoint(handler), methods=["POST"])
    store.set("alice", TikTokToken(fake.issue_token(open_id="alice")))
    with served_asgi(app) as base_url:
        fake.webhook_url = base_url + WEBHOOK_PATH
        fake.revoke_grants("alice", reason=5)
        assert fake.wait_webhooks(timeout=10)
    assert [status for _, _, status in fake.webhook_deliveries] == [200]
    assert [(event.kind, event.key) for event in token_events] == [("needs_login", "alice")]
    assert store.get("alice").needs_login  # type: ignore[union-attr]
