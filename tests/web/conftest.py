"""Fixtures for the web login tests: a client on the fake, a store, and Django configured once."""

from __future__ import annotations

import types
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SECRET
from tiktok_oauth import MemoryTokenStore, TikTokOAuth2Client
from tiktok_oauth.testing import FakeTikTok

REDIRECT_URI = "https://app.example/callback"
NO_URLS = types.ModuleType("no_urls")
NO_URLS.urlpatterns = []  # type: ignore[attr-defined]


def _configure_django() -> None:
    """`settings.configure()` once per process: cookie sessions (no database), this package's test URLs."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="django-test-secret-key-for-tiktok-oauth-tests-only",
            ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
            ROOT_URLCONF=NO_URLS,  # each test brings its own (override_settings)
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
            INSTALLED_APPS=["django.contrib.sessions"],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            USE_TZ=True,
            DATABASES={},
        )
        django.setup()


_configure_django()


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
