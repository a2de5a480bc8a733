"""Issue 8 item 13: the served fake holds hundreds of concurrent connections (it listened with a backlog of 5)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tiktok_oauth.testing import FakeTikTok


@pytest.mark.parametrize("clients", [64, 256])
def test_item13_the_served_fake_holds_many_concurrent_clients(clients: int) -> None:
    fake = FakeTikTok("k", "s")
    token = fake.issue_token(open_id="u")

    async def go(base: str) -> list[int]:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            url = fake.user_info_url(base)
            answers = await asyncio.gather(
                *(http.get(url, params={"fields": "open_id"}, headers=headers) for _ in range(clients))
            )
        return [answer.status_code for answer in answers]

    with fake.serve() as base:
        assert asyncio.run(go(base)) == [200] * clients
