"""Correctness, not timing: a token another process refreshed into a `FileTokenStore` is picked up.

TikTokAuth keeps the token it last saw and reads the store again only when that token nears expiry (or
draws a 401). This check plays the other process with a second `FileTokenStore` on the same directory,
then moves the one clock (`tiktok_oauth._clock.now`) to within `leeway` of the first token's expiry.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from unittest import mock

import httpx

from tiktok_oauth import FileTokenStore, TikTokAuth, TikTokOAuth2Client, TikTokToken, _clock
from tiktok_oauth.testing import FakeTikTok

KEY = "default"
URL = "https://open.tiktokapis.com/v2/user/info/?fields=open_id"


@dataclass(frozen=True)
class PickupResult:
    before_near_expiry: str  # which token the auth sent right after the other process wrote a new one
    near_expiry: str  # which token it sent once its own token was within leeway of expiry
    token_calls: int  # token-endpoint requests during the whole check

    @property
    def passed(self) -> bool:
        return self.near_expiry == "new" and self.token_calls == 0


def _sent(auth: TikTokAuth, old: str, new: str) -> str:
    request = httpx.Request("GET", URL)
    flow = auth.sync_auth_flow(request)
    sent = next(flow).headers["Authorization"]
    flow.close()
    return {f"Bearer {old}": "old", f"Bearer {new}": "new"}.get(sent, "other")


def run() -> PickupResult:
    fake = FakeTikTok()
    client = TikTokOAuth2Client(
        fake.client_key, fake.client_secret, http_client=httpx.Client(transport=fake.transport())
    )
    with tempfile.TemporaryDirectory(prefix="tiktok-oauth-bench-") as directory:
        ours, theirs = FileTokenStore(directory), FileTokenStore(directory)
        now = _clock.now()
        first = TikTokToken({**fake.issue_token(), "expires_at": int(now) + 3600})
        ours.set(KEY, first)
        auth = TikTokAuth(client, ours, KEY, leeway=60.0)
        calls_before = len(fake.token_requests)
        _sent(auth, first.access_token, "")  # the auth now caches the first token

        # Another process refreshes and writes a newer token through its own store instance.
        second = TikTokToken({**fake.issue_token(), "expires_at": int(now) + 86400})
        theirs.set(KEY, second)
        before = _sent(auth, first.access_token, second.access_token)

        # Our view of the first token moves within leeway of its expiry: 30 s left, leeway 60 s.
        with mock.patch.object(_clock, "now", return_value=first.expires_at - 30):
            near = _sent(auth, first.access_token, second.access_token)
        token_calls = len(fake.token_requests) - calls_before
    client.close()
    return PickupResult(before, near, token_calls)
