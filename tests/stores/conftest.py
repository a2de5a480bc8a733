"""Fixtures shared by the store tests: a real Redis server, clients, sample tokens."""

from __future__ import annotations

import pytest

from tests.stores._tokens import make_token
from tiktok_oauth.token import TikTokToken


@pytest.fixture
def token() -> TikTokToken:
    """A realistic user token."""
    return make_token()
