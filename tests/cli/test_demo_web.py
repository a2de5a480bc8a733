"""`tiktok-oauth demo --web`: a real process serving the web demo, logged in to over HTTP and in Chromium."""

from __future__ import annotations

import html.parser
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._chromium import authorize_as, headless_chromium, press
from tests.cli._support import TOKEN_PATTERN

OPEN_LINE = re.compile(r"Open (http://127\.0\.0\.1:\d+)/ in a browser")


class _Demo:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tiktok_oauth", "demo", "--web"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.printed: list[str] = []
        for line in self.process.stdout:
            self.printed.append(line)
            found = OPEN_LINE.search(line)
            if found:
                self.url = found.group(1)
                return
        raise AssertionError(f"the demo printed no address: {self.printed} {self.process.stderr}")

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C, as a user would; the exit status and everything printed."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=60)  # generous: a busy machine is slow
        return self.process.returncode, "".join(self.printed) + out, err


@pytest.fixture
def demo() -> Iterator[_Demo]:
    running = _Demo()
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
        running.process.communicate(timeout=10)  # and close the pipes


class _ConsentForm(html.parser.HTMLParser):
    """The consent page's form action."""

    action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.action = dict(attrs)["action"] or ""


def test_log_in_see_the_profile_log_out_and_stop(demo: _Demo) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as browser:
        assert "Log in with TikTok" in browser.get("/").text
        tiktok = browser.get("/login").headers["location"]  # the app sends the browser to the fake
        page = browser.get(tiktok)
        assert 'name="open_id"' in page.text
        form = _ConsentForm()
        form.feed(page.text)
        pressed = browser.post(
            str(httpx.URL(tiktok).join(form.action)), data={"open_id": "alice", "decision": "authorize"}
        )
        callback = pressed.headers["location"]
        assert callback.startswith(f"{demo.url}/callback?code=")
        landed = browser.get(callback)
        assert landed.status_code == 303
        assert landed.headers["location"] == "/me"
        assert "<h1>Fake user alice</h1>" in browser.get("/me").text
        assert browser.get(callback).status_code == 400  # a callback works once
        assert browser.post("/logout").headers["location"] == "/"
        assert browser.get("/me").headers["location"] == "/login"

    code, out, err = demo.stop()
    assert code == 0, err
    assert "Stopped." in out
    assert not TOKEN_PATTERN.search(out + err)


def test_deny_in_the_fakes_page(demo: _Demo) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as browser:
        tiktok = browser.get("/login").headers["location"]
        denied = browser.post(tiktok, data={"open_id": "alice", "decision": "deny"})
        assert "You did not log in." in browser.get(denied.headers["location"]).text
        assert browser.get("/me").headers["location"] == "/login"


@pytest.mark.slow
def test_in_a_real_browser(demo: _Demo, tmp_path: Path) -> None:
    driver: Any
    with headless_chromium(tmp_path / "chromium-profile") as driver:
        driver.get(f"{demo.url}/")
        driver.find_element("link text", "Log in with TikTok").click()
        authorize_as(driver, "bob")
        assert driver.current_url == f"{demo.url}/me"
        assert driver.find_element("tag name", "h1").text == "Fake user bob"
        press(driver, "logout")
        assert driver.current_url == f"{demo.url}/"
