"""`tiktok-oauth keeper`: rounds of refresh_due until SIGTERM/SIGINT, as a real process on the served fake."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli._support import CLI, Served
from tests.conftest import token_request_arrived
from tiktok_oauth import TikTokOAuth2Client, _clock
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.token import TikTokToken

DEADLINE = 60.0


def _due(served: Served, store: FileTokenStore, key: str) -> TikTokToken:
    token = served.issue(store, key, open_id=key)
    token["expires_at"] = int(_clock.now() + 60)
    store.set(key, token)
    return token


def test_once_runs_one_round_and_prints_its_summary(
    cli: CLI, served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    for key in ("alice", "bob"):
        _due(served, store, key)
    result = cli("keeper", "--once", *served.options, "--store", str(store_dir))
    assert result.code == 0, result.err
    assert "2 refreshed, 0 fresh, 0 need a new login, 0 failed" in result.out
    assert served.fake.grant_count("refresh_token") == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_refresh_in_flight_finish_and_exits_0(
    sig: signal.Signals,
    served: Served,
    store_dir: Path,
    store: FileTokenStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    olds = {key: _due(served, store, key) for key in ("u1", "u2", "u3")}
    arrived = token_request_arrived(served.fake, monkeypatch)
    served.fake.token_delay = 1.0  # the first refresh is in flight when the signal comes
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "keeper",
            "--every",
            "1h",
            "--concurrency",
            "1",
            *served.options,
            "--store",
            str(store_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert arrived.wait(DEADLINE), "no refresh reached the fake"
        process.send_signal(sig)
        out, err = process.communicate(timeout=DEADLINE)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "1 refreshed, 0 fresh, 0 need a new login, 0 failed" in out  # the round's summary
    assert "Stopped" in out
    assert served.fake.grant_count("refresh_token") == 1  # no key was started after the signal
    changed = [key for key, old in olds.items() if store.get(key).refresh_token != old.refresh_token]  # type: ignore[union-attr]
    assert len(changed) == 1
    served.fake.token_delay = 0
    with TikTokOAuth2Client(
        served.fake.client_key, served.fake.client_secret, **served.fake.endpoints(served.base_url)
    ) as client:
        client.refresh_token(store.get(changed[0]))  # type: ignore[arg-type]
    assert served.fake.stale_refresh_token_uses == 0
