"""`tiktok-oauth demo`: the whole flow against an embedded `FakeTikTok` on loopback, step by step.

No credentials and no network beyond 127.0.0.1. Tokens are shown only through `TikTokToken`'s masked repr.
"""

from __future__ import annotations

import argparse
import importlib
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import httpx2

from tiktok_oauth import _clock
from tiktok_oauth._cli._common import relative_time
from tiktok_oauth.auth import TikTokAuth, TokenSource
from tiktok_oauth.client import TikTokOAuth2Client
from tiktok_oauth.errors import ReauthorizationRequiredError
from tiktok_oauth.stores import FileTokenStore
from tiktok_oauth.token import TikTokToken

__all__ = ["run_demo"]

_REDIRECT_URI = "https://localhost/"
_OPEN_ID = "demo-user"


class _Steps:
    """Prints numbered steps: a line of plain words, then indented details."""

    def __init__(self) -> None:
        self.number = 0

    def __call__(self, text: str, *details: str) -> None:
        self.number += 1
        print(f"{self.number}. {text}")
        for detail in details:
            print(f"   {detail}")


def _redact_code(callback: str) -> str:
    return re.sub(r"([?&]code=)[^&]*", r"\1<redacted>", callback)


def _user_info(response: Any) -> str:
    """`HTTP 200, display_name 'Fake user demo-user'` or `HTTP 401 access_token_invalid`."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
    if response.status_code == 200:
        user = ((body.get("data") or {}).get("user") or {}) if isinstance(body, dict) else {}
        return f"HTTP 200, display_name {user.get('display_name')!r}"
    return f"HTTP {response.status_code} {error or ''}".rstrip()


def _import_requests() -> Any:
    try:
        return importlib.import_module("requests")
    except ImportError:
        return None


def _stored(store: FileTokenStore, key: str) -> TikTokToken:
    token = store.get(key)
    assert token is not None, "the demo's token vanished from its store"
    return token


def run_demo(args: argparse.Namespace) -> int:
    """Run `tiktok-oauth demo`: print each step of the OAuth flow against a local fake TikTok; return 0."""
    if getattr(args, "web", False):
        from tiktok_oauth._cli.demo_web import run_web_demo  # noqa: PLC0415 - only for --web

        return run_web_demo(args)
    from tiktok_oauth.testing import FakeTikTok  # noqa: PLC0415 - test helpers load only for the demo

    step = _Steps()
    fake = FakeTikTok(client_key="demo-client-key", client_secret=secrets.token_urlsafe(24))
    print("tiktok-oauth demo: the whole Login Kit flow against a fake TikTok on this machine.")
    print("No credentials are needed and nothing leaves 127.0.0.1. Tokens are always shown masked.")
    print()
    with fake.serve() as base_url, tempfile.TemporaryDirectory(prefix="tiktok-oauth-demo-") as directory:
        step(f"Started a fake TikTok (tiktok_oauth.testing.FakeTikTok) at {base_url}.")
        endpoints = fake.endpoints(base_url)
        with TikTokOAuth2Client(
            fake.client_key,
            fake.client_secret,
            redirect_uri=_REDIRECT_URI,
            scope="user.info.basic",
            authorize_url=endpoints["authorize_url"],
            token_url=endpoints["token_url"],
            revoke_url=endpoints["revoke_url"],
        ) as client:
            _login_and_store(step, fake, client, Path(directory))
            store = FileTokenStore(Path(directory) / "tokens")
            _calls_and_refreshes(step, fake, client, store, fake.user_info_url(base_url))
            _revoke(step, client, store, fake.user_info_url(base_url))
    step("Stopped the fake and removed the temporary directory. Done.")
    return 0


def _login_and_store(step: _Steps, fake: Any, client: TikTokOAuth2Client, directory: Path) -> None:
    verifier = client.generate_code_verifier()
    url, state = client.create_authorization_url(code_verifier=verifier)
    step(
        "Built the authorization URL, with PKCE (code_challenge: the hex SHA-256 of a secret verifier) "
        "and a random state:",
        url,
    )
    callback = fake.authorize(url, open_id=_OPEN_ID)
    step(
        "The user approved the app on TikTok's consent page (played by fake.authorize), "
        "and TikTok redirected the browser to:",
        _redact_code(callback),
    )
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    step(
        "The callback's state matched; the code and the PKCE verifier were exchanged for a token:",
        repr(token),
    )
    store = FileTokenStore(directory / "tokens")
    TokenSource.over(client, store, _OPEN_ID).store_login(token)
    step(f"Saved the token in a FileTokenStore under key {_OPEN_ID!r}:", str(store.token_path(_OPEN_ID)))


def _calls_and_refreshes(
    step: _Steps, fake: Any, client: TikTokOAuth2Client, store: FileTokenStore, user_info_url: str
) -> None:
    auth = TikTokAuth(client, store, _OPEN_ID)
    requests = _import_requests()
    if requests is None:
        step("requests is not installed: skipped the user info call through requests.")
    else:
        with requests.Session() as session:
            session.auth = auth
            answer = _user_info(session.get(user_info_url, timeout=10))
        step(f"GET /v2/user/info/ through requests (session.auth = TikTokAuth(client, store, key)): {answer}")
    with httpx2.Client(auth=auth, timeout=10) as http:
        step(
            f"GET /v2/user/info/ through httpx2.Client(auth=TikTokAuth(...)): {_user_info(http.get(user_info_url))}"
        )

        before = _stored(store, _OPEN_ID)
        fake.expire_access_tokens()
        answer = _user_info(http.get(user_info_url))
        after = _stored(store, _OPEN_ID)
        step(
            "TikTok expired the access token early (fake.expire_access_tokens()); the next call got "
            "401 access_token_invalid, so TikTokAuth refreshed once, stored the new token and retried:",
            f"{answer}; new access token stored: {after.access_token != before.access_token}; "
            f"refresh token rotated: {after.refresh_token != before.refresh_token}",
        )

    stale = _stored(store, _OPEN_ID)
    remaining = (stale.expires_at or 0) - _clock.now()
    with httpx2.Client(auth=TikTokAuth(client, store, _OPEN_ID, leeway=remaining + 60), timeout=10) as http:
        answer = _user_info(http.get(user_info_url))
    fresh = _stored(store, _OPEN_ID)
    step(
        "A new TikTokAuth on the same store, with a leeway longer than the token has left "
        "(TikTokAuth(..., leeway=...)), refreshed before sending:",
        f"{answer}; refreshes so far: {fake.grant_count('refresh_token')}; "
        f"the stored access token now expires {relative_time(fresh.expires_at or 0, _clock.now())}",
    )


def _revoke(step: _Steps, client: TikTokOAuth2Client, store: FileTokenStore, user_info_url: str) -> None:
    token = _stored(store, _OPEN_ID)
    TikTokAuth(client, store, _OPEN_ID).logout()
    step(
        "Logged out (TikTokAuth.logout()): the access token revoked at TikTok, which ends the whole "
        "grant, and the token deleted from the store."
    )
    with httpx2.Client(timeout=10) as http:
        answer = _user_info(
            http.get(user_info_url, headers={"Authorization": f"Bearer {token.access_token}"})
        )
    step(f"GET /v2/user/info/ with the revoked access token: {answer}.")
    with httpx2.Client(auth=TikTokAuth(client, store, _OPEN_ID), timeout=10) as http:
        try:
            http.get(user_info_url)
        except ReauthorizationRequiredError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        else:  # pragma: no cover - the fake refuses a revoked grant's refresh token
            outcome = "unexpectedly succeeded"
    step("Through TikTokAuth, nothing is stored any more: the user must log in again.", outcome)
