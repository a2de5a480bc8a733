"""A real PostgreSQL server for tests: `initdb` + `pg_ctl` in a temporary directory, on a free loopback port.

Reusable outside the store tests (process tests, benchmarks):

    from tests._postgres import PostgresServer, require_postgres
    with PostgresServer(require_postgres()) as server:
        server.url                  # postgresql://postgres@127.0.0.1:<port>/postgres
        server.stop(); server.start()   # the data survives: same directory, same port

Running as root (CI containers), the server runs as the unprivileged `postgres` user (created by Debian's
`postgresql` package), or `nobody` when that user does not exist: PostgreSQL refuses to run as root.
`require_postgres()` fails the test when the binaries are missing and the `CI` environment variable is set
(CI must never skip these tests), and skips it otherwise.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self

import pytest

from tests._redis import free_port

__all__ = ["PostgresServer", "find_postgres_bin", "require_postgres"]

INSTALL_HINT = (
    "PostgreSQL's initdb/pg_ctl were not found: apt-get install postgresql (or brew install postgresql)"
)


def find_postgres_bin() -> Path | None:
    """The directory holding `initdb` and `pg_ctl` (Debian's newest `/usr/lib/postgresql/*/bin`, or PATH)."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def require_postgres() -> Path:
    """Return the PostgreSQL binaries' directory; fail under CI, skip elsewhere, when they are missing."""
    path = find_postgres_bin()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{INSTALL_HINT} (CI is set, so this is a failure, not a skip)")
        pytest.skip(INSTALL_HINT)
    return path


def _server_user() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, served on 127.0.0.1:`port` (trust auth, no password).

    `start()` waits until it accepts connections; `stop()` shuts it down (`mode="fast"` by default:
    clients are disconnected, the data is kept); `start()` again brings it back on the same port.
    Durability settings are relaxed for speed (`fsync=off`): a clean stop keeps everything.
    """

    def __init__(self, bin_dir: Path, *, port: int | None = None) -> None:
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.user = _server_user()
        self.directory = Path(tempfile.mkdtemp(prefix="tiktok-oauth-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.running = False
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")  # fmt: skip

    @property
    def url(self) -> str:
        """`postgresql://postgres@127.0.0.1:<port>/postgres` (the library maps it to psycopg 3)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: object, timeout: float = 60) -> None:
        command = [str(self.bin_dir / program), *map(str, args)]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n{log}"
            )

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            raise RuntimeError("this PostgreSQL server is already running")
        options = (
            f"-p {self.port} -h 127.0.0.1 -k {self.directory} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w", "-t", int(timeout), "start",
                  timeout=timeout + 10)  # fmt: skip
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`pg_ctl stop -m fast`: sessions are cut, the data is kept)."""
        if not self.running:
            return
        self.running = False
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def close(self) -> None:
        """Stop the server and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
