"""Fixtures for the command line: a served FakeTikTok, a runner whose every output is scanned for leaks."""

from __future__ import annotations

import webbrowser
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli._support import CLI, CLIENT_KEY, SECRET, Served, assert_no_leaks, known_tokens
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing import FakeTikTok


@pytest.fixture
def served() -> Iterator[Served]:
    fake = FakeTikTok(client_key=CLIENT_KEY, client_secret=SECRET)
    with fake.serve() as base_url:
        yield Served(fake, base_url)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "tokens"


@pytest.fixture
def store(store_dir: Path) -> FileTokenStore:
    return FileTokenStore(store_dir)


@pytest.fixture(autouse=True)
def no_real_browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Never open a real browser: `webbrowser.open` records the URL instead (tests may replace it)."""
    opened: list[str] = []

    def record(url: str, *args: object, **kwargs: object) -> bool:
        opened.append(url)
        return True

    monkeypatch.setattr(webbrowser, "open", record)
    return opened


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials from the environment, and a default store inside the test's directory."""
    monkeypatch.delenv("TIKTOK_CLIENT_KEY", raising=False)
    monkeypatch.delenv("TIKTOK_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[CLI]:
    # Fetched now, so that they are torn down after the scan below.
    served = request.getfixturevalue("served") if "served" in request.fixturenames else None
    stores = [request.getfixturevalue("store")] if "store" in request.fixturenames else []
    runner = CLI(capsys, monkeypatch)
    yield runner
    # The leak scan: whatever the test checked, no CLI output may hold a secret or a token.
    outputs = [text for result in runner.results for text in (result.out, result.err)]
    assert_no_leaks(outputs, known_tokens(served, stores), runner.secrets)
