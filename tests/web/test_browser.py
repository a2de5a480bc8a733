"""End to end in a real headless Chromium: the docs' FastAPI app under uvicorn, the served fake's consent page.

The app is `create_app` from docs/web.md, run as written. The browser only ever talks real HTTP: to the app on
`localhost` and to FakeTikTok's consent page on `127.0.0.1` (another site, as TikTok is). The app exchanges the
code over real HTTP too; its data-API calls go through the fake's transport (the app addresses TikTok's real
host, which the test cannot serve).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._chromium import authorize_as, headless_chromium, press
from tests._redis import free_port
from tests.docs_support import code_blocks, fake_world
from tiktok_oauth import AsyncTikTokOAuth2Client, MemoryTokenStore
from tiktok_oauth.testing import FakeTikTok

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "web.md"
pytestmark = pytest.mark.slow


def _docs_create_app(directory: Path) -> Any:
    """Run the docs' FastAPI block as a user's `app.py` would be (its module-level app included).

    It runs in the docs' own environment (credentials, session key, working directory), as test_docs runs it.
    """
    [block] = [block for block in code_blocks(DOCS) if "def create_app(" in block.source]
    namespace: dict[str, Any] = {"__name__": "app"}
    with fake_world(FakeTikTok(), directory, patch_http=False):
        exec(compile(block.source, f"{DOCS.name}:{block.line}", "exec"), namespace)  # noqa: S102
    return namespace["create_app"]


@dataclass
class App:
    url: str
    fake: FakeTikTok
    store: MemoryTokenStore


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    """The docs' app served by uvicorn on `localhost`, its client on the served fake."""
    create_app = _docs_create_app(tmp_path)
    fake = FakeTikTok()
    store = MemoryTokenStore()
    port = free_port()
    with fake.serve() as base_url:
        client = AsyncTikTokOAuth2Client(
            "test-key",
            "test-secret",
            redirect_uri=f"http://localhost:{port}/callback",
            **fake.endpoints(base_url),
        )
        api = httpx.AsyncClient(transport=fake.async_transport())
        asgi = create_app(client, store, secret_key="browser-test", api=api)
        server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        try:
            yield App(f"http://localhost:{port}", fake, store)
        finally:
            server.should_exit = True
            thread.join(20)
    assert not thread.is_alive()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def _on_consent_page(browser: Any, app: App) -> None:
    """Open the app's /login: it redirects the browser to TikTok's (the fake's) consent page."""
    browser.get(f"{app.url}/login")
    assert "/v2/auth/authorize/" in browser.current_url
    assert browser.find_element("id", "client-key").text == "test-key"


def test_authorize_lands_on_the_app_showing_the_users_display_name(browser: Any, app: App) -> None:
    _on_consent_page(browser, app)
    authorize_as(browser, "alice")

    assert browser.current_url == f"{app.url}/me"
    assert browser.find_element("tag name", "h1").text == "Fake user alice"
    token = app.store.get("alice")
    assert token is not None
    assert token.open_id == "alice"
    assert [form["grant_type"] for form in app.fake.token_requests] == ["authorization_code"]
    # The session cookie holds the pending login and the user's key, never a token or the secret.
    cookies = " ".join(cookie["value"] for cookie in browser.get_cookies())
    assert token.access_token not in cookies
    assert token.refresh_token not in cookies


def test_deny_shows_the_apps_denial_page_and_stores_nothing(browser: Any, app: App) -> None:
    _on_consent_page(browser, app)
    press(browser, "deny")

    assert browser.current_url.startswith(f"{app.url}/callback?")
    assert "You did not log in." in browser.find_element("tag name", "body").text
    assert list(app.store.keys()) == []
    assert app.fake.token_requests == []


def test_a_session_cookie_lost_before_the_callback_is_a_state_mismatch(browser: Any, app: App) -> None:
    _on_consent_page(browser, app)
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})  # the app's session, pending login and all
    press(browser, "authorize")

    assert browser.current_url.startswith(f"{app.url}/callback?code=")
    assert "This login link is no longer valid." in browser.find_element("tag name", "body").text
    assert list(app.store.keys()) == []
    assert app.fake.token_requests == []  # the check failed before anything reached TikTok


def test_the_docs_app_closes_what_it_opened(tmp_path: Path) -> None:
    """uvicorn's lifespan closes the app's HTTP clients: no connection pool is left open at shutdown."""
    create_app = _docs_create_app(tmp_path)
    fake = FakeTikTok()
    client = AsyncTikTokOAuth2Client("test-key", "test-secret", http_client=httpx.AsyncClient())
    api = httpx.AsyncClient(transport=fake.async_transport())
    asgi = create_app(client, MemoryTokenStore(), secret_key="browser-test", api=api)

    async def lifespan() -> None:
        async with asgi.router.lifespan_context(asgi):
            assert not api.is_closed

    asyncio.run(lifespan())
    assert api.is_closed
