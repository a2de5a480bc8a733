"""No client secret, access token or refresh token in any log line, error, repr or CLI output.

Every test runs a part of the flow against a served `FakeTikTok` (real HTTP on loopback, so httpx, httpcore
and urllib3 log what they really log) with every logger at DEBUG, and collects: each log record (message
and traceback), each exception's `str`, `repr` and formatted traceback (with its cause chain), and the `str`
and `repr` of every client, token, store and auth object it touched. The secrets it looks for are the
client secret, every access and refresh token the fake issued (read off its answers as they go out, and
off `fake.token_requests`), every authorization code and PKCE verifier used, and for `EncryptedTokenStore`
every Fernet key given (as text and as the raw signing and encryption keys it encodes) and every ciphertext
it wrote. Anything shaped like an issued token or a Fernet token is a leak too.

Third-party loggers are scanned too, deliberately: a library leaking a token in a request line would be a
finding to report, not something to filter out.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import inspect
import json
import logging
import re
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from cryptography.fernet import Fernet

from tests._redis import RedisServer, free_port
from tests._workers import FaultFront
from tests.conftest import SECRET
from tests.stores._sql_backends import unique_table
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
from tiktok_oauth.stores.encrypted import AsyncEncryptedTokenStore, EncryptedTokenStore
from tiktok_oauth.stores.sql import AsyncSQLTokenStore, SQLTokenStore
from tiktok_oauth.testing import FakeTikTok

LOGGERS = [
    "", "httpx", "httpcore", "urllib3", "requests", "filelock", "redis", "asyncio", "tiktok_oauth",
    "sqlalchemy", "aiosqlite", "psycopg",
]  # fmt: skip
#: Any token shaped like the fake's (TikTok's prefix, then 40 alphanumerics); masked ones (`act.***`) do not match;
#: and any Fernet token (version byte 0x80 and a timestamp, base64: `gAAAAA...`), i.e. a stored ciphertext.
TOKEN_SHAPE = re.compile(r"\b(?:act|rft|clt)\.[A-Za-z0-9]{16,}|gAAAAA[A-Za-z0-9_=-]{20,}")
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

    def fernet_keys(self, *keys: str | bytes) -> None:
        """Register Fernet keys: the key text, and the 16-byte signing and encryption keys it encodes
        (as hex, as base64, and as they would appear inside a `repr` of bytes)."""
        for key in keys:
            text = key.decode() if isinstance(key, bytes) else key
            raw = base64.urlsafe_b64decode(text)
            self.secrets.update({text, text.rstrip("="), raw.hex(), base64.b64encode(raw).decode()})
            for half in (raw[:16], raw[16:]):
                self.secrets.update({half.hex(), repr(half)[2:-1], base64.urlsafe_b64encode(half).decode()})

    def stored(self, *tokens: TikTokToken | None) -> None:
        """Register what an encrypted store wrote: its ciphertexts must not show anywhere either."""
        for token in tokens:
            if token is not None:
                self.secrets.update(
                    value for value in (token.get("access_token"), token.get("refresh_token")) if value
                )

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

    async def araised(self, exception_type: type[BaseException], function: Any, *args: Any) -> Any:
        """`raised` for a function that may be a coroutine function (sync and async stores alike)."""
        with pytest.raises(exception_type) as caught:
            await _maybe(function(*args))
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
        "test-key", SECRET, redirect_uri=REDIRECT_URI, timeout=10.0, **fake.endpoints(base_url)
    ) as made:
        yield made


def _login(scan: Scan, fake: FakeTikTok, client: TikTokOAuth2Client) -> TikTokToken:
    verifier = client.generate_code_verifier()
    scan.secrets.add(verifier)
    url, state = client.create_authorization_url(code_verifier=verifier)
    callback = fake.authorize(url)
    scan.secrets.add(parse_qs(urlsplit(callback).query)["code"][0])
    return client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)


def _plain_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """The unencrypted store a test kind runs on (SQLAlchemy logs statements at INFO, every fetched row at DEBUG)."""
    if kind.endswith("sqlite"):
        store = SQLTokenStore(f"sqlite:///{tmp_path / 'tokens.db'}")
    elif kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        store = SQLTokenStore(url, table=unique_table(request, url))
    else:
        return FileTokenStore(tmp_path / "tokens")
    request.addfinalizer(store.close)
    return store


@pytest.mark.parametrize("kind", ["file", "sqlite", "postgres", "encrypted-file", "encrypted-sqlite"])
def test_login_refresh_and_every_driver_log_nothing_secret(
    scan: Scan,
    fake: FakeTikTok,
    base_url: str,
    client: TikTokOAuth2Client,
    *,
    tmp_path: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    user_info = fake.user_info_url(base_url)
    token = _login(scan, fake, client)
    plain = _plain_store(kind, tmp_path, request)
    store = plain
    if kind.startswith("encrypted"):  # mid-rotation: a Fernet object first, an older key as text
        new_key, old_key = Fernet.generate_key(), Fernet.generate_key().decode()
        scan.fernet_keys(new_key, old_key)
        store = EncryptedTokenStore(plain, [Fernet(new_key), old_key])
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
    if store is not plain:
        scan.stored(plain.get("alice"))
        assert plain.get("alice") != store.get("alice")  # really ciphertext at rest


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


# -- EncryptedTokenStore: every failure path over every kind of inner store, sync and async ---------------


async def _maybe(value: Any) -> Any:
    """`value`, awaited when it is awaitable: one scenario drives sync and async stores alike."""
    return await value if inspect.isawaitable(value) else value


class AsyncOver:
    """A sync store (memory, file) behind coroutine methods, so `AsyncEncryptedTokenStore` runs over it too."""

    def __init__(self, store: Any) -> None:
        self.store = store

    async def get(self, key: str) -> TikTokToken | None:
        token: TikTokToken | None = self.store.get(key)
        return token

    async def set(self, key: str, token: TikTokToken) -> None:
        self.store.set(key, token)

    async def delete(self, key: str) -> None:
        self.store.delete(key)

    def lock(self, key: str) -> contextlib.AbstractAsyncContextManager[Any]:
        lock: contextlib.AbstractAsyncContextManager[Any] = self.store.alock(key)
        return lock

    async def keys(self) -> AsyncIterator[str]:
        for key in list(self.store.keys()):
            yield key

    async def expiring(self, before: float) -> AsyncIterator[str]:
        for key in self.store.expiring(before):
            yield key

    def __repr__(self) -> str:
        return f"AsyncOver({self.store!r})"


class InnerStores:
    """One kind of inner store, sync or async: a working one, and one whose every operation fails."""

    def __init__(self, kind: str, mode: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self.kind, self.is_async, self.tmp_path = kind, mode == "async", tmp_path
        self.memory = MemoryTokenStore(lock_timeout=0.2)
        if kind == "redis":
            request.getfixturevalue("redis_client")  # a flushed database
            self.redis: RedisServer = request.getfixturevalue("redis_server")
        if kind == "postgres":
            self.postgres_url: str = request.getfixturevalue("postgres_url")
            self.table = unique_table(request, self.postgres_url)

    def _sync_or_async(self, sync_store: Any) -> Any:
        return AsyncOver(sync_store) if self.is_async else sync_store

    def _sql(self, stack: contextlib.AsyncExitStack, url: str, **kwargs: Any) -> Any:
        if self.is_async:
            async_store = AsyncSQLTokenStore(url, **kwargs)
            stack.push_async_callback(async_store.aclose)
            return async_store
        store = SQLTokenStore(url, **kwargs)
        stack.callback(store.close)
        return store

    def _redis(self, stack: contextlib.AsyncExitStack, **client_kwargs: Any) -> Any:
        from tiktok_oauth.stores.redis import AsyncRedisTokenStore, RedisTokenStore

        if self.is_async:
            async_client = self.redis.async_client(**client_kwargs)
            stack.push_async_callback(async_client.aclose)
            return AsyncRedisTokenStore(async_client)
        client = self.redis.client(**client_kwargs)
        stack.callback(client.close)
        return RedisTokenStore(client)

    def open(self, stack: contextlib.AsyncExitStack) -> Any:
        """The store the test uses (made inside the running loop: async clients bind to it)."""
        if self.kind == "memory":
            return self._sync_or_async(self.memory)
        if self.kind == "file":
            return self._sync_or_async(FileTokenStore(self.tmp_path / "tokens"))
        if self.kind == "redis":
            return self._redis(stack)
        if self.kind == "sqlite":
            return self._sql(stack, f"sqlite:///{self.tmp_path / 'tokens.db'}")
        return self._sql(stack, self.postgres_url, table=self.table)

    def broken(self, stack: contextlib.AsyncExitStack) -> Any:
        """A store of the same kind that cannot work (None for memory: its failure is a lock timeout)."""
        if self.kind == "file":
            not_a_directory = self.tmp_path / "a-file"
            not_a_directory.write_text("")
            return self._sync_or_async(FileTokenStore(not_a_directory))
        if self.kind == "redis":
            return self._redis(stack, port=free_port(), socket_timeout=0.5, socket_connect_timeout=0.5)
        if self.kind == "sqlite":
            garbage = self.tmp_path / "garbage.db"
            garbage.write_bytes(b"this is not an SQLite database file " * 200)
            return self._sql(stack, f"sqlite:///{garbage}")
        if self.kind == "postgres":
            return self._sql(
                stack, f"postgresql://postgres@127.0.0.1:{free_port()}/postgres?connect_timeout=2"
            )
        return None


def _tampered(ciphertext: str) -> list[str]:
    """Ciphertexts that must not decrypt: its tail replaced (a bad HMAC), cut short, non-ASCII, not base64."""
    return [
        ciphertext[:-6] + "AAAAAA",
        ciphertext[: len(ciphertext) // 2],
        ciphertext[:-1] + "\u00e9",
        "gAAAAA!!",
    ]


class EncryptedScenario:
    """Every path of an `EncryptedTokenStore` over one inner store, sync or async (awaited either way)."""

    def __init__(self, scan: Scan, stores: InnerStores, fake: FakeTikTok, base_url: str, client: Any) -> None:
        self.scan, self.stores, self.fake, self.base_url, self.client = scan, stores, fake, base_url, client
        self.token = _login(scan, fake, client)
        self.old_key, self.new_key, self.other_key = (Fernet.generate_key() for _ in range(3))
        scan.fernet_keys(self.old_key, self.new_key, self.other_key)
        self.not_a_key = "not-a-Fernet-key-but-secret-" + self.new_key.decode()[:20]
        scan.secrets.add(self.not_a_key)

    def _sync_fetch(self, store: Any) -> httpx.Response:
        with httpx.Client(auth=TikTokAuth(self.client, store, "alice")) as http:
            return http.get(self.fake.user_info_url(self.base_url))

    async def fetch(self, store: Any) -> httpx.Response:
        """A user-info request authorised through `store` (a sync store in a thread, as a sync app runs it)."""
        if not self.stores.is_async:
            return await asyncio.to_thread(self._sync_fetch, store)
        async with (
            AsyncTikTokOAuth2Client("test-key", SECRET, **self.fake.endpoints(self.base_url)) as aclient,
            httpx.AsyncClient(auth=TikTokAuth(aclient, store, "alice")) as http,
        ):
            return await http.get(self.fake.user_info_url(self.base_url))

    async def fetch_fails(self, store: Any) -> None:
        with pytest.raises(TokenStoreError) as caught:
            await self.fetch(store)
        self.scan.see(caught.value)

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            inner = self.stores.open(stack)
            rotated = await self.round_trip_and_rotation(inner)
            await self.refusals(inner, rotated)
            await self.inner_errors(stack, inner, rotated)
            self.bad_keys(inner)
            await self.through_tiktok_auth(inner, rotated)

    async def round_trip_and_rotation(self, inner: Any) -> Any:
        token, scan = self.token, self.scan
        old = EncryptedTokenStore(inner, self.old_key.decode())
        assert isinstance(old, AsyncEncryptedTokenStore) is self.stores.is_async
        await _maybe(old.set("alice", token))
        sealed = await _maybe(inner.get("alice"))
        scan.stored(sealed)
        assert sealed["access_token"] != token.access_token
        assert (await _maybe(old.get("alice"))) == token
        scan.see(old, inner, sealed, await _maybe(old.get("alice")))
        # The new key first (a Fernet object), the old one (bytes) still decrypting; written again with the new.
        rotated = EncryptedTokenStore(inner, [Fernet(self.new_key), self.old_key])
        assert (await _maybe(rotated.get("alice"))) == token
        await _maybe(rotated.set("alice", token))
        scan.stored(await _maybe(inner.get("alice")))
        await scan.araised(TokenStoreError, old.get, "alice")  # the old key alone no longer decrypts
        await scan.araised(TokenStoreError, EncryptedTokenStore(inner, self.other_key).get, "alice")
        scan.see(rotated)
        return rotated

    async def refusals(self, inner: Any, rotated: Any) -> None:
        """Tampered ciphertexts (each secret field), a plaintext token, a half-encrypted one."""
        good = await _maybe(inner.get("alice"))
        for field in ("access_token", "refresh_token"):
            for tampered in _tampered(good[field]):
                self.scan.stored(TikTokToken({field: tampered}))
                await _maybe(inner.set("alice", TikTokToken({**good, field: tampered})))
                error = await self.scan.araised(TokenStoreError, rotated.get, "alice")
                assert "'alice'" in str(error)
        await _maybe(inner.set("alice", self.token))
        await self.scan.araised(TokenStoreError, rotated.get, "alice")
        await self.fetch_fails(rotated)  # refused through TikTokAuth too: never sent anywhere
        await _maybe(inner.set("alice", TikTokToken({**good, "refresh_token": self.token.refresh_token})))
        await self.scan.araised(TokenStoreError, rotated.get, "alice")
        await _maybe(rotated.set("alice", self.token))

    async def inner_errors(self, stack: contextlib.AsyncExitStack, inner: Any, rotated: Any) -> None:
        """The inner store's own errors, through the wrapper."""
        scan = self.scan
        unserialisable = TikTokToken({**self.token, "extra": object()})
        await scan.araised(TokenStoreError, rotated.set, "bob", unserialisable)
        broken_inner = self.stores.broken(stack)
        if broken_inner is not None:
            broken = EncryptedTokenStore(broken_inner, [self.new_key, self.old_key])
            await scan.araised(TokenStoreError, broken.set, "alice", self.token)
            await scan.araised(TokenStoreError, broken.get, "alice")
            await self.fetch_fails(broken)
            scan.see(broken)
        if self.stores.kind == "file":  # a torn file of ciphertext
            files = inner.store if self.stores.is_async else inner
            path = files.token_path("alice")
            intact = path.read_bytes()
            path.write_bytes(intact[:-20])
            await scan.araised(TokenStoreError, rotated.get, "alice")
            path.write_bytes(intact)
        if self.stores.kind == "memory":  # the delegated lock, held here: TikTokAuth's refresh times out
            await _maybe(rotated.set("alice", TikTokToken({**self.token, "expires_at": 0})))
            if self.stores.is_async:
                async with rotated.lock("alice"):
                    await self.fetch_fails(rotated)
            else:
                with rotated.lock("alice"):
                    await self.fetch_fails(rotated)

    def bad_keys(self, inner: Any) -> None:
        """Keys that are not Fernet keys: a ValueError that quotes neither them nor the good ones."""
        self.scan.raised(ValueError, EncryptedTokenStore, inner, self.not_a_key)
        self.scan.raised(ValueError, EncryptedTokenStore, inner, [self.new_key, self.not_a_key])
        self.scan.raised(ValueError, EncryptedTokenStore, inner, [self.new_key.decode(), self.new_key[:-4]])

    async def through_tiktok_auth(self, inner: Any, rotated: Any) -> None:
        """A real refresh through the wrapper (TikTok rotates the refresh token), then a wrong key."""
        await _maybe(rotated.set("alice", TikTokToken({**self.token, "expires_at": 0})))
        grants = self.fake.grant_count("refresh_token")
        assert (await self.fetch(rotated)).status_code == 200
        assert self.fake.grant_count("refresh_token") == grants + 1
        refreshed = await _maybe(rotated.get("alice"))
        assert refreshed.refresh_token != self.token.refresh_token
        stored = await _maybe(inner.get("alice"))
        self.scan.stored(stored)
        self.scan.see(refreshed, rotated, inner, stored)
        await self.fetch_fails(EncryptedTokenStore(inner, self.other_key))
        assert (await _maybe(inner.get("alice"))) == stored  # a failed read changes nothing


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("kind", ["memory", "file", "redis", "sqlite", "postgres"])
def test_encrypted_store_failures_log_nothing_secret(
    scan: Scan,
    fake: FakeTikTok,
    base_url: str,
    client: TikTokOAuth2Client,
    *,
    kind: str,
    mode: str,
    request: pytest.FixtureRequest,
) -> None:
    """Round trip, rotation, wrong key, tampered ciphertext, plaintext refusal, the inner store's own errors,
    a lock timeout, bad keys, and TikTokAuth refreshing (and failing) through the wrapper: every message,
    repr, traceback and DEBUG log line is scanned for tokens, ciphertexts and key material."""
    stores = InnerStores(kind, mode, request, request.getfixturevalue("tmp_path"))
    asyncio.run(EncryptedScenario(scan, stores, fake, base_url, client).run())


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
    key = Fernet.generate_key()
    raw = base64.urlsafe_b64decode(key)
    for leak in [key.decode(), repr(raw[:16]), raw[16:].hex(), Fernet(key).encrypt(b"x").decode()]:
        caplog.clear()
        scan = Scan(caplog)
        scan.fernet_keys(key)
        scan.see(TokenStoreError(f"... {leak} ..."))
        with pytest.raises(AssertionError, match="leaked"):
            scan.check()
