"""Test helpers: `FakeTikTok`, an emulator of TikTok's OAuth v2 endpoints, and its pytest plugin.

The plugin (registered under the `pytest11` entry point) provides the `fake_tiktok` fixture.
"""

from tiktok_oauth.testing._fake import FakeTikTok
from tiktok_oauth.testing._models import FakeResponse, FakeTikTokError, RecordedRequest

__all__ = ["FakeResponse", "FakeTikTok", "FakeTikTokError", "RecordedRequest"]
