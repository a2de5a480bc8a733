"""The token source: read, lock, read again, refresh (shielded), write. Written once, for every driver.

`TokenSource` is what `TikTokAuth`'s drivers and the keeper (`refresh_due`) ask for a usable token. It keeps
the token it last read in memory (the hot path reads `current` only), reads the store again when that token
nears expiry or `recheck` seconds have passed, and renews under the in-process lock and the store's lock,
reading the store once more there: someone else may have refreshed meanwhile.

Once a refresh request may have gone out, it and the write of its answer complete whatever happens to the
caller: in async code the section runs in a task of its own that a cancelled caller leaves running and that
refuses every cancellation from outside once the request may be out (`asyncio.run` ending cancels every task
left: this one finishes, bounded by the client's timeout, and `asyncio.run` waits for it); in sync code a
`KeyboardInterrupt` arriving meanwhile (main thread) is held back until the token is stored.

This is the one writer: refreshes, revokes, a new login's write and their results all go through here,
under the in-process lock and the store's lock, with the store read again first. Just before a refresh is
sent, the store's held lock is checked (`HeldLock.check`): a lost lock sends nothing. A new token whose write
failed (a store down, a lock lost) is kept in memory and written under the next lock, unless the store
changed meanwhile (a new login, a logout): that change wins.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal

from tiktok_oauth import _clock
from tiktok_oauth.auth._locks import StoreSection, locks, wait_limit
from tiktok_oauth.client import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.errors import (
    LockLostError,
    NothingStoredError,
    RateLimitedError,
    ReauthorizationRequiredError,
    TikTokOAuthError,
    TikTokServerError,
)
from tiktok_oauth.events import EventKind, OnEvent, TokenEvent, emit
from tiktok_oauth.stores import HeldLock
from tiktok_oauth.token import TikTokToken

if TYPE_CHECKING:
    import asyncio

logger = logging.getLogger("tiktok_oauth")

Outcome = Literal["refreshed", "fresh"]
_NOTHING: Final = (None, 0.0, "")
#: Tasks finishing a refresh whose caller was cancelled: held here so they are not collected mid-write.
_finishing: set[asyncio.Task[Any]] = set()
#: Modules whose code cancels a task from inside it: a timeout the task itself entered (the client's
#: deadline, httpx's and the stores' own timeouts). Only these may still cancel a refresh under way.
_TIMEOUTS: Final = ("asyncio.timeouts", "anyio.", "async_timeout")


class TokenSource:
    """A usable token for one key of one store, renewed once however many callers ask at once."""

    def __init__(
        self,
        client: TikTokOAuth2Client | AsyncTikTokOAuth2Client | None,
        store: Any,
        key: str,
        *,
        leeway: float,
        recheck: float,
        client_credentials: bool,
        is_async_store: bool,
        on_event: OnEvent | None = None,
    ) -> None:
        self.client = client
        self.on_event = on_event
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
        # the store is dead: the next caller writes this one first instead of reading the dead one, unless
        # the store no longer holds the token it replaces (`replaces`: a new login or a logout meanwhile).
        self.unsaved: TikTokToken | None = None
        self.replaces: str | None = None
        locks.register(store, self)

    @classmethod
    def over(
        cls,
        client: TikTokOAuth2Client | AsyncTikTokOAuth2Client | None,
        store: Any,
        key: str,
        *,
        leeway: float = 60.0,
        recheck: float = 60.0,
        client_credentials: bool = False,
        on_event: OnEvent | None = None,
    ) -> TokenSource:
        """The source of `key` in `store`, whatever the store's kind (sync or async)."""
        return cls(
            client,
            store,
            key,
            leeway=leeway,
            recheck=recheck,
            client_credentials=client_credentials,
            is_async_store=inspect.iscoroutinefunction(getattr(store, "get", None)),
            on_event=on_event,
        )

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
        return (
            token is not None
            and not token.needs_login
            and not token.is_expired(self.leeway)
            and token.access_token != rejected
        )

    def _must_log_in(self) -> ReauthorizationRequiredError:
        self.forget()
        return ReauthorizationRequiredError(
            f"the user of key {self.key!r} must log in again (the token is marked needs_login)",
            error="invalid_grant",
        )

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

    def _missing(self) -> NothingStoredError:
        self.forget()
        return NothingStoredError(f"no token is stored under key {self.key!r}: log in first")

    def _after_read(self, stored: TikTokToken | None, rejected: str | None) -> TikTokToken | None:
        """A token read without the lock: use it when good; None when it needs renewing under the lock."""
        if self._usable(stored, rejected):
            assert stored is not None
            return self.remember(stored)
        if stored is None and not self.client_credentials:
            raise self._missing()
        if stored is not None and stored.needs_login:
            raise self._must_log_in()
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
        if current is not None and current.needs_login:
            raise self._must_log_in()
        what = "a client access token" if self.client_credentials else "a refresh"
        why = (
            "TikTok refused the token" if rejected else "no token" if current is None else "the token expires"
        )
        logger.debug("key %r: %s (%s)", self.key, what, why)
        return "client" if self.client_credentials else "refresh"

    def _reuse(self, token: TikTokToken) -> tuple[Outcome, TikTokToken]:
        logger.debug("key %r: the stored token is good (another caller may have refreshed it)", self.key)
        return "fresh", self.remember(token)

    def _saved(self, events: list[TokenEvent]) -> tuple[Outcome, TikTokToken]:
        """The new token has reached the store: use it from now on."""
        fresh, self.unsaved, self.replaces = self.unsaved, None, None
        assert fresh is not None
        events.append(self._event("refreshed", fresh))
        return "refreshed", self.remember(fresh)

    def _marked(self, token: TikTokToken) -> TikTokToken:
        """`token` marked `needs_login`: TikTok refused its refresh token (revoked, expired)."""
        logger.info("key %r: TikTok refused the refresh token; marked needs_login", self.key)
        self.forget()
        return TikTokToken({**token, "needs_login": True})

    def _to_mark(self, current: TikTokToken | None, unless_issued_after: float | None) -> TikTokToken | None:
        """The marked token to write, or None: nothing stored, already marked, or logged in again since."""
        if current is None or current.needs_login:
            return None
        issued_at = current.issued_at
        if unless_issued_after is not None and issued_at is not None and issued_at > unless_issued_after:
            return None
        return self._marked(current)

    def mark_needs_login(self, *, unless_issued_after: float | None = None) -> bool:
        """Mark the stored token `needs_login` under the locks (a webhook said the grant was removed);
        not if it was issued after `unless_issued_after` (the user logged in again). Whether it marked."""
        with self._reporting() as events, self._section():
            marked = self._to_mark(self.store.get(self.key), unless_issued_after)
            if marked is not None:
                self.store.set(self.key, marked)
                self.unsaved = self.replaces = None
                events.append(self._event("needs_login", marked))
            return marked is not None

    async def amark_needs_login(self, *, unless_issued_after: float | None = None) -> bool:
        """`mark_needs_login` for async code (either store kind)."""
        with self._reporting() as events:
            async with self._asection() as section:
                marked = self._to_mark(await section.call("get", self.key), unless_issued_after)
                if marked is not None:
                    await section.call("set", self.key, marked)
                    self.unsaved = self.replaces = None
                    events.append(self._event("needs_login", marked))
                return marked is not None

    @contextlib.contextmanager
    def _reporting(self) -> Iterator[list[TokenEvent]]:
        """Collect the events of one locked section; deliver them once it has ended (outside every lock)."""
        events: list[TokenEvent] = []
        try:
            yield events
        except LockLostError as exc:
            events.append(TokenEvent.of("lock_lost", self.key, error=exc))
            raise
        finally:
            emit(self.on_event, events)

    def _event(
        self, kind: EventKind, token: TikTokToken | None, error: Exception | None = None
    ) -> TokenEvent:
        return TokenEvent.of(kind, self.key, None if token is None else token.open_id, error)

    def _refresh_failed(
        self, events: list[TokenEvent], current: TikTokToken, error: TikTokOAuthError
    ) -> TikTokToken | None:
        """A refresh failed: its events; the marked token to write when TikTok refused the refresh token."""
        events.append(self._event("refresh_failed", current, error))
        if not isinstance(error, ReauthorizationRequiredError):
            return None
        events.append(self._event("needs_login", current, error))
        return self._marked(current)

    def _got(self, fresh: TikTokToken, replaced: TikTokToken | None) -> TikTokToken:
        """TikTok answered with `fresh`: hold it until the store has it (see `unsaved`)."""
        self.unsaved = fresh
        self.replaces = None if replaced is None else replaced.access_token
        return fresh

    def _pending(self, stored: TikTokToken | None) -> TikTokToken | None:
        """Under the lock, with `stored` just read: the unsaved token to write first, or None.

        It is written only over the token it replaces; if the store changed meanwhile (a new login, a
        logout, another process's refresh), the store wins and the unsaved token is dropped.
        """
        fresh = self.unsaved
        if fresh is None:
            return None
        if stored is not None and stored.access_token == self.replaces:
            return fresh
        logger.debug("key %r: the store changed since our refresh; its token wins", self.key)
        self.unsaved = self.replaces = None
        return None

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
    def _section(self) -> Iterator[HeldLock | None]:
        lock = getattr(self.store, "lock", None)
        with (
            locks.hold(self.store, self.key, self.wait_limit),
            lock(self.key) if lock is not None else contextlib.nullcontext() as held,
        ):
            yield held if isinstance(held, HeldLock) else None

    def _read_locked(self) -> TikTokToken | None:
        """Under the locks: the stored token, after writing our unsaved one over the token it replaces."""
        current: TikTokToken | None = self.store.get(self.key)
        if self._pending(current) is not None:  # our last new token never reached the store: write it
            self.store.set(self.key, self.unsaved)
            return None
        return current

    def renew(self, rejected: str | None = None) -> tuple[Outcome, TikTokToken]:
        """Under the locks: read again; renew only if the token is still the stale one."""
        client = self._sync_client()
        with self._reporting() as events, self._section() as held:
            current = self._read_locked()
            if self.unsaved is not None:  # written just now: our earlier refresh is done
                return self._saved(events)
            if self._usable(current, rejected):
                assert current is not None
                return self._reuse(current)
            grant = self._renewal(current, rejected)
            if held is not None:
                held.check()  # a lock lost by now guards nothing: send nothing
            with _interrupts_held():
                if grant == "client":
                    self._got(client.fetch_client_token(), current)
                else:
                    assert current is not None
                    try:
                        self._got(client.refresh_token(current), current)
                    except TikTokOAuthError as exc:
                        marked = self._refresh_failed(events, current, exc)
                        if marked is not None:
                            self.store.set(self.key, marked)  # never sent again
                        raise
                self.store.set(self.key, self.unsaved)
            return self._saved(events)

    def refresh_now(self) -> tuple[Outcome, TikTokToken]:
        """Refresh the stored token now (the CLI's `token refresh`), unless someone else just did."""
        self._sync_client()
        stored = self.store.get(self.key) if self.unsaved is None else self.unsaved
        if stored is None:
            raise self._missing()
        return self.renew(rejected=stored.access_token)

    def store_login(self, token: TikTokToken) -> TikTokToken:
        """Write a new login's token under the locks: a refresh of the old grant in flight cannot undo it."""
        with self._reporting() as events, self._section():
            self.store.set(self.key, token)
            self.unsaved = self.replaces = None
            events.append(self._event("logged_in", token))
        return self.remember(token)

    def logout(self) -> None:
        """Revoke the stored token at TikTok and delete it, under the locks."""
        client = self._sync_client()
        with self._reporting() as events, self._section():
            current = self._read_locked() or self.unsaved
            if current is not None:
                try:
                    client.revoke_token(current)
                except TikTokOAuthError as exc:
                    _unless_already_revoked(exc)
                events.append(self._event("revoked", current))
            self.store.delete(self.key)
            self.unsaved = self.replaces = None
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
        task = _refresh_task(self._arenew(rejected))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.sent:
                logger.debug("key %r: caller cancelled; the refresh under way completes", self.key)
                _finishing.add(task)
                task.add_done_callback(_finished)
            else:
                task.cancel()  # nothing was sent yet: stop waiting for the locks too
            raise

    async def arefresh_now(self) -> tuple[Outcome, TikTokToken]:
        """`refresh_now` for async code."""
        self._async_client()
        stored = await self._read() if self.unsaved is None else self.unsaved
        if stored is None:
            raise self._missing()
        return await self.arenew(rejected=stored.access_token)

    async def astore_login(self, token: TikTokToken) -> TikTokToken:
        """`store_login` for async code."""
        with self._reporting() as events:
            async with self._asection() as section:
                await section.call("set", self.key, token)
                self.unsaved = self.replaces = None
                events.append(self._event("logged_in", token))
        return self.remember(token)

    async def _aread_locked(self, section: StoreSection) -> TikTokToken | None:
        """`_read_locked` for async code."""
        current: TikTokToken | None = await section.call("get", self.key)
        if self._pending(current) is not None:
            await section.call("set", self.key, self.unsaved)
            return None
        return current

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

    async def _arenew(self, rejected: str | None) -> tuple[Outcome, TikTokToken]:
        import asyncio  # noqa: PLC0415

        client = self._async_client()
        with self._reporting() as events:
            async with self._asection() as section:
                current = await self._aread_locked(section)
                if self.unsaved is not None:  # written just now: our earlier refresh is done
                    return self._saved(events)
                if self._usable(current, rejected):
                    assert current is not None
                    return self._reuse(current)
                grant = self._renewal(current, rejected)
                await section.check()  # a lock lost by now guards nothing: send nothing
                task = asyncio.current_task()
                assert isinstance(task, _refresh_task_class())
                task.sent = True  # from here on, only this section's own timeouts can cancel it
                if grant == "client":
                    self._got(await client.fetch_client_token(), current)
                else:
                    assert current is not None
                    try:
                        self._got(await client.refresh_token(current), current)
                    except TikTokOAuthError as exc:
                        marked = self._refresh_failed(events, current, exc)
                        if marked is not None:
                            await section.call("set", self.key, marked)  # never sent again
                        raise
                await section.call("set", self.key, self.unsaved)
                return self._saved(events)

    async def alogout(self) -> None:
        client = self._async_client()
        with self._reporting() as events:
            async with self._asection() as section:
                current = await self._aread_locked(section) or self.unsaved
                if current is not None:
                    try:
                        await client.revoke_token(current)
                    except TikTokOAuthError as exc:
                        _unless_already_revoked(exc)
                    events.append(self._event("revoked", current))
                await section.call("delete", self.key)
                self.unsaved = self.replaces = None
                self.forget()


#: Revoke errors that say nothing about the token (our credentials are wrong): the logout fails.
_NOT_ABOUT_THE_TOKEN: Final = frozenset({"invalid_client", "unauthorized_client", "unsupported_grant_type"})


def _unless_already_revoked(exc: TikTokOAuthError) -> None:
    """A failed revoke during logout: raised when TikTok may still honour the token (a 5xx, a 429, our
    own credentials refused); any other OAuth error means TikTok no longer knows the token, which is as
    good as revoked."""
    if isinstance(exc, TikTokServerError | RateLimitedError) or exc.error in _NOT_ABOUT_THE_TOKEN:
        raise exc
    logger.debug("revoke answered %s: the token was already revoked; deleting it", exc.error)


@functools.cache
def _refresh_task_class() -> type[Any]:
    """The task class of a refresh (made on first use: asyncio is not imported with the package)."""
    import asyncio  # noqa: PLC0415

    class RefreshTask(asyncio.Task):  # type: ignore[type-arg]
        """A refresh's locked section: once its request may be out, only its own timeouts cancel it.

        A cancelled caller never cancels it (it waits through `asyncio.shield`), but whoever sweeps every
        task would: `asyncio.run` ending, a server shutting down. Then the answer, with TikTok's rotated
        refresh token, would be lost. So `cancel` from outside is refused while the request is out; the
        sweeper waits for the task instead, which the client's own timeout bounds.
        """

        sent = False

        def cancel(self, msg: Any = None) -> bool:
            if self.sent and not _cancelled_by_a_timeout(sys._getframe(1)):  # noqa: SLF001
                logger.debug("a refresh under way was asked to cancel; it completes first")
                return False
            return super().cancel(msg)

    return RefreshTask


def _cancelled_by_a_timeout(frame: Any) -> bool:
    """Whether `cancel` was called by a timeout (asyncio's, anyio's) rather than by someone outside."""
    module = frame.f_globals.get("__name__", "")
    return isinstance(module, str) and module.startswith(_TIMEOUTS)


def _refresh_task(coro: Coroutine[Any, Any, tuple[Outcome, TikTokToken]]) -> Any:
    import asyncio  # noqa: PLC0415

    return _refresh_task_class()(coro, loop=asyncio.get_running_loop())


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
