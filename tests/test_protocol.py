"""TikTok's quirks, one test per TIKTOK.md row, against the sans-I/O core (no network)."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc6749.errors import InsecureTransportError

from tiktok_oauth import (
    AuthorizationDeniedError,
    RateLimitedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokOAuthError,
    TikTokServerError,
    TikTokToken,
)
from tiktok_oauth import _protocol as p

CREDS = ("key-123", "secret-XYZZY-do-not-leak")


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def auth_url(**kwargs: object) -> str:
    params: dict[str, object] = {
        "client_key": "key-123",
        "redirect_uri": "https://example.com/cb",
        "scope": ("user.info.basic", "video.list"),
        "state": "s" * 43,
    }
    params.update(kwargs)
    return p.authorization_url(p.AUTHORIZE_URL, **params)  # type: ignore[arg-type]


def reply(
    body: object = None, status: int = 200, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> p.Reply:
    content = raw if raw is not None else json.dumps(body).encode()
    return p.Reply(status, headers or {"content-type": "application/json"}, content)


def refresh() -> p.TokenCall:
    return p.refresh_call(p.TOKEN_URL, CREDS, "rft.old")


TOKEN_BODY = {
    "access_token": "act.example12345Example12345Example",
    "expires_in": 86400,
    "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344",
    "refresh_expires_in": 31536000,
    "refresh_token": "rft.example12345Example12345Example",
    "scope": "user.info.basic,video.list",
    "token_type": "Bearer",
}


# -- row 1: client_key, never client_id ---------------------------------------------------------------


def test_row01_authorize_url_sends_client_key_not_client_id() -> None:
    q = query(auth_url(extra={"client_id": "nope"}))
    assert q["client_key"] == ["key-123"]
    assert "client_id" not in q


def test_row01_token_requests_send_client_key_not_client_id() -> None:
    for call in (
        p.authorization_code_call(
            p.TOKEN_URL, CREDS, code="c", redirect_uri="https://x/", code_verifier=None
        ),
        refresh(),
        p.client_credentials_call(p.TOKEN_URL, CREDS),
        p.revoke_call(p.REVOKE_URL, CREDS, "act.x"),
    ):
        assert call.data["client_key"] == "key-123"
        assert "client_id" not in call.data


# -- row 2: credentials in the body, never Basic ---------------------------------------------------


def test_row02_client_secret_only_in_form_body() -> None:
    call = refresh()
    assert call.data["client_secret"] == CREDS[1]
    assert "Authorization" not in call.headers
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert CREDS[1] not in call.url
    assert CREDS[1] not in repr(call)


# -- row 3: comma-separated scopes -----------------------------------------------------------------


def test_row03_scope_is_comma_joined_in_the_request() -> None:
    assert query(auth_url())["scope"] == ["user.info.basic,video.list"]
    assert query(auth_url(scope="user.info.basic, video.list"))["scope"] == ["user.info.basic,video.list"]


def test_row03_scope_is_split_on_commas_in_the_response() -> None:
    token = p.token_from(refresh(), reply(TOKEN_BODY), 1000.0)
    assert token.scopes == frozenset({"user.info.basic", "video.list"})


# -- row 4: the callback's `scopes` may be a subset; the token response is trusted ------------------


def test_row04_token_scopes_come_from_the_token_response_not_the_callback() -> None:
    body = {**TOKEN_BODY, "scope": "user.info.basic"}
    call = p.authorization_code_call(
        p.TOKEN_URL, CREDS, code="c", redirect_uri="https://x/", code_verifier=None
    )
    assert p.token_from(call, reply(body), 0).scopes == {"user.info.basic"}


# -- rows 5 and 6: hex PKCE on every platform ------------------------------------------------------


def test_row05_code_challenge_is_lowercase_hex_sha256() -> None:
    verifier = p.generate_code_verifier()
    q = query(auth_url(code_verifier=verifier))
    assert q["code_challenge"] == [hashlib.sha256(verifier.encode()).hexdigest()]
    assert q["code_challenge"][0] == q["code_challenge"][0].lower()
    assert len(q["code_challenge"][0]) == 64
    assert q["code_challenge_method"] == ["S256"]


def test_row05_code_verifier_is_64_unreserved_characters_and_new_each_time() -> None:
    verifiers = {p.generate_code_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    for verifier in verifiers:
        assert len(verifier) == 64
        assert set(verifier) <= set(p.UNRESERVED)


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "a" * 42 + "é", "a" * 43 + " "])
def test_row05_a_malformed_code_verifier_is_refused(verifier: str) -> None:
    with pytest.raises(ValueError, match="43 to 128"):
        p.code_challenge(verifier)


def test_row06_pkce_is_available_for_a_web_redirect_uri() -> None:
    q = query(
        auth_url(redirect_uri="https://app.example.com/callback", code_verifier=p.generate_code_verifier())
    )
    assert "code_challenge" in q


def test_row06_code_verifier_is_sent_with_the_code() -> None:
    call = p.authorization_code_call(
        p.TOKEN_URL, CREDS, code="c", redirect_uri="https://x/", code_verifier="v" * 64
    )
    assert call.data["code_verifier"] == "v" * 64


# -- row 7: the same redirect_uri -------------------------------------------------------------------


def test_row07_token_request_sends_the_redirect_uri_as_given() -> None:
    uri = "https://app.example.com/cb/"
    call = p.authorization_code_call(p.TOKEN_URL, CREDS, code="c", redirect_uri=uri, code_verifier=None)
    assert call.data["redirect_uri"] == uri


# -- row 8: errors with HTTP 200, log_id kept -------------------------------------------------------


def test_row08_error_body_with_http_200_is_an_error_with_log_id() -> None:
    body = {
        "error": "invalid_request",
        "error_description": "The request parameters are malformed.",
        "log_id": "LOG1",
    }
    error = p.error_for(refresh(), reply(body, 200))
    assert type(error) is TikTokOAuthError
    assert error.error == "invalid_request"
    assert error.log_id == "LOG1"
    assert error.status_code == 200
    assert "LOG1" in str(error)


def test_row08_log_id_falls_back_to_the_response_header() -> None:
    error = p.error_for(refresh(), reply({"error": "invalid_client"}, 200, {"x-tt-logid": "HDR"}))
    assert error is not None
    assert error.log_id == "HDR"


# -- row 9: open_id and refresh_expires_in, absolute expiries --------------------------------------


def test_row09_token_keeps_open_id_and_absolute_expiries() -> None:
    token = p.token_from(refresh(), reply(TOKEN_BODY), 1_000_000.0)
    assert token.open_id == TOKEN_BODY["open_id"]
    assert token["expires_at"] == 1_000_000 + 86400
    assert token["refresh_expires_at"] == 1_000_000 + 31536000
    assert token.refresh_expires_at == 1_000_000 + 31536000.0


# -- row 10: rotating refresh tokens ------------------------------------------------------------------


def test_row10_refresh_returns_the_new_refresh_token() -> None:
    body = {**TOKEN_BODY, "refresh_token": "rft.new"}
    assert p.token_from(refresh(), reply(body), 0).refresh_token == "rft.new"


def test_row10_refresh_without_refresh_token_keeps_the_old_one_and_its_expiry() -> None:
    previous = TikTokToken({**TOKEN_BODY, "refresh_token": "rft.old", "refresh_expires_at": 9_999_999_999})
    call = p.refresh_call(p.TOKEN_URL, CREDS, previous)
    body = {"access_token": "act.new", "expires_in": 60, "token_type": "Bearer"}
    token = p.token_from(call, reply(body), 0)
    assert token.refresh_token == "rft.old"
    assert token.refresh_expires_at == 9_999_999_999
    assert token.open_id == previous.open_id
    assert token.scopes == previous.scopes


# -- row 11: lifetimes from the response ---------------------------------------------------------------


@pytest.mark.parametrize(("expires_in", "refresh_expires_in"), [(86400, 31536000), (7200, 15552000), (5, 10)])
def test_row11_lifetimes_are_taken_from_the_response(expires_in: int, refresh_expires_in: int) -> None:
    body = {**TOKEN_BODY, "expires_in": expires_in, "refresh_expires_in": refresh_expires_in}
    token = p.token_from(refresh(), reply(body), 100.0)
    assert token.expires_at == 100 + expires_in
    assert token.refresh_expires_at == 100 + refresh_expires_in


@pytest.mark.parametrize("value", ["soon", True, [1], {"a": 1}])
def test_row11_a_malformed_lifetime_is_a_server_error(value: object) -> None:
    with pytest.raises(TikTokServerError, match="expires_in"):
        p.token_from(refresh(), reply({**TOKEN_BODY, "expires_in": value}), 0)


# -- row 12: no scope on refresh ---------------------------------------------------------------------


def test_row12_refresh_is_not_sent_scope() -> None:
    assert set(refresh().data) == {"client_key", "client_secret", "grant_type", "refresh_token"}


def test_row12_an_expired_refresh_token_is_refused_without_a_request() -> None:
    token = TikTokToken({**TOKEN_BODY, "refresh_expires_at": 1})
    with pytest.raises(ReauthorizationRequiredError, match="expired"):
        p.refresh_call(p.TOKEN_URL, CREDS, token)


def test_row12_a_token_without_refresh_token_cannot_be_refreshed() -> None:
    with pytest.raises(ReauthorizationRequiredError):
        p.refresh_call(p.TOKEN_URL, CREDS, TikTokToken({"access_token": "clt.x", "expires_in": 10}))


# -- row 13: revoke the access token, no hint, empty success ---------------------------------------


def test_row13_revoke_sends_the_access_token_without_hint() -> None:
    token = TikTokToken(TOKEN_BODY)
    call = p.revoke_call(p.REVOKE_URL, CREDS, token)
    assert call.data["token"] == TOKEN_BODY["access_token"]
    assert "token_type_hint" not in call.data


@pytest.mark.parametrize("raw", [b"", b"{}", b"  "])
def test_row13_revoke_success_is_an_empty_body_or_empty_object(raw: bytes) -> None:
    assert p.error_for(p.revoke_call(p.REVOKE_URL, CREDS, "act.x"), reply(raw=raw)) is None


# -- row 14: the data API's error object even on success -------------------------------------------


def test_row14_error_object_with_code_ok_is_success() -> None:
    body = {**TOKEN_BODY, "error": {"code": "ok", "message": "", "log_id": "L"}}
    assert p.error_for(refresh(), reply(body)) is None


def test_row14_error_object_with_other_code_is_an_error() -> None:
    body = {"data": {}, "error": {"code": "invalid_params", "message": "bad", "log_id": "L"}}
    error = p.error_for(p.client_credentials_call(p.TOKEN_URL, CREDS), reply(body))
    assert error is not None
    assert error.error == "invalid_params"


# -- row 15: rate limits ------------------------------------------------------------------------------


def test_row15_rate_limit_exceeded_is_rate_limited_with_retry_after() -> None:
    error = p.error_for(refresh(), reply({"error": "rate_limit_exceeded"}, 429, {"retry-after": "7"}))
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 7.0
    assert error.error == "rate_limit_exceeded"


def test_row15_http_429_decides_the_class_even_with_another_oauth_error() -> None:
    error = p.error_for(refresh(), reply({"error": "invalid_grant"}, 429))
    assert isinstance(error, RateLimitedError)
    assert error.error == "invalid_grant"
    assert error.retry_after is None


# -- row 16: codes with * and ! decoded once --------------------------------------------------------


def test_row16_code_is_url_decoded_exactly_once() -> None:
    callback = "https://localhost/?code=abc%2A0%215413%2525&scopes=user.info.basic&state=xyz"
    assert p.code_from_callback(callback, "xyz") == "abc*0!5413%25"


# -- row 17: disable_auto_auth -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "sent"), [(True, ["1"]), (False, ["0"]), (None, None)])
def test_row17_disable_auto_auth_is_sent_as_one_or_zero(value: bool | None, sent: list[str] | None) -> None:
    assert query(auth_url(disable_auto_auth=value)).get("disable_auto_auth") == sent


# -- row 18: client access tokens -------------------------------------------------------------------


def test_row18_client_access_token_has_no_refresh_token() -> None:
    body = {"access_token": "clt.example", "expires_in": 7200, "token_type": "Bearer"}
    token = p.token_from(p.client_credentials_call(p.TOKEN_URL, CREDS), reply(body), 0)
    assert token.access_token == "clt.example"
    assert token.refresh_token is None
    assert token.expires_at == 7200


# -- the callback ------------------------------------------------------------------------------------


def test_callback_with_a_different_state_raises_state_mismatch() -> None:
    with pytest.raises(StateMismatchError):
        p.code_from_callback("https://localhost/?code=c&state=evil", "good")


def test_callback_without_state_raises_state_mismatch() -> None:
    with pytest.raises(StateMismatchError):
        p.code_from_callback("https://localhost/?code=c", "good")


def test_callback_with_error_raises_authorization_denied() -> None:
    with pytest.raises(AuthorizationDeniedError) as caught:
        p.code_from_callback(
            "https://localhost/?error=access_denied&error_description=User+said+no&state=s", "s"
        )
    assert caught.value.error == "access_denied"
    assert caught.value.description == "User said no"


def test_callback_state_is_checked_before_the_error() -> None:
    with pytest.raises(StateMismatchError):
        p.code_from_callback("https://localhost/?error=access_denied&state=evil", "s")


def test_callback_without_code_is_an_oauth_error() -> None:
    with pytest.raises(TikTokOAuthError, match="no code"):
        p.code_from_callback("https://localhost/?state=s", "s")


def test_state_is_long_and_random() -> None:
    states = {p.generate_state() for _ in range(50)}
    assert len(states) == 50
    assert all(len(s) >= 22 for s in states)  # >= 128 bits of 62 symbols


# -- transport security ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://open.tiktokapis.com/",
        "http://127.0.0.1:8000/",
        "http://127.5.6.7/",
        "http://[::1]:9/",
        "http://localhost:1/",
    ],
)
def test_https_or_loopback_http_is_accepted(url: str) -> None:
    assert p.check_transport(url) == url


@pytest.mark.parametrize(
    "url", ["http://open.tiktokapis.com/", "http://10.0.0.1/", "ftp://x/", "http://localhost.evil.com/"]
)
def test_plain_http_to_other_hosts_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # Authlib's switch has no effect on us
    with pytest.raises(InsecureTransportError):
        p.check_transport(url)


# -- response classification ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "raw", "cls"),
    [
        (500, b'{"error":"server_error"}', TikTokServerError),
        (502, b"<html><body>Bad Gateway</body></html>", TikTokServerError),
        (503, b"", TikTokServerError),
        (200, b"<html>TikTok error page</html>", TikTokServerError),
        (200, b"", TikTokServerError),
        (200, b"[]", TikTokServerError),
        (200, b"null", TikTokServerError),
        (200, b"\xff\xfe\x00garbage", TikTokServerError),
        (200, b'{"error":"temporarily_unavailable"}', TikTokServerError),
        (429, b"slow down", RateLimitedError),
        (400, b'{"error":"invalid_client","error_description":"bad key"}', TikTokOAuthError),
        (200, b'{"error":"invalid_grant"}', ReauthorizationRequiredError),
        (401, b'{"error":"access_token_invalid"}', ReauthorizationRequiredError),
        (400, b'{"message":"weird"}', TikTokOAuthError),
    ],
)
def test_refresh_replies_are_classified(status: int, raw: bytes, cls: type[TikTokOAuthError]) -> None:
    error = p.error_for(refresh(), reply(raw=raw, status=status))
    assert type(error) is cls


def test_invalid_grant_on_a_code_exchange_is_a_plain_oauth_error() -> None:
    call = p.authorization_code_call(
        p.TOKEN_URL, CREDS, code="c", redirect_uri="https://x/", code_verifier=None
    )
    error = p.error_for(call, reply({"error": "invalid_grant"}))
    assert type(error) is TikTokOAuthError


def test_a_success_without_access_token_is_a_server_error() -> None:
    with pytest.raises(TikTokServerError, match="no access_token"):
        p.token_from(refresh(), reply({"token_type": "Bearer"}), 0)


def test_retry_after_as_an_http_date_is_understood() -> None:
    error = p.error_for(
        refresh(), reply(raw=b"", status=429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    assert isinstance(error, RateLimitedError)
    assert error.retry_after == 0.0


# -- legacy v1 envelope ------------------------------------------------------------------------------


def test_v1_envelope_error_is_unwrapped() -> None:
    body = {
        "data": {"error_code": 10010, "description": "refresh_token expired", "log_id": "V1"},
        "message": "error",
    }
    error = p.error_for(refresh(), reply(body))
    assert isinstance(error, ReauthorizationRequiredError)
    assert error.error == "invalid_grant"
    assert error.log_id == "V1"


def test_v1_envelope_success_is_unwrapped() -> None:
    body = {"data": {**TOKEN_BODY, "error_code": 0, "description": ""}, "message": "success"}
    assert p.error_for(refresh(), reply(body)) is None
    token = p.token_from(refresh(), reply(body), 0)
    assert token.access_token == TOKEN_BODY["access_token"]
    assert "error_code" not in token


def test_v1_unknown_error_code_keeps_the_number() -> None:
    body = {"data": {"error_code": 12345, "description": "?"}, "message": "error"}
    error = p.error_for(p.client_credentials_call(p.TOKEN_URL, CREDS), reply(body))
    assert error is not None
    assert error.error == "v1_error_12345"


# -- the retry conversation ----------------------------------------------------------------------------


def run(call: p.TokenCall, outcomes: list[p.Reply | Exception]) -> tuple[object, list[object]]:
    steps: list[object] = []
    conversation = p.conversation(call)
    outcome: p.Outcome = None
    try:
        while True:
            step = conversation.send(outcome)
            steps.append(step)
            outcome = outcomes.pop(0) if isinstance(step, p.Send) else None
    except StopIteration as done:
        return done.value, steps
    except TikTokOAuthError as error:
        return error, steps


def test_a_5xx_is_retried_then_succeeds() -> None:
    result, steps = run(refresh(), [reply(raw=b"", status=503), reply(TOKEN_BODY)])
    assert isinstance(result, TikTokToken)
    assert [type(s) for s in steps] == [p.Send, p.Sleep, p.Send]


def test_retries_stop_after_three_attempts() -> None:
    result, steps = run(refresh(), [reply(raw=b"", status=502)] * 3)
    assert isinstance(result, TikTokServerError)
    assert sum(isinstance(s, p.Send) for s in steps) == p.MAX_ATTEMPTS == 3


def test_a_refresh_is_not_retried_after_a_read_timeout() -> None:
    import httpx

    result, steps = run(refresh(), [httpx.ReadTimeout("slow"), reply(TOKEN_BODY)])
    assert isinstance(result, TikTokServerError)
    assert result.retryable is False
    assert len(steps) == 1


def test_a_refresh_is_retried_after_a_connect_error() -> None:
    import httpx

    result, _ = run(refresh(), [httpx.ConnectError("refused"), reply(TOKEN_BODY)])
    assert isinstance(result, TikTokToken)


def test_a_client_token_is_retried_after_a_read_timeout() -> None:
    import httpx

    call = p.client_credentials_call(p.TOKEN_URL, CREDS)
    result, _ = run(call, [httpx.ReadTimeout("slow"), reply({"access_token": "clt.x", "expires_in": 1})])
    assert isinstance(result, TikTokToken)


def test_a_429_with_a_short_retry_after_is_retried_after_that_delay() -> None:
    result, steps = run(
        refresh(), [reply(raw=b"", status=429, headers={"retry-after": "1"}), reply(TOKEN_BODY)]
    )
    assert isinstance(result, TikTokToken)
    assert steps[1] == p.Sleep(1.0)


def test_a_429_without_retry_after_is_reported_at_once() -> None:
    result, steps = run(refresh(), [reply(raw=b"", status=429)])
    assert isinstance(result, RateLimitedError)
    assert len(steps) == 1


def test_an_oauth_error_is_not_retried() -> None:
    result, steps = run(refresh(), [reply({"error": "invalid_grant"})])
    assert isinstance(result, ReauthorizationRequiredError)
    assert len(steps) == 1


def test_an_unknown_exception_propagates() -> None:
    with pytest.raises(KeyError):
        run(refresh(), [KeyError("bug")])


def test_a_5xx_with_a_long_retry_after_is_reported_with_it() -> None:
    result, steps = run(refresh(), [reply(raw=b"", status=503, headers={"retry-after": "120"})])
    assert isinstance(result, TikTokServerError)
    assert result.retry_after == 120.0
    assert len(steps) == 1


def test_a_5xx_with_a_short_retry_after_waits_that_long() -> None:
    result, steps = run(
        refresh(), [reply(raw=b"", status=503, headers={"retry-after": "1.5"}), reply(TOKEN_BODY)]
    )
    assert isinstance(result, TikTokToken)
    assert steps[1] == p.Sleep(1.5)


# -- the one error reader: plain values in, plain values out ----------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b"[1, 2]", None),
        (b"<html>busy</html>", None),
        (b"", None),
        (b"\xff\xfe", None),
        (b"[" * 100_000, None),
    ],
)
def test_json_object_is_a_dict_or_none(content: bytes, expected: object) -> None:
    assert p.json_object(content) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, p.ErrorFields(None, "", None)),
        ({"access_token": "act.x", "log_id": "L"}, p.ErrorFields(None, "", "L")),
        (
            {"error": "invalid_grant", "error_description": "expired", "log_id": "L1"},
            p.ErrorFields("invalid_grant", "expired", "L1"),
        ),
        ({"error": "", "error_description": "ignored"}, p.ErrorFields(None, "", None)),
        (
            {"data": {}, "error": {"code": "ok", "message": "", "log_id": "L2"}},
            p.ErrorFields("ok", "", "L2"),
        ),
        (
            {"data": {}, "error": {"code": "scope_not_authorized", "message": "no"}, "log_id": "outer"},
            p.ErrorFields("scope_not_authorized", "no", "outer"),
        ),
        ({"error": {"message": "no code"}}, p.ErrorFields(None, "no code", None)),
    ],
)
def test_error_fields_reads_both_envelopes(body: dict[str, object] | None, expected: p.ErrorFields) -> None:
    assert p.error_fields(body) == expected


def test_error_fields_reads_the_v1_envelope_once_unwrapped() -> None:
    body = {"data": {"error_code": 10010, "description": "expired", "log_id": "V1"}, "message": "error"}
    assert p.error_fields(p.unwrap_v1(body)) == p.ErrorFields("invalid_grant", "expired", "V1")


@pytest.mark.parametrize(("code", "failed"), [(None, False), ("ok", False), ("invalid_grant", True)])
def test_only_a_code_other_than_ok_is_a_failure(code: str | None, *, failed: bool) -> None:
    assert p.ErrorFields(code, "", None).failed is failed


def test_the_log_id_header_stands_in_for_a_body_without_one() -> None:
    assert p.header_log_id({"x-tt-logid": "H"}) == "H"
    assert p.header_log_id({"x-tt-logid": ""}) is None
    assert p.header_log_id({}) is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({}, None), ({"retry-after": "2"}, 2.0), ({"retry-after": "-5"}, 0.0), ({"retry-after": "soon"}, None)],
)
def test_retry_after_reads_seconds(headers: dict[str, str], seconds: float | None) -> None:
    assert p.retry_after(headers) == seconds


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (429, None, RateLimitedError),
        (200, "rate_limit_exceeded", RateLimitedError),
        (503, None, TikTokServerError),
        (200, "temporarily_unavailable", TikTokServerError),
        (400, "internal_error", TikTokServerError),
        (400, "invalid_grant", None),
        (200, None, None),
    ],
)
def test_transient_errors_are_told_by_status_or_code(
    status: int, code: str | None, cls: type[TikTokOAuthError] | None
) -> None:
    error = p.transient_error(
        reply({}, status=status, headers={"retry-after": "1"}), code, "", "L", server_message="failed"
    )
    if cls is None:
        assert error is None
        return
    assert type(error) is cls
    assert (error.error, error.log_id, error.status_code, error.retry_after) == (code, "L", status, 1.0)


def test_a_transient_error_without_a_description_gets_the_callers_message() -> None:
    error = p.transient_error(
        reply({}, status=502), None, "", None, server_message="TikTok failed (HTTP 502)"
    )
    assert error is not None
    assert error.description == "TikTok failed (HTTP 502)"


@pytest.mark.parametrize(
    ("status", "content", "rejected"),
    [
        (401, b'{"error": {"code": "access_token_invalid", "message": "", "log_id": "x"}}', True),
        (401, b'{"error": "access_token_invalid"}', True),
        (401, b'{"code": "access_token_invalid", "message": "expired"}', True),
        (401, b'{"error": {"code": "scope_not_authorized"}}', False),
        (401, b"<html>401</html>", False),
        (403, b'{"error": {"code": "access_token_invalid"}}', False),
    ],
)
def test_token_rejected_is_only_a_401_access_token_invalid(
    status: int, content: bytes, *, rejected: bool
) -> None:
    assert p.token_rejected(status, content) is rejected
