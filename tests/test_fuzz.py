"""Everything that parses outside input either parses or raises the documented error, never anything else.

Fuzzed with hypothesis (`max_examples` set per test, no deadline, no example database): callback URLs, token
responses (any JSON value, status, headers and bytes), token JSON, token-store files and 401 bodies. Each
test counts the examples it ran; the run prints the counts at the end.

The bugs fuzzing found (malformed callback URLs, non-finite or huge lifetimes, deep JSON, NaN in store
files, expiries beyond float range) are pinned by the regression tests at the bottom.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests._workers import report
from tiktok_oauth import (
    AuthorizationDeniedError,
    StateMismatchError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokServerError,
    TikTokToken,
    TokenStoreError,
    _protocol,
)
from tiktok_oauth.auth._flow import token_rejected as _token_rejected
from tiktok_oauth.stores import FileTokenStore

EXAMPLES: collections.Counter[str] = collections.Counter()
_BASE_SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def fuzz(max_examples: int, *checks: HealthCheck) -> settings:
    """Hypothesis settings: `max_examples` explicit, no deadline, no example database."""
    return settings(
        _BASE_SETTINGS,
        max_examples=max_examples,
        suppress_health_check=[HealthCheck.too_slow, *checks],
    )


BASE = "https://app.example/callback"
CREDENTIALS = ("test-key", "SUPER-SECRET-client-secret-0xDEADBEEF")
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture(scope="module", autouse=True)
def print_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if EXAMPLES:
        report(request, "hypothesis examples run", [f"{n:6} {name}" for name, n in EXAMPLES.items()])


def _count(name: str) -> None:
    EXAMPLES[name] += 1


def _attempt(function: Callable[..., Any], *args: Any) -> tuple[Any, TikTokOAuthError | None]:
    """`(result, None)`, or `(None, error)` for a documented error; anything else propagates (and fails)."""
    try:
        return function(*args), None
    except TikTokOAuthError as error:
        return None, error


# -- strategies --------------------------------------------------------------------------------------------

# Any number JSON can carry: NaN, Infinity, 1e400 (which json.loads reads as inf), 10**300, 10**400.
_numbers = st.integers() | st.floats() | st.sampled_from([10**300, 10**400, 2**63, 1e11, 1e400])
_scalars = st.none() | st.booleans() | _numbers | st.text(max_size=30)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=10,
)
_token_keys = st.sampled_from(
    [
        "access_token",
        "refresh_token",
        "expires_in",
        "expires_at",
        "refresh_expires_in",
        "refresh_expires_at",
        "open_id",
        "scope",
        "token_type",
        "error",
        "error_description",
        "log_id",
        "data",
        "error_code",
        "message",
        "description",
        "code",
    ]
)
# Dicts shaped like what TikTok sends: its keys, with any values, nested one level in "data"/"error".
_flat_token_like = st.dictionaries(_token_keys, json_values, max_size=6)
token_like = st.dictionaries(_token_keys | st.text(max_size=8), json_values | _flat_token_like, max_size=8)
response_bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | token_like.map(lambda v: json.dumps(v).encode())
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
response_headers = st.dictionaries(
    st.sampled_from(["retry-after", "x-tt-logid", "content-type"]),
    header_values | st.sampled_from(["1", "120", "-5", "1e400", "nan", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)
statuses = st.integers(100, 599)
calls = st.sampled_from(
    [
        _protocol.refresh_call("https://x.example/t", CREDENTIALS, "rft.old"),
        _protocol.refresh_call(
            "https://x.example/t",
            CREDENTIALS,
            TikTokToken(access_token="act.old", refresh_token="rft.old", open_id="o", scope="a"),
        ),
        _protocol.authorization_code_call(
            "https://x.example/t", CREDENTIALS, code="c*0!1", redirect_uri="https://a/", code_verifier=None
        ),
        _protocol.client_credentials_call("https://x.example/t", CREDENTIALS),
        _protocol.revoke_call("https://x.example/r", CREDENTIALS, "act.old"),
    ]
)

_query_keys = st.sampled_from(["code", "state", "error", "error_description", "scopes", "log_id"]) | st.text(
    max_size=6
)
# Query strings: encoded pairs (repeated keys allowed), or raw text with stray %, +, &, = and #.
queries = st.lists(st.tuples(_query_keys, st.text(max_size=20)), max_size=6).map(urlencode) | st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(list("%&=+#*!;")), max_size=60
)
states = st.none() | st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
# Codes as TikTok makes them (with * and !), with stray % and anything else.
codes = st.text(
    st.sampled_from(list("*!%~._-+ &=#/?")) | st.characters(codec="utf-8", exclude_categories=["Cs"]),
    min_size=1,
    max_size=40,
)


# -- callback URLs -------------------------------------------------------------------------------------------


@fuzz(1000)
@given(query=queries, state=states)
@example(query="code=abc%2A0%215413&scopes=user.info.basic&state=s", state="s")
@example(query="code=a&code=b&state=s&state=t", state="s")
@example(query="error=&state=s", state="s")
@example(query="code=%&state=%zz", state="%zz")
def test_callback_urls_give_a_code_or_a_documented_error(query: str, state: str | None) -> None:
    _count("callback URL -> code_from_callback")
    if not state:  # the CSRF check is never skipped: no state, no code
        with pytest.raises(ValueError, match="state= is required"):
            _protocol.code_from_callback(f"{BASE}?{query}", state)
        return
    code, error = _attempt(_protocol.code_from_callback, f"{BASE}?{query}", state)
    if error is None:
        assert isinstance(code, str)
        assert code
    elif type(error) is TikTokOAuthError:
        assert error.error == "invalid_request"
    else:
        assert type(error) in (StateMismatchError, AuthorizationDeniedError)


@fuzz(1000)
@given(
    code=codes,
    state=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20),
)
@example(code="abc*0!5413", state="s")
@example(code="abc%2A0%215413", state="s")  # a code that *contains* "%2A" must not be decoded twice
@example(code="%25", state="%")
def test_a_code_round_trips_through_urlencode_decoded_exactly_once(code: str, state: str) -> None:
    _count("code round-trip through urlencode")
    callback = f"{BASE}?{urlencode({'code': code, 'scopes': 'user.info.basic', 'state': state})}"
    assert _protocol.code_from_callback(callback, state) == code
    # The way TikTok itself writes them: quote() with * and ! escaped, as in "...U64%2A0%215413".
    callback = f"{BASE}?code={quote(code, safe='')}&state={quote(state, safe='')}"
    assert _protocol.code_from_callback(callback, state) == code


# -- token-endpoint responses --------------------------------------------------------------------------------


def _check_reply(call: _protocol.TokenCall, reply: _protocol.Reply) -> None:
    error = _protocol.error_for(call, reply)
    if error is not None:
        assert isinstance(error, TikTokOAuthError)
        assert isinstance(str(error), str)
        assert isinstance(repr(error), str)
        return
    if call.grant == "revoke":
        return
    try:
        token = _protocol.token_from(call, reply, 1_700_000_000.0)
    except TikTokOAuthError:
        return
    assert isinstance(token, TikTokToken)
    assert token.access_token
    assert "access_token='***'" in repr(token)


@fuzz(1000)
@given(call=calls, status=statuses, headers=response_headers, body=response_bodies)
@example(
    call=_protocol.refresh_call("https://x/", CREDENTIALS, "r"),
    status=200,
    headers={},
    body=b'{"access_token":"a","expires_in":"86400"}',
)
def test_token_responses_give_a_token_or_a_tiktok_oauth_error(
    call: _protocol.TokenCall, status: int, headers: dict[str, str], body: bytes
) -> None:
    _count("token response -> error_for + token_from")
    _check_reply(call, _protocol.Reply(status, headers, body))


@fuzz(500)
@given(call=calls, status=statuses, headers=response_headers, body=token_like)
def test_token_shaped_json_gives_a_token_or_a_tiktok_oauth_error(
    call: _protocol.TokenCall, status: int, headers: dict[str, str], body: dict[str, Any]
) -> None:
    _count("token-shaped JSON -> error_for + token_from")
    _check_reply(call, _protocol.Reply(status, headers, json.dumps(body).encode()))


@fuzz(500)
@given(status=statuses, value=header_values)
@example(status=429, value="Wed, 21 Oct 2015 07:28:00 GMT")
@example(status=429, value="Mon, 01 Jan 0001 00:00:00 GMT")
@example(status=429, value="-1")
def test_any_retry_after_gives_a_rate_limited_error_with_a_sane_delay(status: int, value: str) -> None:
    _count("Retry-After -> RateLimitedError")
    call = _protocol.client_credentials_call("https://x.example/t", CREDENTIALS)
    error = _protocol.error_for(call, _protocol.Reply(429, {"retry-after": value}, b""))
    assert isinstance(error, TikTokOAuthError)
    retry_after = getattr(error, "retry_after", None)
    assert retry_after is None or (retry_after >= 0 and not math.isnan(retry_after))


# -- token JSON ----------------------------------------------------------------------------------------------


@fuzz(500)
@given(data=token_like | st.dictionaries(st.text(max_size=10), json_values, max_size=6))
@example(data={"access_token": "a", "expires_in": "soon"})
@example(data={"access_token": "a", "expires_in": True, "expires_at": None})
def test_token_dicts_make_a_token_or_raise_value_error(data: dict[str, Any]) -> None:
    _count("dict -> TikTokToken(...)")
    try:
        token = TikTokToken(data)
    except ValueError:
        return
    assert isinstance(token, TikTokToken)
    # Nothing on a token raises, whatever it holds.
    repr(token)
    token.is_expired()
    token.is_refresh_expired()
    assert isinstance(token.scopes, frozenset)


@fuzz(1000)
@given(text=st.binary(max_size=200) | st.text(max_size=200) | json_values.map(json.dumps))
def test_token_json_makes_a_token_or_raises_value_error(text: str | bytes) -> None:
    _count("text -> TikTokToken.from_json")
    try:
        token = TikTokToken.from_json(text)
    except ValueError:
        return
    assert isinstance(token, TikTokToken)
    repr(token)


# -- token-store files ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tiktok-oauth-fuzz-") as directory:
        path = Path(directory) / "tokens"
        path.mkdir(mode=0o700)
        yield path


@fuzz(500, HealthCheck.function_scoped_fixture)
@given(
    data=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | token_like.map(lambda v: json.dumps({"access_token": "act.x", **v}).encode()),
    key=st.text(max_size=20),
)
@example(data=b"", key="default")
@example(data=b'{"access_token": "act.x"}\xff', key="k")
def test_any_store_file_gives_a_token_or_a_token_store_error(store_dir: Path, data: bytes, key: str) -> None:
    _count("store file bytes -> FileTokenStore.get")
    store = FileTokenStore(store_dir)
    path = store.token_path(key)
    path.write_bytes(data)
    try:
        token, error = _attempt(store.get, key)
        assert path.read_bytes() == data, "get() changed the file"
    finally:
        path.unlink()
    if error is None:
        assert isinstance(token, TikTokToken)
    else:
        assert type(error) is TokenStoreError
        assert str(path) in str(error)


# -- 401 bodies ----------------------------------------------------------------------------------------------


@fuzz(500)
@given(
    status=st.sampled_from([401, 401, 401, 200, 403, 429]),
    body=response_bodies
    | st.sampled_from(
        [
            b'{"error":{"code":"access_token_invalid","message":"","log_id":"x"}}',
            b'{"code":"access_token_invalid"}',
            b'{"error":"access_token_invalid"}',
            b'{"error":{"code":"scope_not_authorized"}}',
        ]
    ),
)
def test_401_bodies_give_a_bool(status: int, body: bytes) -> None:
    _count("401 body -> _token_rejected")
    for response in (SimpleNamespace(status_code=status, content=body), httpx.Response(status, content=body)):
        result = _token_rejected(response)
        assert isinstance(result, bool)
        if result:
            assert status == 401
            assert b"access_token_invalid" in body


# -- what the fuzzing found: regressions ----------------------------------------------------------------
# Each of these escaped as an undocumented exception (ValueError, OverflowError, RecursionError) before the
# fixes to _protocol.py, token.py, stores/_codec.py and auth.py that followed this file.


@fuzz(500)
@given(url=st.text(max_size=60), state=states)
@example(url="https://[app.example/callback?code=x&state=s", state="s")
@example(url="http://[::1/?code=x", state=None)
def test_any_text_as_a_callback_url_gives_a_code_or_a_documented_error(url: str, state: str | None) -> None:
    _count("any text as a callback URL")
    with contextlib.suppress(TikTokOAuthError, ValueError if not state else TikTokOAuthError):
        assert _protocol.code_from_callback(url, state)


@pytest.mark.parametrize(
    "body",
    [
        b'{"access_token":"a","expires_in":1e400}',
        b'{"access_token":"a","expires_in":Infinity}',
        b'{"access_token":"a","expires_in":NaN}',
        b'{"access_token":"a","refresh_expires_in":-Infinity}',
        b'{"access_token":"a","expires_in":1' + b"0" * 400 + b"}",
    ],
    ids=["1e400", "Infinity", "NaN", "-Infinity", "10**400"],
)
def test_a_non_finite_or_huge_expires_in_is_a_server_error(body: bytes) -> None:
    call = _protocol.refresh_call("https://x.example/t", CREDENTIALS, "rft.old")
    reply = _protocol.Reply(200, {}, body)
    assert _protocol.error_for(call, reply) is None
    with pytest.raises(TikTokServerError):
        _protocol.token_from(call, reply, 1_700_000_000.0)


@pytest.mark.parametrize(
    "expires_in", ["inf", float("inf"), 10**400, "1e400"], ids=["'inf'", "inf", "10**400", "'1e400'"]
)
def test_a_token_with_an_infinite_expires_in_is_still_a_token(expires_in: object) -> None:
    token = TikTokToken({"access_token": "a", "expires_in": expires_in})
    assert token.expires_at is None
    assert not token.is_expired()


def test_a_store_file_with_an_infinite_expires_in_is_a_token_store_error(store_dir: Path) -> None:
    store = FileTokenStore(store_dir)
    store.token_path("inf").write_bytes(b'{"access_token":"act.x","expires_in":Infinity}')
    try:
        with pytest.raises(TokenStoreError):
            store.get("inf")
    finally:
        store.token_path("inf").unlink()


def test_deeply_nested_json_from_the_token_endpoint_is_a_server_error() -> None:
    call = _protocol.refresh_call("https://x.example/t", CREDENTIALS, "rft.old")
    assert type(_protocol.error_for(call, _protocol.Reply(200, {}, DEEP))) is TikTokServerError


def test_a_deeply_nested_store_file_is_a_token_store_error(store_dir: Path) -> None:
    store = FileTokenStore(store_dir)
    store.token_path("deep").write_bytes(DEEP)
    try:
        with pytest.raises(TokenStoreError):
            store.get("deep")
    finally:
        store.token_path("deep").unlink()


def test_a_deeply_nested_401_body_is_not_a_rejected_token() -> None:
    assert _token_rejected(SimpleNamespace(status_code=401, content=DEEP)) is False


def test_deeply_nested_token_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        TikTokToken.from_json(DEEP)


@pytest.mark.parametrize("name", ["expires_at", "refresh_expires_at"])
def test_a_token_with_a_huge_integer_expiry_still_has_a_repr_and_an_expiry(name: str) -> None:
    token = TikTokToken({"access_token": "act.x", name: 10**400})
    assert "access_token='***'" in repr(token)
    token.is_expired()
    token.is_refresh_expired()


def test_a_stored_token_with_a_huge_integer_expiry_gives_a_documented_error_through_tiktok_auth(
    store_dir: Path,
) -> None:
    store = FileTokenStore(store_dir)
    path = store.token_path("huge")
    path.write_bytes(
        b'{"access_token": "act.x", "refresh_token": "rft.x", "expires_at": 1' + b"0" * 400 + b"}"
    )
    ok = httpx.MockTransport(lambda _: httpx.Response(200, json={"data": {}, "error": {"code": "ok"}}))
    token_http = httpx.Client(transport=ok)
    client = TikTokOAuth2Client("test-key", "secret", http_client=token_http)
    try:
        # A TokenStoreError or a refresh error would do; an OverflowError does not.
        with (
            httpx.Client(auth=TikTokAuth(client, store, "huge"), transport=ok) as http,
            contextlib.suppress(TikTokOAuthError),
        ):
            http.get("https://open.tiktokapis.com/v2/user/info/?fields=open_id")
    finally:
        path.unlink()
        token_http.close()
