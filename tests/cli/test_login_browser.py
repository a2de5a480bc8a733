"""`tiktok-oauth login` driven by a real headless Chromium: preconnects, favicon and keep-alive included."""

from __future__ import annotations

import threading
import time
import webbrowser
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._chromium import headless_chromium, press
from tests._redis import free_port
from tests.cli._support import CLI, Served
from tiktok_oauth.stores import FileTokenStore


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    with headless_chromium(tmp_path / "chromium-profile") as browser:
        yield browser


@dataclass
class Chromium:
    """`webbrowser.open` makes Chromium load `before` (if any) and then the URL; like the real one, it returns at once."""

    driver: Any
    before: list[str] = field(default_factory=list)
    loads: list[threading.Thread] = field(default_factory=list)
    visited: list[str] = field(default_factory=list)

    def open(self, url: str, *args: object, **kwargs: object) -> bool:
        load = threading.Thread(target=self._load, args=(url,), daemon=True)
        load.start()
        self.loads.append(load)
        return True

    def _load(self, url: str) -> None:
        for earlier in self.before:
            self.driver.get(earlier)
            self.visited.append(self.driver.page_source)
        self.driver.get(url)
        press(self.driver, "authorize")  # on the served fake's consent page; TikTok redirects to the catcher


@pytest.fixture
def chromium(driver: Any, monkeypatch: pytest.MonkeyPatch) -> Chromium:
    browser = Chromium(driver)
    monkeypatch.setattr(webbrowser, "open", browser.open)
    return browser


@pytest.mark.slow
@pytest.mark.parametrize("visit_first", [False, True], ids=["straight", "after-404-pages"])
def test_login_in_a_real_browser(
    cli: CLI, served: Served, store: FileTokenStore, chromium: Chromium, *, visit_first: bool
) -> None:
    port = free_port()
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    if visit_first:
        # Pages of the catcher itself first: Chromium asks for /favicon.ico and keeps connections alive.
        chromium.before = [f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/callback"]
    driver = chromium.driver
    page_loads = chromium.loads
    started = time.monotonic()

    running = cli.start(
        "login",
        *served.options,
        "--redirect-uri",
        redirect_uri,
        "--store",
        str(store.path),
        "--timeout",
        "20",
    )
    result = running.finish(timeout=30)
    for load in page_loads:
        load.join(20)

    assert result.code == 0, result.err
    assert len(page_loads) == 1
    assert not page_loads[0].is_alive()
    assert driver.current_url.startswith(redirect_uri + "?code=")
    assert "Authorization received" in driver.page_source
    assert "You can close this tab" in driver.page_source
    token = store.get("test-open-id")
    assert token is not None
    assert token.scopes == {"user.info.basic"}
    assert time.monotonic() - started < 30
    assert len(chromium.visited) == len(chromium.before)
    assert all("waiting for TikTok" in page for page in chromium.visited)
