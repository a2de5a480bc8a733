"""`FileTokenStore`: one JSON file per key in a private directory, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import filelock

from tiktok_oauth.errors import TokenStoreError
from tiktok_oauth.stores._codec import MAX_TOKEN_BYTES, copy_token, decode_token, encode_token
from tiktok_oauth.stores._locking import poll_lock
from tiktok_oauth.token import TikTokToken

__all__ = ["FileTokenStore", "file_stem"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

# (st_ino, st_mtime_ns, st_size): a replaced or rewritten file differs in at least one of them.
_Identity = tuple[int, int, int]


def file_stem(key: str) -> str:
    """The file name (without extension) for `key`: a readable slug plus a SHA-256 of the key.

    Any string is a valid key: the slug keeps only `[A-Za-z0-9_-]` (at most 40 characters) and the
    hash makes names collision-free, also on case-insensitive file systems.
    """
    slug = _UNSAFE.sub("_", key)[:40] or "_"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{slug}.{digest}"


def _identity(st: os.stat_result) -> _Identity:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class FileTokenStore:
    """Tokens as files in the directory `path`: `<slug>.<hash>.json`, one per key.

    The directory is created (mode 0700) on the first write or lock, files are 0600, whatever the
    umask. A write goes to a temporary file that is fsynced and then renamed over the old one, so a
    crash at any moment leaves the old token or the new one, never a torn file. A corrupt or
    unreadable file raises `TokenStoreError` naming the path; `get` never replaces or deletes it.

    `get` stats the file once and returns a copy of the token it parsed last time when the file
    is unchanged (same inode, mtime and size), so the hot path does not re-read it.

    `lock(key)` is a `filelock.FileLock` on `<slug>.<hash>.lock` in the same directory: it works
    across processes, and waiting longer than `lock_timeout` seconds raises `TokenStoreError`.
    `alock(key)` waits for the same lock from asyncio code, polling every `poll_interval` seconds
    without blocking the event loop.

    Args:
        path: the directory (str or path-like).
        lock_timeout: seconds `lock` and `alock` wait before raising `TokenStoreError`.
        poll_interval: seconds between attempts while another holder has the lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float = 60.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.poll_interval = poll_interval
        self._cache: dict[str, tuple[_Identity, TikTokToken]] = {}

    def token_path(self, key: str) -> Path:
        """The file that holds the token for `key`."""
        return self.path / f"{file_stem(key)}.json"

    def get(self, key: str) -> TikTokToken | None:
        """Return a copy of the token stored under `key`, or None when there is no file."""
        path = self.token_path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._cache.pop(key, None)
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {path}: {exc.strerror}") from exc
        cached = self._cache.get(key)
        if cached is not None and cached[0] == _identity(st):
            return copy_token(cached[1])
        identity, token = self._read(path)
        self._cache[key] = (identity, token)
        return copy_token(token)

    def _read(self, path: Path) -> tuple[_Identity, TikTokToken]:
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            raise TokenStoreError(f"token file {path} vanished while reading it") from None
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {path}: {exc.strerror}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise TokenStoreError(f"cannot read token file {path}: not a regular file")
            with os.fdopen(os.dup(fd), "rb") as file:
                data = file.read(MAX_TOKEN_BYTES + 1)
        except OSError as exc:
            raise TokenStoreError(f"cannot read token file {path}: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return _identity(st), decode_token(data, f"token file {path}")

    def set(self, key: str, token: TikTokToken) -> None:
        """Write `token` under `key` atomically (temporary file, fsync, rename, fsync directory)."""
        path = self.token_path(key)
        data = encode_token(token, f"token file {path}")
        self._make_directory()
        temporary = self.path / f".{file_stem(key)}.{secrets.token_hex(8)}.tmp"
        try:
            identity = self._write_new(temporary, data)
            temporary.replace(path)
            self._sync_directory()
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise TokenStoreError(f"cannot write token file {path}: {exc.strerror}") from exc
        # Cached under our inode's identity: if another writer replaced it since, `get` sees a new one.
        self._cache[key] = (identity, copy_token(TikTokToken.from_json(data)))

    @staticmethod
    def _write_new(path: Path, data: bytes) -> _Identity:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC | _O_NOFOLLOW
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(fd, 0o600)
            file.write(data)
            file.flush()
            os.fsync(fd)
            return _identity(os.fstat(fd))

    def delete(self, key: str) -> None:
        """Remove the file for `key`; no error when there is none."""
        path = self.token_path(key)
        self._cache.pop(key, None)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise TokenStoreError(f"cannot delete token file {path}: {exc.strerror}") from exc
        with contextlib.suppress(OSError):
            self._sync_directory()

    def _make_directory(self) -> None:
        try:
            self.path.mkdir(mode=0o700)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._make_directory()
            return
        except FileExistsError:
            if not self.path.is_dir():
                raise TokenStoreError(f"token store path {self.path} is not a directory") from None
            return
        except OSError as exc:
            raise TokenStoreError(f"cannot create token directory {self.path}: {exc.strerror}") from exc
        # mkdir's mode is filtered by the umask, which only removes bits; chmod makes it exact.
        self.path.chmod(0o700)

    def _sync_directory(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _file_lock(self, key: str) -> tuple[filelock.BaseFileLock, Path]:
        self._make_directory()
        path = self.path / f"{file_stem(key)}.lock"
        # A fresh lock object per use: its own descriptor, so threads and asyncio tasks of this
        # process exclude each other as well as other processes (filelock's locks are reentrant).
        return filelock.FileLock(path, mode=0o600, thread_local=False), path

    def _timeout_error(self, path: Path) -> TokenStoreError:
        return TokenStoreError(f"timed out after {self.lock_timeout} s waiting for the lock {path}")

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the cross-process file lock for `key`; `TokenStoreError` after `lock_timeout`."""
        lock, path = self._file_lock(key)
        try:
            lock.acquire(timeout=self.lock_timeout, poll_interval=self.poll_interval)
        except filelock.Timeout:
            raise self._timeout_error(path) from None
        except OSError as exc:
            raise TokenStoreError(f"cannot lock {path}: {exc.strerror}") from exc
        try:
            yield
        finally:
            lock.release()

    def alock(self, key: str) -> contextlib.AbstractAsyncContextManager[None]:
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
