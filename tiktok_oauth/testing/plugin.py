"""pytest plugin (entry point `pytest11`): the `fake_tiktok` fixture."""

from __future__ import annotations

import pytest

from tiktok_oauth.testing import FakeTikTok

__all__ = ["fake_tiktok"]


@pytest.fixture
def fake_tiktok() -> FakeTikTok:
    """A fresh `FakeTikTok` (client key `test-key`, secret `test-secret`) for each test."""
    return FakeTikTok()
