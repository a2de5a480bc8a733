"""What every flavour's test does: browsers (one cookie jar each) logging in to one app on the fake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from tiktok_oauth import MemoryTokenStore
from tiktok_oauth.testing import FakeTikTok

AUTHORIZE_PATH = "/v2/auth/authorize/"


@dataclass(frozen=True)
class Page:
    status: int
    location: str | None
    text: str


class Browser(Protocol):
    """One browser (its own cookies) on the app under test, through the framework's test client."""

    def visit(self, path: str) -> Page: ...


def path_of(url: str) -> str:
    """The path and query of `url`: what the browser asks the app for after TikTok's redirect."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def begin(browser: Browser, next_: str | None = None) -> str:
    """Visit /login and return TikTok's URL from the app's 302."""
    page = browser.visit("/login" if next_ is None else f"/login?next={next_}")
    assert page.status == 302, page.text
    assert page.location is not None
    assert urlsplit(page.location).path == AUTHORIZE_PATH
    return page.location


def log_in(browser: Browser, fake: FakeTikTok, open_id: str) -> Page:
    """The whole login: /login, consent on TikTok's page as `open_id`, then the callback."""
    return browser.visit(path_of(fake.authorize(begin(browser), open_id=open_id)))


def three_users_log_in(browsers: list[Browser], fake: FakeTikTok, store: MemoryTokenStore) -> None:
    """Three browsers begin, then finish in reverse order; each ends up as its own user with its own token."""
    users = ["alice", "bob", "carol"]
    consents = [
        fake.authorize(begin(browser), open_id=user) for browser, user in zip(browsers, users, strict=True)
    ]
    for browser, callback in reversed(list(zip(browsers, consents, strict=True))):
        page = browser.visit(path_of(callback))
        assert page.status in {302, 303}, page.text
        assert page.location == "/me"
    for browser, user in zip(browsers, users, strict=True):
        assert browser.visit("/me").text == user
    tokens = {user: store.get(user) for user in users}
    assert all(token is not None and token.open_id == user for user, token in tokens.items())
    assert len({token.access_token for token in tokens.values() if token is not None}) == 3
    assert len(fake.token_requests) == 3
