"""Fixtures shared by the store tests: a real Redis server, clients, sample tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._redis import RedisServer, require_redis_server
from tests.stores._tokens import make_token
from tiktok_oauth.token import TikTokToken


@pytest.fixture
def token() -> TikTokToken:
    """A realistic user token."""
    return make_token()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole session (fail in CI, skip elsewhere when not installed)."""
    with RedisServer(require_redis_server()) as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Any]:
    """A sync client on a flushed database, closed afterwards."""
    client = redis_server.client()
    client.flushdb()
    try:
        yield client
    finally:
        client.close()
