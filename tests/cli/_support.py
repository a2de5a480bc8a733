"""Helpers for the command-line tests: the served fake's options, an in-process runner, a leak scan."""

from __future__ import annotations

import io
import itertools
import re
import sys
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tiktok_oauth.cli import main
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.token import TikTokToken

CLIENT_KEY = "cli-test-key"
SECRET = "cli-SECRET-0xC0FFEE-must-never-be-printed"
#: A token the fake issued: TikTok's prefix and 40 random alphanumerics. Masked tokens (`act.***`) do not match.
TOKEN_PATTERN = re.compile(r"\b(?:act|rft|clt)\.[A-Za-z0-9]{8,}")
URL_LINE = re.compile(r"^  (http\S+/v2/auth/authorize/\S+)$", re.MULTILINE)


@dataclass
class Served:
    """A FakeTikTok served on loopback, and the CLI options that point at it."""

    fake: FakeTikTok
    base_url: str

    @property
    def url_options(self) -> list[str]:
        endpoints = self.fake.endpoints(self.base_url)
        return [
            "--authorize-url",
            endpoints["authorize_url"],
            "--token-url",
            endpoints["token_url"],
            "--revoke-url",
            endpoints["revoke_url"],
        ]

    @property
    def options(self) -> list[str]:
        """Credentials (the secret by flag) and the testing URLs."""
        return ["--client-key", CLIENT_KEY, "--client-secret", SECRET, *self.url_options]

    def issue(self, store: FileTokenStore, key: str = "test-open-id", **kwargs: Any) -> TikTokToken:
        """Register a grant at the fake without a login and store its token under `key`."""
        token = TikTokToken(self.fake.issue_token(**kwargs))
        store.set(key, token)
        return token


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Running:
    """`main` running in a thread (login waits for a browser); its output is read while it runs."""

    cli: CLI
    thread: threading.Thread
    outcome: list[int] = field(default_factory=list)
    out: str = ""
    err: str = ""

    def _read(self) -> None:
        captured = self.cli.capsys.readouterr()
        self.out += captured.out
        self.err += captured.err

    def authorization_url(self, timeout: float = 10.0) -> str:
        """The authorization URL, once the command has printed it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read()
            found = URL_LINE.search(self.out)
            if found:
                return found.group(1)
            if not self.thread.is_alive():
                break
            time.sleep(0.01)
        self._read()
        raise AssertionError(f"no authorization URL printed:\n{self.out}\n{self.err}")

    def finish(self, timeout: float = 15.0) -> Result:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the command did not finish"
        self._read()
        result = Result(self.outcome[0], self.out, self.err)
        self.cli.results.append(result)
        return result


@dataclass
class CLI:
    """Runs `main` in-process; every output is kept for the leak scan at teardown."""

    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    results: list[Result] = field(default_factory=list)
    secrets: set[str] = field(default_factory=lambda: {SECRET})

    def _remember_secrets(self, argv: tuple[str, ...]) -> None:
        self.secrets.update(value for flag, value in itertools.pairwise(argv) if flag == "--client-secret")

    def __call__(self, *argv: str, stdin: str | None = None) -> Result:
        self._remember_secrets(argv)
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        captured = self.capsys.readouterr()
        result = Result(code, captured.out, captured.err)
        self.results.append(result)
        return result

    def start(self, *argv: str) -> Running:
        self._remember_secrets(argv)
        running = Running(self, threading.Thread(target=lambda: None))
        running.thread = threading.Thread(
            target=lambda: running.outcome.append(main(list(argv))), daemon=True
        )
        running.thread.start()
        return running


def known_tokens(served: Served | None, stores: list[FileTokenStore]) -> set[str]:
    """Every access and refresh token we can find: in the stores, and presented to the fake."""
    tokens: set[str] = set()
    for store in stores:
        for path in store.path.glob("*.json") if store.path.exists() else ():
            try:
                token = TikTokToken.from_json(path.read_text())
            except ValueError:
                continue
            tokens.update(t for t in (token.access_token, token.refresh_token) if t)
    if served is not None:
        for form in served.fake.token_requests:
            tokens.update(v for k, v in form.items() if k in {"refresh_token", "code"} and v)
        for request in served.fake.requests:
            auth = request.headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                tokens.add(auth[7:])
            if request.url.endswith("/v2/oauth/revoke/"):
                tokens.update(re.findall(r"token=([^&]+)", request.body.decode()))
    return tokens


def assert_no_leaks(outputs: list[str], tokens: set[str], secrets: Collection[str] = (SECRET,)) -> None:
    """No output holds a client secret, a token we know of, or anything shaped like an issued token."""
    for output in outputs:
        for secret in secrets:
            assert secret not in output
        assert not TOKEN_PATTERN.search(output), TOKEN_PATTERN.search(output)
        for token in tokens:
            assert token not in output


def follow_authorize(url: str) -> str:
    """Play the browser at the served fake: open its consent page, press Authorize, return the 302's Location."""
    with httpx.Client(trust_env=False) as http:
        page = http.get(url)
        assert page.status_code == 200, page.text
        response = http.post(url, data={"open_id": "test-open-id", "decision": "authorize"})
    assert response.status_code == 302, response.text
    return response.headers["location"]
