"""niquests: an auth object built for the wrong kind of session says so instead of blocking the loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.conftest import SECRET
from tiktok_oauth import MemoryTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken
from tiktok_oauth.testing import FakeTikTok

niquests = pytest.importorskip("niquests")


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base:
        yield base


def _due(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    token = TikTokToken(fake.issue_token(open_id="u1"))
    token["expires_at"] = int(time.time())
    store.set("u1", token)


def test_an_async_session_with_a_sync_client_raises_type_error_and_refreshes_nothing(
    fake: FakeTikTok, served: str
) -> None:
    store = MemoryTokenStore()
    _due(fake, store)

    async def main() -> None:
        with TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client:
            async with niquests.AsyncSession(auth=TikTokAuth(client, store, "u1")) as session:
                with pytest.raises(TypeError, match="AsyncTikTokOAuth2Client"):
                    await session.get(fake.user_info_url(served) + "?fields=open_id")

    asyncio.run(main())
    assert fake.grant_count("refresh_token") == 0


def test_a_sync_session_inside_a_running_loop_still_works(fake: FakeTikTok, served: str) -> None:
    """As in a notebook: blocking, but asked for."""
    store = MemoryTokenStore()
    _due(fake, store)

    async def main() -> int:
        with (
            TikTokOAuth2Client("test-key", SECRET, **fake.endpoints(served)) as client,
            niquests.Session() as session,
        ):
            session.auth = TikTokAuth(client, store, "u1")
            return session.get(fake.user_info_url(served) + "?fields=open_id").status_code  # type: ignore[no-any-return]

    assert asyncio.run(main()) == 200
    assert fake.grant_count("refresh_token") == 1
