"""No client secret, access token or refresh token in any log line, error, repr or CLI output.

Every test runs a part of the flow against a served `FakeTikTok` (real HTTP on loopback, so httpx, httpcore
and urllib3 log what they really log) with every logger at DEBUG, and collects: each log record (message
and traceback), each exception's `str`, `repr` and formatted traceback (with its cause chain), and the `str`
and `repr` of every client, token, store and auth object it touched. The secrets it looks for are the
client secret, every access and refresh token the fake issued (read off its answers as they go out, and
off `fake.token_requests`), and every authorization code and PKCE verifier used.

Third-party loggers are scanned too, deliberately: a library leaking a token in a request line would be a
finding to report, not something to filter out.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests

from tests._redis import free_port
from tests._workers import FaultFront
from tests.conftest import SECRET
from tests.test_fault_matrix import ROWS, Faults, Subject
from tiktok_oauth import (
    AsyncTikTokOAuth2Client,
    AuthorizationDeniedError,
    ReauthorizationRequiredError,
    StateMismatchError,
    TikTokAuth,
    TikTokOAuth2Client,
    TikTokOAuthError,
    TikTokToken,
    TokenStoreError,
    _protocol,
)
from tiktok_oauth.stores import FileTokenStore, MemoryTokenStore
from tiktok_oauth.testing import FakeTikTok

LOGGERS = ["", "httpx", "httpcore", "urllib3", "requests", "filelock", "redis", "asyncio", "tiktok_oauth"]
#: Any token shaped like the fake's (TikTok's prefix, then 40 alphanumerics); masked ones (`act.***`) do not match.
TOKEN_SHAPE = re.compile(r"\b(?:act|rft|clt)\.[A-Za-z0-9]{16,}")
REDIRECT_URI = "http://127.0.0.1:8765/callback"


class Scan:
    """What the test saw (texts) and what must not be in it (secrets)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.secrets: set[str] = {SECRET}
        self.texts: list[tuple[str, str]] = []

    def watch(self, fake: FakeTikTok) -> FakeTikTok:
        """Record every token `fake` hands out, as its answers leave it."""
        handle = fake.handle

        def recording_handle(*args: Any) -> Any:
            answer = handle(*args)
            if answer is not None:
                self._harvest(answer.body)
            return answer

        fake.handle = recording_handle  # type: ignore[method-assign]
        self.secrets.add(fake.client_secret)
        self.fakes = [*getattr(self, "fakes", []), fake]
        return fake

    def _harvest(self, body: bytes) -> None:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return
        if isinstance(data, dict):
            for name in ("access_token", "refresh_token"):
                if isinstance(data.get(name), str) and data[name]:
                    self.secrets.add(data[name])

    def see(self, *objects: object) -> None:
        """Collect the `str` and `repr` of each object (and for an exception, its whole traceback)."""
        for obj in objects:
            self.texts.append((f"str({type(obj).__name__})", str(obj)))
            self.texts.append((f"repr({type(obj).__name__})", repr(obj)))
            if isinstance(obj, BaseException):
                self.texts.append(
                    (f"traceback({type(obj).__name__})", "".join(traceback.format_exception(obj)))
                )

    def raised(self, exception_type: type[BaseException], function: Any, *args: Any, **kwargs: Any) -> Any:
        """Call `function`, which must raise `exception_type`; collect the exception."""
        with pytest.raises(exception_type) as caught:
            function(*args, **kwargs)
        self.see(caught.value)
        return caught.value

    def check(self) -> None:
        for fake in getattr(self, "fakes", []):
            for form in fake.token_requests:
                for name in ("refresh_token", "code", "code_verifier", "client_secret"):
                    if form.get(name):
                        self.secrets.add(form[name])
        # caplog keeps records per test phase: this runs in the fixture's teardown, so ask for all of them.
        records = [
            *self.caplog.get_records("setup"),
            *self.caplog.get_records("call"),
            *self.caplog.records,
        ]
        for record in records:
            self.texts.append((f"log {record.name}", record.getMessage()))
            if record.exc_info:
                self.texts.append(
                    (f"log {record.name} traceback", "".join(traceback.format_exception(*record.exc_info)))
                )
        assert len(self.secrets) > 1
        self.loggers = collections.Counter(record.name.split(".")[0] for record in records)
        leaks = [
            (where, secret[:12] + "...")
            for where, text in self.texts
            for secret in self.secrets
            if secret and secret in text
        ]
        shaped = [
            (where, match[:8] + "...") for where, text in self.texts for match in TOKEN_SHAPE.findall(text)
        ]
        assert not leaks, f"secrets leaked: {leaks}"
        assert not shaped, f"token-shaped strings leaked: {shaped}"


@pytest.fixture
def scan(caplog: pytest.LogCaptureFixture) -> Iterator[Scan]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    result = Scan(caplog)
    yield result
    result.check()


@pytest.fixture
def fake(scan: Scan) -> FakeTikTok:
    return scan.watch(FakeTikTok(client_key="test-key", client_secret=SECRET))


@pytest.fixture
def base_url(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as url:
        yield url


@pytest.fixture
def client(fake: FakeTikTok, base_url: str) -> Iterator[TikTokOAuth2Client]:
    with TikTokOAuth2Client(
        "test-key", SECRET, redirect_uri=REDIRECT_URI, timeout=2.0, **fake.endpoints(base_url)
    ) as made:
        yield made


def _login(scan: Scan, fake: FakeTikTok, client: TikTokOAuth2Client) -> TikTokToken:
    verifier = client.generate_code_verifier()
    scan.secrets.add(verifier)
    url, state = client.create_authorization_url(code_verifier=verifier)
    callback = fake.authorize(url)
    scan.secrets.add(parse_qs(urlsplit(callback).query)["code"][0])
    return client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)


def test_login_refresh_and_every_driver_log_nothing_secret(
    scan: Scan, fake: FakeTikTok, base_url: str, client: TikTokOAuth2Client, tmp_path: Path
) -> None:
    user_info = fake.user_info_url(base_url)
    token = _login(scan, fake, client)
    store = FileTokenStore(tmp_path / "tokens")
    store.set("alice", token)
    refreshed = client.refresh_token(token)
    store.set("alice", refreshed)
    scan.see(client, token, refreshed, store, store.get("alice"))

    auth = TikTokAuth(client, store, "alice")
    with requests.Session() as session:
        session.auth = auth
        assert session.get(user_info, timeout=5).status_code == 200
        fake.expire_access_tokens()  # a 401 access_token_invalid, a refresh and a retry
        assert session.get(user_info, timeout=5).status_code == 200
    with httpx.Client(auth=auth) as http:
        assert http.get(user_info).status_code == 200
        fake.expire_access_tokens()
        assert http.get(user_info).status_code == 200
    scan.see(auth, store.get("alice"))

    async def async_flow() -> None:
        async with AsyncTikTokOAuth2Client("test-key", SECRET, **fake.endpoints(base_url)) as aclient:
            async_auth = TikTokAuth(aclient, store, "alice")
            async with httpx.AsyncClient(auth=async_auth) as http:
                assert (await http.get(user_info)).status_code == 200
                fake.expire_access_tokens()
                assert (await http.get(user_info)).status_code == 200
            scan.see(aclient, async_auth)

    asyncio.run(async_flow())

    client_auth = TikTokAuth(client, MemoryTokenStore(), "app", client_credentials=True)
    with httpx.Client(auth=client_auth) as http:
        http.get(user_info)  # a client token gets 401 here; what matters is what was logged
    scan.see(client_auth, client_auth.store, client_auth.store.get("app"))

    last = store.get("alice")
    assert last is not None
    client.revoke_token(last)
    with httpx.Client(auth=TikTokAuth(client, store, "alice")) as http:
        last["expires_at"] = 0
        store.set("alice", last)
        scan.raised(ReauthorizationRequiredError, http.get, user_info)
    assert fake.grant_count("refresh_token") >= 4


@pytest.mark.parametrize("target", ["client", "auth+file"])
def test_every_token_endpoint_fault_logs_nothing_secret(
    scan: Scan, tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_protocol, "BACKOFF", (0.01, 0.01))
    fake = scan.watch(FakeTikTok(client_key="test-key", client_secret=SECRET))
    with FaultFront(fake, lost_response_delay=1.0) as front:
        for n, row in enumerate(ROWS):
            subject = Subject(target, fake, front, tmp_path / str(n))
            try:
                scan.secrets.update(filter(None, [subject.token.access_token, subject.token.refresh_token]))
                faults = Faults(fake, front)
                row.inject(faults)
                scan.raised(TikTokOAuthError, subject.act)
                faults.clear(subject.counter.count)
                try:
                    subject.act()
                except TikTokOAuthError as error:
                    scan.see(error)
                scan.see(subject.client, subject.store, subject.token)
            finally:
                subject.close()


def test_callback_errors_log_nothing_secret(scan: Scan, fake: FakeTikTok, client: TikTokOAuth2Client) -> None:
    url, state = client.create_authorization_url(code_verifier=client.generate_code_verifier())
    callback = fake.authorize(url)
    scan.secrets.add(parse_qs(urlsplit(callback).query)["code"][0])
    scan.raised(StateMismatchError, client.fetch_token, authorization_response=callback, state=state + "x")
    denied_url, denied_state = client.create_authorization_url()
    denied = fake.authorize(denied_url, deny=True)
    scan.raised(
        AuthorizationDeniedError, client.fetch_token, authorization_response=denied, state=denied_state
    )
    # The code is used (and dies) once; a second exchange and a made-up refresh token are refused.
    verifier = client.generate_code_verifier()
    url, state = client.create_authorization_url(code_verifier=verifier)
    callback = fake.authorize(url)
    client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    scan.raised(TikTokOAuthError, client.fetch_token, authorization_response=callback, state=state)
    scan.raised(
        ReauthorizationRequiredError, client.refresh_token, "rft.madeUpButSecretLooking0123456789abcd"
    )
    scan.secrets.add("rft.madeUpButSecretLooking0123456789abcd")


def test_store_errors_log_nothing_secret(
    scan: Scan, fake: FakeTikTok, client: TikTokOAuth2Client, tmp_path: Path
) -> None:
    token = _login(scan, fake, client)
    store = FileTokenStore(tmp_path / "tokens")
    store.set("alice", token)
    path = store.token_path("alice")
    path.write_bytes(path.read_bytes()[:-3])  # a torn file, full of secrets
    scan.raised(TokenStoreError, store.get, "alice")
    path.write_bytes(b'{"access_token": "' + token.access_token.encode() + b'", "expires_in": Infinity}')
    scan.raised(TokenStoreError, store.get, "alice")
    with httpx.Client(auth=TikTokAuth(client, store, "alice")) as http:
        scan.raised(TokenStoreError, http.get, fake.user_info_url())
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    scan.raised(TokenStoreError, FileTokenStore(not_a_directory).set, "alice", token)
    unserialisable = TikTokToken({**token, "extra": object()})
    scan.raised(TokenStoreError, store.set, "bob", unserialisable)
    with httpx.Client(auth=TikTokAuth(client, MemoryTokenStore(), "nobody")) as http:
        scan.raised(ReauthorizationRequiredError, http.get, fake.user_info_url())

    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tiktok_oauth.stores.redis import RedisTokenStore

    dead = redis.Redis(
        host="127.0.0.1",
        port=free_port(),
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        redis_store = RedisTokenStore(dead)
        scan.raised(TokenStoreError, redis_store.set, "alice", token)
        scan.raised(TokenStoreError, redis_store.get, "alice")
        with httpx.Client(auth=TikTokAuth(client, redis_store, "alice")) as http:
            scan.raised(TokenStoreError, http.get, fake.user_info_url())
        scan.see(redis_store)
    finally:
        dead.close()
    scan.see(store, token)


def test_the_cli_demo_prints_and_logs_nothing_secret(
    scan: Scan, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = pytest.importorskip("tiktok_oauth.cli")
    made: list[FakeTikTok] = []
    real_init = FakeTikTok.__init__

    def init(self: FakeTikTok, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        made.append(scan.watch(self))

    monkeypatch.setattr(FakeTikTok, "__init__", init)
    assert cli.main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert made, "the demo did not use a FakeTikTok"
    assert made[0].grant_count("refresh_token") >= 1
    scan.texts += [("demo stdout", out), ("demo stderr", err)]


def test_the_scan_catches_a_leak_in_a_log_line_a_repr_or_a_token_shape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for leak in ["a log line with the " + SECRET, "Bearer act.AbCdEf0123456789AbCdEf0123456789"]:
        scan = Scan(caplog)
        scan.secrets.add("rft.known")
        logging.getLogger("httpx").debug("%s", leak)
        with pytest.raises(AssertionError, match="leaked"):
            scan.check()
        caplog.clear()
    scan = Scan(caplog)
    scan.secrets.add("rft.known")
    scan.see(ValueError("rft.known"))
    with pytest.raises(AssertionError, match="secrets leaked"):
        scan.check()
