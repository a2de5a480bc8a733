"""`FileTokenStore`: one JSON file per key in a private directory, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores._codec import MAX_TOKEN_BYTES, decode_token, encode_token, expires_before
from tiktok_oauth.stores._locking import NEVER_LOST, NeverLost, poll_lock
from tiktok_oauth.token import TikTokToken

__all__ = ["KEY_FIELD", "FileTokenStore", "file_stem"]

logger = logging.getLogger("tiktok_oauth")

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TOKEN_FILE = re.compile(r"(?P<stem>(?P<slug>[A-Za-z0-9_-]{1,40})\.[0-9a-f]{32})\.json")
# `.<stem>.<host>.<pid>.<random>.tmp`, and the `.<stem>.<random>.tmp` of version 0.1.0.
_TEMPORARY = re.compile(
    r"\.[A-Za-z0-9_-]{1,40}\.[0-9a-f]{32}\.(?:(?P<host>[0-9a-f]{8})\.(?P<pid>\d+)\.)?[0-9a-f]+\.tmp"
)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH

KEY_FIELD = "tiktok_oauth_store_key"
"""The field of a token file that records the key it was stored under (so `keys()` can list it)."""


def file_stem(key: str) -> str:
    """The file name (without extension) for `key`: a readable slug plus a SHA-256 of the key.

    Any string is a valid key: the slug keeps only `[A-Za-z0-9_-]` (at most 40 characters) and the
    hash makes names collision-free, also on case-insensitive file systems.
    """
    slug = _UNSAFE.sub("_", key)[:40] or "_"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{slug}.{digest}"


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _is_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would terminate it: only the age of its files tells
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, as another user
        return True
    return True


class FileTokenStore:
    """Tokens as files in the directory `path`: `<slug>.<hash>.json`, one per key.

    The directory (and any missing parent) is created mode 0700 on the first write or lock, files
    are 0600, whatever the umask. A store directory that other users can write to (group- or
    world-writable, sticky or not) is refused with `TokenStoreError` on the first operation. A write
    goes to a temporary file that is fsynced and then renamed over the old one, so a crash at any
    moment leaves the old token or the new one, never a torn file; a writer interrupted by any
    exception (`KeyboardInterrupt` included) removes its temporary file, and those of writers that
    were killed are swept by later writes (when their process is gone, or after `stale_after`
    seconds). A corrupt or unreadable file raises `TokenStoreError` naming the path; it is never
    replaced or deleted behind your back.

    Every `get` reads the file (no cache can hand back a token that was replaced on disk).

    Each file holds the token's JSON plus one field, `tiktok_oauth_store_key`, the key it was
    stored under, so that `keys()` and `expiring(before)` can list keys that the file name does not
    spell out (files of version 0.1.0 are listed when their key is their slug or their open_id).

    `lock(key)` is a `filelock.FileLock` on `<slug>.<hash>.lock` in the same directory: it works
    across processes, and waiting longer than `lock_timeout` seconds raises `TokenStoreError`.
    `alock(key)` waits for the same lock from asyncio code, polling every `poll_interval` seconds
    without blocking the event loop.

    Args:
        path: the directory (str or path-like).
        lock_timeout: seconds `lock` and `alock` wait before raising `TokenStoreError`.
        poll_interval: seconds between attempts while another holder has the lock.
        stale_after: seconds after which any temporary file is swept, even one whose writer's
            process may still be alive (or runs on another machine sharing the directory).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float = 60.0,
        poll_interval: float = 0.05,
        stale_after: float = 600.0,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.poll_interval = poll_interval
        self.stale_after = stale_after
        self._directory_checked = False
        self._last_sweep: float | None = None

    def token_path(self, key: str) -> Path:
        """The file that holds the token for `key`."""
        return self.path / f"{file_stem(key)}.json"

    # -- reading -----------------------------------------------------------------------------------

    def get(self, key: str) -> TikTokToken | None:
        """Return the token stored under `key` (read from disk), or None when there is no file."""
        if not self._directory_exists():
            return None
        path = self.token_path(key)
        data = self._read(path)
        return None if data is None else self._parse(data, path)[1]

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {path}: {exc.strerror}") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise TokenStoreError(f"cannot read token file {path}: not a regular file")
            with os.fdopen(os.dup(fd), "rb") as file:
                return file.read(MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)

    @staticmethod
    def _parse(data: bytes, path: Path) -> tuple[str | None, TikTokToken]:
        """The key recorded in a token file (None in files of 0.1.0) and the token itself."""
        token = decode_token(data, f"token file {path}")
        key = token.pop(KEY_FIELD, None)
        return (key if isinstance(key, str) else None), token

    # -- listing -----------------------------------------------------------------------------------

    def keys(self) -> Iterator[str]:
        """The keys of the stored tokens, as given to `set` (lock and temporary files never).

        A key that the file name spells out is listed without opening the file; others are read
        from the file. A corrupt file whose name does not spell its key raises `TokenStoreError`.
        """
        for match, path in self._token_files():
            slug = match["slug"]
            if file_stem(slug) == match["stem"]:
                yield slug
                continue
            data = self._read(path)
            if data is not None:  # else deleted meanwhile
                key = self._key_of(data, path, match)
                if key is not None:
                    yield key

    def expiring(self, before: float, *, refresh: bool = False) -> Iterator[str]:
        """The keys whose access (with `refresh`: refresh) token expires strictly before `before` (reads
        each file)."""
        for match, path in self._token_files():
            data = self._read(path)
            if data is None:
                continue
            key = self._key_of(data, path, match)
            if key is not None and expires_before(self._parse(data, path)[1], before, refresh=refresh):
                yield key

    def _token_files(self) -> Iterator[tuple[re.Match[str], Path]]:
        if not self._directory_exists():
            return
        try:
            with os.scandir(self.path) as entries:
                names = [entry.name for entry in entries]
        except OSError as exc:
            raise TokenStoreError(f"cannot list token directory {self.path}: {exc.strerror}") from exc
        for name in names:
            match = _TOKEN_FILE.fullmatch(name)
            if match is not None:
                yield match, self.path / name

    def _key_of(self, data: bytes, path: Path, name: re.Match[str]) -> str | None:
        recorded, token = self._parse(data, path)
        # A file of 0.1.0 records no key: its slug may be the key, or (`tiktok-oauth login`) the open_id.
        for candidate in (recorded, name["slug"], token.get("open_id")):
            if isinstance(candidate, str) and file_stem(candidate) == name["stem"]:
                return candidate
        logger.warning("skipped token file %s in a listing: it does not say which key it is for", path)
        return None

    # -- writing -----------------------------------------------------------------------------------

    def set(self, key: str, token: TikTokToken) -> None:
        """Write `token` under `key` atomically (temporary file, fsync, rename, fsync directory)."""
        path = self.token_path(key)
        if KEY_FIELD in token:
            raise ValueError(f"{KEY_FIELD!r} is reserved by FileTokenStore: a token cannot hold it")
        data = encode_token({**token, KEY_FIELD: key}, f"token file {path}")
        self._make_directory()
        self._sweep_if_due()
        temporary = self.path / f".{file_stem(key)}.{_host_tag()}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            self._write_new(temporary, data)
            temporary.replace(path)
            self._sync_directory()
        except BaseException as exc:
            # Whatever stopped us (an OSError, KeyboardInterrupt, SystemExit...), no copy of the
            # token stays behind. After the rename there is nothing left to remove.
            with contextlib.suppress(OSError):
                temporary.unlink()
            if isinstance(exc, OSError):
                raise TokenStoreError(f"cannot write token file {path}: {exc.strerror}") from exc
            raise

    @staticmethod
    def _write_new(path: Path, data: bytes) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_NOFOLLOW
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(fd, 0o600)
            file.write(data)
            file.flush()
            os.fsync(fd)

    def delete(self, key: str) -> None:
        """Remove the file for `key`; no error when there is none."""
        if not self._directory_exists():
            return
        path = self.token_path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TokenStoreError(f"cannot delete token file {path}: {exc.strerror}") from exc
        with contextlib.suppress(OSError):
            self._sync_directory()

    def _sweep_if_due(self) -> None:
        now = time.monotonic()
        if self._last_sweep is not None and now - self._last_sweep < min(self.stale_after, 60.0):
            return
        self._last_sweep = now
        self.sweep_temporary_files()

    def sweep_temporary_files(self) -> int:
        """Remove temporary files of killed writers; return how many were removed.

        A temporary file goes when the process that wrote it (on this machine) is gone, or when it
        is older than `stale_after` seconds. Writes call this on their own (at most once a minute
        per store object); call it yourself after a crash if you like.
        """
        host, own_pid, removed = _host_tag(), os.getpid(), 0
        try:
            with os.scandir(self.path) as entries:
                names = [entry.name for entry in entries if entry.name.endswith(".tmp")]
            for name in names:
                match = _TEMPORARY.fullmatch(name)
                if match is None:
                    continue
                path = self.path / name
                with contextlib.suppress(FileNotFoundError):
                    pid = int(match["pid"]) if match["host"] == host else None
                    dead = pid is not None and pid != own_pid and not _is_alive(pid)
                    if dead or time.time() - os.lstat(path).st_mtime > self.stale_after:
                        path.unlink()
                        removed += 1
        except OSError as exc:
            logger.warning("could not sweep temporary files in %s: %s", self.path, exc.strerror)
        return removed

    # -- the directory -----------------------------------------------------------------------------

    def _directory_exists(self) -> bool:
        """Whether the store directory exists; `TokenStoreError` if others could write to it."""
        if self._directory_checked:
            return True
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise TokenStoreError(f"cannot use token directory {self.path}: {exc.strerror}") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise TokenStoreError(f"token store path {self.path} is not a directory")
        if st.st_mode & _OTHERS_WRITE:
            raise TokenStoreError(
                f"token directory {self.path} can be written by other users "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): make it private with chmod 700"
            )
        self._directory_checked = True
        return True

    def _make_directory(self) -> None:
        if self._directory_exists():
            return
        # Like `mkdir -p`, but every directory made here is 0700 whatever the umask: mkdir's mode
        # is filtered by the umask, which only removes bits, and chmod makes it exact.
        missing: list[Path] = []
        current = self.path
        while not os.path.lexists(current) and current.parent != current:
            missing.append(current)
            current = current.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=0o700)
            except FileExistsError:
                continue  # made by someone else meanwhile; the store directory is checked below
            except OSError as exc:
                raise TokenStoreError(f"cannot create token directory {directory}: {exc.strerror}") from exc
            with contextlib.suppress(OSError):
                directory.chmod(0o700)
        if not self._directory_exists():
            raise TokenStoreError(f"cannot create token directory {self.path}: it vanished")

    def _sync_directory(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- locks -------------------------------------------------------------------------------------

    def _file_lock(self, key: str) -> tuple[filelock.BaseFileLock, Path]:
        self._make_directory()
        path = self.path / f"{file_stem(key)}.lock"
        # A fresh lock object per use: its own descriptor, so threads and asyncio tasks of this
        # process exclude each other as well as other processes (filelock's locks are reentrant).
        return filelock.FileLock(path, mode=0o600, thread_local=False), path

    def _timeout_error(self, path: Path) -> TokenStoreError:
        return TokenStoreError(f"timed out after {self.lock_timeout} s waiting for the lock {path}")

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[NeverLost]:
        """Hold the cross-process file lock for `key`; `TokenStoreError` after `lock_timeout`."""
        lock, path = self._file_lock(key)
        try:
            lock.acquire(timeout=self.lock_timeout, poll_interval=self.poll_interval)
        except filelock.Timeout:
            raise self._timeout_error(path) from None
        except OSError as exc:
            raise TokenStoreError(f"cannot lock {path}: {exc.strerror}") from exc
        try:
            yield NEVER_LOST
        finally:
            lock.release()

    def alock(self, key: str) -> contextlib.AbstractAsyncContextManager[NeverLost]:
        """Hold the same lock from asyncio code: non-blocking attempts and `asyncio.sleep` between."""
        lock, path = self._file_lock(key)

        def try_acquire() -> bool:
            try:
                lock.acquire(blocking=False)
            except filelock.Timeout:
                return False
            except OSError as exc:
                raise TokenStoreError(f"cannot lock {path}: {exc.strerror}") from exc
            return True

        return poll_lock(
            try_acquire,
            lock.release,
            poll_interval=self.poll_interval,
            give_up_after=self.lock_timeout,
            on_timeout=lambda: self._timeout_error(path),
        )

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.path)!r})"
