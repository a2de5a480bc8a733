"""The token source: read, lock, read again, refresh (shielded), write. Written once, for every driver.

`TokenSource` is what `TikTokAuth`'s drivers and the keeper (`refresh_due`) ask for a usable token. It keeps
the token it last read in memory (the hot path reads `current` only), reads the store again when that token
nears expiry or `recheck` seconds have passed, and renews under the in-process lock and the store's lock,
reading the store once more there: someone else may have refreshed meanwhile.

Once a refresh request may have gone out, it and the write of its answer complete whatever happens to the
caller: in async code the section runs in a task of its own that a cancelled caller leaves running; in sync
code a `KeyboardInterrupt` arriving meanwhile (main thread) is held back until the token is stored.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal

from tiktok_oauth import _clock
from tiktok_oauth.auth._locks import StoreSection, locks, wait_limit
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.errors import (
    RateLimitedError,
    ReauthorizationRequiredError,
    TikTokOAuthError,
    TikTokServerError,
)
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger("tiktok_oauth")

Outcome = Literal["refreshed", "fresh"]
_NOTHING: Final = (None, 0.0, "")
#: The message of the ReauthorizationRequiredError for a key that holds nothing (the keeper skips those).
NOTHING_STORED: Final = "no token is stored under key {key!r}: log in first"
#: Tasks finishing a refresh whose caller was cancelled: held here so they are not collected mid-write.
_finishing: set[asyncio.Task[Any]] = set()


class _Progress:
    """Whether a refresh request may have gone out (then it must complete, whoever waits for it)."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


class TokenSource:
    """A usable token for one key of one store, renewed once however many callers ask at once."""

    def __init__(
        self,
        client: TikTokOAuth2Client | AsyncTikTokOAuth2Client,
        store: Any,
        key: str,
        *,
        leeway: float,
        recheck: float,
        client_credentials: bool,
        is_async_store: bool,
    ) -> None:
        self.client = client
        self.store = store
        self.key = key
        self.leeway = leeway
        self.recheck = recheck
        self.client_credentials = client_credentials
        self.is_async_store = is_async_store
        self.wait_limit = wait_limit(store)
        #: (token, fresh until, "Bearer ..."): the hot path reads this and nothing else.
        self.current: tuple[TikTokToken | None, float, str] = _NOTHING
        # A new token the store failed to take. TikTok has already rotated the refresh token, so the one in
        # the store is dead: the next caller writes this one first instead of reading the dead one.
        self.unsaved: TikTokToken | None = None
        locks.register(store, self)

    # -- decisions, shared by the sync and async paths -----------------------------------------------

    def fresh_bearer(self) -> str | None:
        """The header value of the token last seen, while fresh (no I/O, no lock)."""
        token, fresh_until, bearer = self.current
        return bearer if token is not None and _clock.now() < fresh_until else None

    def _cached(self, rejected: str | None) -> TikTokToken | None:
        token, fresh_until, _ = self.current
        if token is None or _clock.now() >= fresh_until or token.access_token == rejected:
            return None
        return token

    def _usable(self, token: TikTokToken | None, rejected: str | None) -> bool:
        return token is not None and not token.is_expired(self.leeway) and token.access_token != rejected

    def remember(self, token: TikTokToken) -> TikTokToken:
        now = _clock.now()
        expires_at = token.expires_at
        fresh_until = now + self.recheck
        if expires_at is not None:
            fresh_until = min(fresh_until, expires_at - self.leeway)
        self.current = (token, fresh_until, f"Bearer {token.access_token}")
        return token

    def forget(self) -> None:
        self.current = _NOTHING

    def _missing(self) -> ReauthorizationRequiredError:
        self.forget()
        return ReauthorizationRequiredError(NOTHING_STORED.format(key=self.key))

    def _after_read(self, stored: TikTokToken | None, rejected: str | None) -> TikTokToken | None:
        """A token read without the lock: use it when good; None when it needs renewing under the lock."""
        if self._usable(stored, rejected):
            assert stored is not None
            return self.remember(stored)
        if stored is None and not self.client_credentials:
            raise self._missing()
        return None

    def _replacement(self, stored: TikTokToken | None, rejected: str) -> TikTokToken | None:
        """After a 401 that a refresh does not cure: the stored token, if it is another one."""
        if stored is None:
            self.forget()
            return None
        if stored.access_token != rejected and not stored.is_expired():
            logger.debug("key %r: TikTok refused the token; the store holds another one", self.key)
            return self.remember(stored)
        return None

    def _renewal(self, current: TikTokToken | None, rejected: str | None) -> Literal["client", "refresh"]:
        """Which grant renews `current` (logged); `ReauthorizationRequiredError` when none can."""
        if not self.client_credentials and current is None:
            raise self._missing()
        what = "a client access token" if self.client_credentials else "a refresh"
        why = (
            "TikTok refused the token" if rejected else "no token" if current is None else "the token expires"
        )
        logger.debug("key %r: %s (%s)", self.key, what, why)
        return "client" if self.client_credentials else "refresh"

    def _reuse(self, token: TikTokToken) -> tuple[Outcome, TikTokToken]:
        logger.debug("key %r: the stored token is good (another caller may have refreshed it)", self.key)
        return "fresh", self.remember(token)

    def _saved(self) -> tuple[Outcome, TikTokToken]:
        """The new token has reached the store: use it from now on."""
        fresh, self.unsaved = self.unsaved, None
        assert fresh is not None
        return "refreshed", self.remember(fresh)

    # -- sync ------------------------------------------------------------------------------------------

    def _sync_client(self) -> TikTokOAuth2Client:
        if self.is_async_store or not isinstance(self.client, TikTokOAuth2Client):
            raise TypeError(
                "a sync flow (requests, httpx.Client, niquests.Session) needs a TikTokOAuth2Client and a sync "
                "TokenStore; use AsyncTikTokOAuth2Client with httpx.AsyncClient, niquests.AsyncSession or aiohttp"
            )
        return self.client

    def token(self, rejected: str | None = None) -> TikTokToken:
        """A usable token: the cached one, else the stored one, else a renewed one."""
        cached = self._cached(rejected)
        if cached is not None:
            return cached
        self._sync_client()
        if self.unsaved is None:
            good = self._after_read(self.store.get(self.key), rejected)
            if good is not None:
                return good
        return self.renew(rejected)[1]

    def stored_replacement(self, rejected: str) -> TikTokToken | None:
        self._sync_client()
        return self._replacement(self.store.get(self.key), rejected)

    @contextlib.contextmanager
    def _section(self) -> Iterator[None]:
        lock = getattr(self.store, "lock", None)
        with (
            locks.hold(self.store, self.key, self.wait_limit),
            lock(self.key) if lock is not None else contextlib.nullcontext(),
        ):
            yield

    def renew(self, rejected: str | None = None) -> tuple[Outcome, TikTokToken]:
        """Under the locks: read again; renew only if the token is still the stale one."""
        client = self._sync_client()
        store = self.store
        with self._section():
            current = self.unsaved
            if current is not None:  # our last new token never reached the store: write it first
                store.set(self.key, current)
                self.unsaved = None
            else:
                current = store.get(self.key)
            if self._usable(current, rejected):
                assert current is not None
                return self._reuse(current)
            grant = self._renewal(current, rejected)
            with _interrupts_held():
                if grant == "client":
                    self.unsaved = client.fetch_client_token()
                else:
                    assert current is not None
                    self.unsaved = client.refresh_token(current)
                store.set(self.key, self.unsaved)
            return self._saved()

    def logout(self) -> None:
        """Revoke the stored token at TikTok and delete it, under the locks."""
        client = self._sync_client()
        with self._section():
            current = self.store.get(self.key)
            if current is not None:
                try:
                    client.revoke_token(current)
                except TikTokOAuthError as exc:
                    _unless_already_revoked(exc)
            self.store.delete(self.key)
            self.unsaved = None
            self.forget()

    # -- async -----------------------------------------------------------------------------------------

    def _async_client(self) -> AsyncTikTokOAuth2Client:
        if not isinstance(self.client, AsyncTikTokOAuth2Client):
            raise TypeError(
                "an async flow (httpx.AsyncClient, niquests.AsyncSession, aiohttp) needs an "
                "AsyncTikTokOAuth2Client; use TikTokOAuth2Client with sync clients"
            )
        return self.client

    async def _read(self) -> TikTokToken | None:
        section = StoreSection(self.store, self.key, is_async=self.is_async_store, use_lock=False)
        return await section.call("get", self.key)  # type: ignore[no-any-return]

    async def atoken(self, rejected: str | None = None) -> TikTokToken:
        cached = self._cached(rejected)
        if cached is not None:
            return cached
        self._async_client()
        if self.unsaved is None:
            good = self._after_read(await self._read(), rejected)
            if good is not None:
                return good
        return (await self.arenew(rejected))[1]

    async def astored_replacement(self, rejected: str) -> TikTokToken | None:
        self._async_client()
        return self._replacement(await self._read(), rejected)

    async def arenew(self, rejected: str | None = None) -> tuple[Outcome, TikTokToken]:
        """`renew`, in a task of its own: a cancelled caller stops waiting, never a refresh under way."""
        import asyncio  # noqa: PLC0415 - only async callers get here, with asyncio loaded

        self._async_client()
        progress = _Progress()
        task = asyncio.get_running_loop().create_task(self._arenew(rejected, progress))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if progress.sent:
                logger.debug("key %r: caller cancelled; the refresh under way completes", self.key)
                _finishing.add(task)
                task.add_done_callback(_finished)
            else:
                task.cancel()  # nothing was sent yet: stop waiting for the locks too
            raise

    @contextlib.asynccontextmanager
    async def _asection(self) -> AsyncIterator[StoreSection]:
        """`_section` for async code: the in-process asyncio lock, then the store's lock."""
        import asyncio  # noqa: PLC0415

        loop = asyncio.get_running_loop()
        async with (
            locks.ahold(self.store, self.key, loop, self.wait_limit),
            StoreSection(self.store, self.key, is_async=self.is_async_store) as section,
        ):
            yield section

    async def _arenew(self, rejected: str | None, progress: _Progress) -> tuple[Outcome, TikTokToken]:
        client = self._async_client()
        async with self._asection() as section:
            current = self.unsaved
            if current is not None:  # our last new token never reached the store: write it first
                await section.call("set", self.key, current)
                self.unsaved = None
            else:
                current = await section.call("get", self.key)
            if self._usable(current, rejected):
                assert current is not None
                return self._reuse(current)
            grant = self._renewal(current, rejected)
            progress.sent = True
            if grant == "client":
                self.unsaved = await client.fetch_client_token()
            else:
                assert current is not None
                self.unsaved = await client.refresh_token(current)
            await section.call("set", self.key, self.unsaved)
            return self._saved()

    async def alogout(self) -> None:
        client = self._async_client()
        async with self._asection() as section:
            current = await section.call("get", self.key)
            if current is not None:
                try:
                    await client.revoke_token(current)
                except TikTokOAuthError as exc:
                    _unless_already_revoked(exc)
            await section.call("delete", self.key)
            self.unsaved = None
            self.forget()


def _unless_already_revoked(exc: TikTokOAuthError) -> None:
    """A failed revoke during logout: raised when TikTok may still honour the token (a 5xx, a 429);
    any other OAuth error means TikTok no longer knows the token, which is as good as revoked."""
    if isinstance(exc, TikTokServerError | RateLimitedError):
        raise exc
    logger.debug("revoke answered %s: the token was already revoked; deleting it", exc.error)


def _finished(task: asyncio.Task[Any]) -> None:
    _finishing.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning("a refresh whose caller was cancelled failed: %s", task.exception())


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back SIGINT (in the main thread) while a refresh is sent and its answer stored.

    A `KeyboardInterrupt` between TikTok's answer and the store's write would lose the rotated refresh
    token; it is raised as soon as the write is done instead. Elsewhere Python cannot defer it.
    """
    import signal  # noqa: PLC0415 - only on a refresh; its enums cost milliseconds at import

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    received: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt
