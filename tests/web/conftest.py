"""Fixtures for the web login tests: a client on the fake, a store; Django configured once."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests._django import configure_django
from tests.conftest import SECRET
from tiktok_oauth import MemoryTokenStore, TikTokOAuth2Client
from tiktok_oauth.testing import FakeTikTok

REDIRECT_URI = "https://app.example/callback"

configure_django()


@pytest.fixture
def http(fake: FakeTikTok) -> Iterator[httpx.Client]:
    with httpx.Client(transport=fake.transport()) as client:
        yield client


@pytest.fixture
def client(http: httpx.Client) -> Iterator[TikTokOAuth2Client]:
    with TikTokOAuth2Client("test-key", SECRET, redirect_uri=REDIRECT_URI, http_client=http) as oauth:
        yield oauth


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()
