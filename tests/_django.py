"""Django settings for the tests (web login flavour, docs samples): configured once per process."""

from __future__ import annotations

import types

NO_URLS = types.ModuleType("no_urls")
NO_URLS.urlpatterns = []  # type: ignore[attr-defined]


def configure_django() -> None:
    """`settings.configure()` once per process: cookie sessions (no database); tests bring their URLs."""
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
