"""`tiktok_oauth.web.TikTokLogin`: pending logins in a session mapping, and every check of a callback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import SECRET
from tests.web.conftest import REDIRECT_URI
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    AuthorizationDeniedError,
    MemoryTokenStore,
    StateMismatchError,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokToken,
)
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.web import LoginResult, TikTokLogin

Session = dict[str, Any]


@pytest.fixture
def login(client: TikTokOAuth2Client, store: MemoryTokenStore) -> TikTokLogin:
    return TikTokLogin(client, store)


def _params(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def _with_query(url: str, **changes: str | None) -> str:
    """`url` with query parameters replaced (None drops one)."""
    parts = urlsplit(url)
    params: dict[str, str | None] = {**_params(url), **changes}
    query = urlencode({name: value for name, value in params.items() if value is not None})
    return urlunsplit(parts._replace(query=query))


def _nothing_happened(fake: FakeTikTok, store: MemoryTokenStore) -> None:
    assert fake.token_requests == []
    assert list(store.keys()) == []


# -- a login that works ------------------------------------------------------------------------------


def test_a_login_stores_the_token_under_the_open_id(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session), open_id="user-1")
    result = login.complete(session, callback)
    assert isinstance(result, LoginResult)
    assert result.key == "user-1"
    assert result.token.open_id == "user-1"
    assert store.get("user-1") == result.token
    assert result.next is None


def test_the_used_login_leaves_the_session(login: TikTokLogin, fake: FakeTikTok) -> None:
    session: Session = {}
    login.complete(session, fake.authorize(login.begin(session)))
    assert "tiktok_oauth" not in session


def test_next_comes_back_in_the_result_query_included(login: TikTokLogin, fake: FakeTikTok) -> None:
    session: Session = {}
    url = login.begin(session, next="/videos?page=2&sort=new")
    assert login.complete(session, fake.authorize(url)).next == "/videos?page=2&sort=new"


def test_two_tabs_complete_in_either_order(login: TikTokLogin, fake: FakeTikTok) -> None:
    session: Session = {}
    first = login.begin(session, next="/one")
    second = login.begin(session, next="/two")
    assert login.complete(session, fake.authorize(second, open_id="b")).next == "/two"
    assert login.complete(session, fake.authorize(first, open_id="a")).next == "/one"


def test_each_login_gets_its_own_state_and_verifier(login: TikTokLogin) -> None:
    session: Session = {}
    urls = [login.begin(session) for _ in range(3)]
    pending = session["tiktok_oauth"]
    verifiers = [entry["code_verifier"] for entry in pending.values()]
    assert len(set(pending)) == len(set(verifiers)) == 3
    for url in urls:
        params = _params(url)
        verifier = pending[params["state"]]["code_verifier"]
        assert params["code_challenge"] == hashlib.sha256(verifier.encode()).hexdigest()
        assert params["code_challenge_method"] == "S256"


def test_the_token_request_carries_that_logins_verifier_and_redirect_uri(
    login: TikTokLogin, fake: FakeTikTok
) -> None:
    session: Session = {}
    other = "https://app.example/other-callback"
    url = login.begin(session, redirect_uri=other)
    verifier = session["tiktok_oauth"][_params(url)["state"]]["code_verifier"]
    login.complete(session, fake.authorize(url))
    assert _params(url)["redirect_uri"] == other
    assert fake.token_requests[0]["redirect_uri"] == other
    assert fake.token_requests[0]["code_verifier"] == verifier


def test_the_redirect_uri_defaults_to_the_clients(login: TikTokLogin) -> None:
    assert _params(login.begin({}))["redirect_uri"] == REDIRECT_URI


def test_scope_is_asked_for(login: TikTokLogin, fake: FakeTikTok) -> None:
    session: Session = {}
    url = login.begin(session, scope=["user.info.basic"])
    assert _params(url)["scope"] == "user.info.basic"
    assert login.complete(session, fake.authorize(url)).token.scopes == {"user.info.basic"}


def test_without_pkce_no_challenge_and_no_verifier(client: TikTokOAuth2Client, fake: FakeTikTok) -> None:
    login = TikTokLogin(client, pkce=False)
    session: Session = {}
    url = login.begin(session)
    assert "code_challenge" not in _params(url)
    login.complete(session, fake.authorize(url))
    assert "code_verifier" not in fake.token_requests[0]


def test_the_store_defaults_to_a_memory_store(client: TikTokOAuth2Client, fake: FakeTikTok) -> None:
    login = TikTokLogin(client)
    session: Session = {}
    result = login.complete(session, fake.authorize(login.begin(session)))
    assert isinstance(login.store, MemoryTokenStore)
    assert login.store.get(result.key) == result.token


def test_auth_is_the_users_tiktok_auth(login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    session: Session = {}
    result = login.complete(session, fake.authorize(login.begin(session), open_id="user-7"))
    auth = login.auth(result.key)
    assert (auth.store, auth.key, auth.client) == (store, "user-7", login.client)
    with httpx.Client(transport=fake.transport(), auth=auth) as http:
        user = http.get(fake.user_info_url()).json()["data"]["user"]
    assert user["display_name"] == "Fake user user-7"


def test_a_second_login_of_the_same_user_replaces_their_token(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    first = login.complete(session, fake.authorize(login.begin(session), open_id="u"))
    second = login.complete(session, fake.authorize(login.begin(session), open_id="u"))
    assert first.token.access_token != second.token.access_token
    assert store.get("u") == second.token


def test_the_session_holds_only_json_values(login: TikTokLogin) -> None:
    session: Session = {}
    login.begin(session, next="/x")
    assert json.loads(json.dumps(session)) == session


def test_the_session_never_holds_the_secret_or_a_token(login: TikTokLogin, fake: FakeTikTok) -> None:
    session: Session = {}
    result = login.complete(session, fake.authorize(login.begin(session)))
    login.begin(session)
    dumped = json.dumps(session)
    assert SECRET not in dumped
    assert result.token.access_token not in dumped
    assert result.token.refresh_token
    assert result.token.refresh_token not in dumped


def test_expired_pending_logins_are_swept_by_the_next_begin(
    login: TikTokLogin, clock: Callable[[float], None]
) -> None:
    session: Session = {}
    old = _params(login.begin(session))["state"]
    clock(601)
    new = _params(login.begin(session))["state"]
    assert set(session["tiktok_oauth"]) == {new}
    assert old != new


# -- security and bad input: each gives its error, stores nothing, sends nothing --------------------


def test_a_forged_state_is_refused(login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(StateMismatchError):
        login.complete(session, _with_query(callback, state="forged-by-an-attacker"))
    _nothing_happened(fake, store)


def test_a_missing_state_is_refused(login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(StateMismatchError):
        login.complete(session, _with_query(callback, state=None))
    _nothing_happened(fake, store)


def test_an_empty_state_is_refused(login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(StateMismatchError):
        login.complete(session, callback.replace(f"state={_params(callback)['state']}", "state="))
    _nothing_happened(fake, store)


def test_a_replayed_callback_is_refused(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session), open_id="u")
    login.complete(session, callback)
    store.delete("u")
    with pytest.raises(StateMismatchError):
        login.complete(session, callback)
    assert len(fake.token_requests) == 1
    assert store.get("u") is None


def test_an_expired_pending_login_is_refused(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore, clock: Callable[[float], None]
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    clock(601)
    with pytest.raises(StateMismatchError, match="expired"):
        login.complete(session, callback)
    _nothing_happened(fake, store)
    assert "tiktok_oauth" not in session  # used up: a retry is a replay


def test_max_age_sets_the_expiry(
    client: TikTokOAuth2Client, fake: FakeTikTok, clock: Callable[[float], None]
) -> None:
    login = TikTokLogin(client, max_age=30)
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    clock(29)
    assert login.complete(session, callback).key == "test-open-id"
    callback = fake.authorize(login.begin(session))
    clock(31)
    with pytest.raises(StateMismatchError, match="expired"):
        login.complete(session, callback)


def test_a_callback_from_another_browser_session_is_refused(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    victim: Session = {}
    attacker: Session = {}
    login.begin(victim)
    callback = fake.authorize(login.begin(attacker), open_id="attacker")
    with pytest.raises(StateMismatchError):
        login.complete(victim, callback)
    _nothing_happened(fake, store)


def test_access_denied_is_authorization_denied(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session), deny=True)
    with pytest.raises(AuthorizationDeniedError) as caught:
        login.complete(session, callback)
    assert caught.value.error == "access_denied"
    _nothing_happened(fake, store)
    assert "tiktok_oauth" not in session


def test_invalid_scope_is_authorization_denied(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    state = _params(login.begin(session))["state"]
    callback = f"{REDIRECT_URI}?error=invalid_scope&error_description=Scope+not+approved&state={state}"
    with pytest.raises(AuthorizationDeniedError) as caught:
        login.complete(session, callback)
    assert caught.value.error == "invalid_scope"
    _nothing_happened(fake, store)


def test_a_callback_with_no_code_is_invalid_request(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(TikTokOAuthError) as caught:
        login.complete(session, _with_query(callback, code=None))
    assert type(caught.value) is TikTokOAuthError
    assert caught.value.error == "invalid_request"
    _nothing_happened(fake, store)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example/path",
        "/\t/evil.example",
        "/\n/evil.example",
        "\\\\evil.example",
        "",
    ],
    ids=[
        "scheme-relative",
        "absolute",
        "backslash",
        "javascript",
        "relative",
        "tab",
        "newline",
        "unc",
        "empty",
    ],
)
def test_next_off_this_site_is_refused(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore, target: str
) -> None:
    session: Session = {}
    with pytest.raises(ValueError, match="next must be a path on this site"):
        login.begin(session, next=target)
    assert session == {}
    assert fake.requests == []
    _nothing_happened(fake, store)


@pytest.mark.parametrize(
    "junk",
    [
        "a string",
        ["a", "list"],
        {"state": "not a dict"},
        {"state": {"redirect_uri": 1, "code_verifier": None, "next": None, "began": 0}},
        {"state": {"redirect_uri": REDIRECT_URI, "code_verifier": None, "next": None, "began": "now"}},
        {"state": {"redirect_uri": REDIRECT_URI, "code_verifier": None, "next": None, "began": True}},
        {"state": {"redirect_uri": REDIRECT_URI, "code_verifier": None, "next": None}},
        {"": {"redirect_uri": REDIRECT_URI, "code_verifier": None, "next": None, "began": 0}},
    ],
    ids=[
        "str",
        "list",
        "entry-str",
        "redirect-int",
        "began-str",
        "began-bool",
        "missing-field",
        "empty-state",
    ],
)
def test_junk_in_the_session_is_a_state_mismatch(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore, junk: object
) -> None:
    session: Session = {"tiktok_oauth": junk}
    with pytest.raises(StateMismatchError, match="unreadable"):
        login.complete(session, f"{REDIRECT_URI}?code=abc&state=state")
    _nothing_happened(fake, store)


def test_a_tampered_pending_login_is_a_state_mismatch(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    for entry in session["tiktok_oauth"].values():
        entry["redirect_uri"] = None
    with pytest.raises(StateMismatchError):
        login.complete(session, callback)
    _nothing_happened(fake, store)


def test_the_next_begin_replaces_junk(login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    session: Session = {"tiktok_oauth": "junk"}
    url = login.begin(session)
    assert set(session["tiktok_oauth"]) == {_params(url)["state"]}
    assert login.complete(session, fake.authorize(url)).key == "test-open-id"
    assert store.get("test-open-id") is not None


def test_nine_logins_keep_the_newest_eight(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    urls = [login.begin(session) for _ in range(9)]
    assert len(session["tiktok_oauth"]) == 8
    with pytest.raises(StateMismatchError):
        login.complete(session, fake.authorize(urls[0], open_id="oldest"))
    _nothing_happened(fake, store)
    assert login.complete(session, fake.authorize(urls[8], open_id="newest")).key == "newest"
    assert login.complete(session, fake.authorize(urls[1], open_id="second")).key == "second"


def test_a_refused_code_stores_nothing(login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(TikTokOAuthError) as caught:
        login.complete(session, _with_query(callback, code="not-a-code-tiktok-gave"))
    assert caught.value.error == "invalid_grant"
    assert list(store.keys()) == []


def test_a_malformed_callback_url_is_invalid_request(login: TikTokLogin, fake: FakeTikTok) -> None:
    session: Session = {}
    login.begin(session)
    with pytest.raises(TikTokOAuthError) as caught:
        login.complete(session, "https://[app.example/callback?code=x&state=y")
    assert caught.value.error == "invalid_request"
    assert fake.token_requests == []


# -- the two client kinds ----------------------------------------------------------------------------


class _AsyncDictStore:
    """A user's async store: the `AsyncTokenStore` protocol over a dict."""

    def __init__(self) -> None:
        self.tokens: dict[str, TikTokToken] = {}

    async def get(self, key: str) -> TikTokToken | None:
        return self.tokens.get(key)

    async def set(self, key: str, token: TikTokToken) -> None:
        self.tokens[key] = token

    async def delete(self, key: str) -> None:
        self.tokens.pop(key, None)


def test_acomplete_with_an_async_client_and_an_async_store(fake: FakeTikTok) -> None:
    async def main() -> tuple[LoginResult, _AsyncDictStore]:
        http = httpx.AsyncClient(transport=fake.async_transport())
        async with http, AsyncTikTokOAuth2Client("test-key", SECRET, http_client=http) as client:
            store = _AsyncDictStore()
            login = TikTokLogin(client, store)
            session: Session = {}
            return await login.acomplete(session, fake.authorize(login.begin(session), open_id="a")), store

    result, store = asyncio.run(main())
    assert store.tokens == {"a": result.token}


def test_acomplete_runs_a_sync_client_and_store_in_a_thread(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session), open_id="s")
    result = asyncio.run(login.acomplete(session, callback))
    assert store.get("s") == result.token


def test_acomplete_checks_before_any_request(
    login: TikTokLogin, fake: FakeTikTok, store: MemoryTokenStore
) -> None:
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(StateMismatchError):
        asyncio.run(login.acomplete(session, _with_query(callback, state="forged")))
    _nothing_happened(fake, store)


def test_complete_with_an_async_client_names_acomplete(fake: FakeTikTok) -> None:
    login = TikTokLogin(AsyncTikTokOAuth2Client("test-key", SECRET))
    session: Session = {}
    callback = fake.authorize(login.begin(session))
    with pytest.raises(TypeError, match="acomplete"):
        login.complete(session, callback)
    assert len(session["tiktok_oauth"]) == 1  # nothing used up by a programming error


def test_complete_with_an_async_store_names_acomplete(client: TikTokOAuth2Client) -> None:
    login = TikTokLogin(client, _AsyncDictStore())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="acomplete"):
        login.complete({}, f"{REDIRECT_URI}?code=x&state=y")


def test_a_client_is_required() -> None:
    with pytest.raises(TypeError, match="TikTokOAuth2Client"):
        TikTokLogin("not a client")  # type: ignore[arg-type]


def test_max_age_must_be_positive(client: TikTokOAuth2Client) -> None:
    with pytest.raises(ValueError, match="max_age"):
        TikTokLogin(client, max_age=0)


def test_importing_the_core_imports_no_framework() -> None:
    code = (
        "import tiktok_oauth, tiktok_oauth.web, tiktok_oauth.integrations; import sys; "
        "assert not {'starlette', 'flask', 'django', 'fastapi', 'werkzeug'} & set(sys.modules), sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
