"""A real `redis-server` for tests: started on a free loopback port, stopped afterwards.

Reusable outside the store tests (multi-process tests, benchmarks):

    from tests._redis import RedisServer, require_redis_server
    with RedisServer(require_redis_server()) as server:
        client = server.client()          # a redis.Redis with short socket timeouts and no retries
        ...

`require_redis_server()` fails the test when `redis-server` is missing and the `CI` environment variable
is set (CI must never skip these tests), and skips it otherwise.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import pytest

__all__ = ["RedisServer", "free_port", "require_redis_server"]

INSTALL_HINT = "redis-server is not on PATH: apt-get install redis-server (or brew install redis)"


def require_redis_server() -> str:
    """Return the path of `redis-server`; fail under CI, skip elsewhere, when it is missing."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{INSTALL_HINT} (CI is set, so this is a failure, not a skip)")
        pytest.skip(INSTALL_HINT)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One `redis-server` process in a temporary directory, on `port` (a free one by default).

    `start()` waits until it answers PING; `stop()` terminates it (`kill=True`: SIGKILL, as a crash);
    `start()` again restarts it on the same port and directory, so with `persistent=True`
    (append-only file, fsync always) the data survives a kill.
    """

    def __init__(
        self,
        executable: str = "redis-server",
        *,
        port: int | None = None,
        persistent: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.executable = executable
        self.port = port or free_port()
        self.persistent = persistent
        self.extra_args = extra_args
        self._directory = tempfile.TemporaryDirectory(prefix="tiktok-oauth-redis-")
        self.directory = Path(self._directory.name)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:<port>/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The command line that starts the server."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        )
        return [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            *persistence,
            "--dir", str(self.directory),
            "--daemonize", "no",
            "--protected-mode", "no",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        if self.process is not None:
            raise RuntimeError("this redis-server is already running")
        log = (self.directory / "redis.log").open("ab")
        with log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not _pings(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                output = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{output}")
            time.sleep(0.02)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with `kill=True`) and wait for it to exit."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            if process is not None:
                process.wait()
            return
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo `pause()`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client_kwargs(self) -> dict[str, Any]:
        """Connection settings for tests: short timeouts, no retries, so failures are quick."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return {
            "host": "127.0.0.1",
            "port": self.port,
            "socket_timeout": 1.0,
            "socket_connect_timeout": 1.0,
            "retry": Retry(NoBackoff(), 0),
        }

    def client(self, **kwargs: Any) -> Any:
        """A new sync `redis.Redis` for this server (close it when done)."""
        import redis

        return redis.Redis(**{**self.client_kwargs(), **kwargs})

    def async_client(self, **kwargs: Any) -> Any:
        """A new `redis.asyncio.Redis` for this server (create it inside the loop that uses it)."""
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # redis.asyncio takes its own Retry (redis-py 6+ warns about, and converts, a sync one).
        return redis.asyncio.Redis(**{**self.client_kwargs(), "retry": Retry(NoBackoff(), 0), **kwargs})

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        self._directory.cleanup()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
