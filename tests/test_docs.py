"""Every ```python block of README.md and docs/*.md runs, against `FakeTikTok`, so no sample can rot.

How the samples run:

- One test per block, with the id `file:line` (the line of the opening fence).
- The blocks of one page share one namespace and run in order, like cells of a notebook: a later block may use
  what an earlier one defined. Selecting one block (`-k "auth.md:42"`) runs the page's earlier blocks first.
  If an earlier block failed, the later ones fail too, naming it.
- Each page has its own `FakeTikTok` (with the credentials in `TIKTOK_CLIENT_KEY` / `TIKTOK_CLIENT_SECRET`)
  and its own temporary working directory. While a block runs, httpx, requests, `input()` and
  `webbrowser.open` are pointed at that fake (see `tests/docs_support.py`), so samples use TikTok's real
  URLs and read like user code.
- Pages about testing (`PLAIN_PAGES`) run without those patches: their samples build their own `FakeTikTok`
  and transports, as a user's tests would. Functions named `test_*` that a block defines are then called,
  with a fresh `fake_tiktok` (and `tmp_path`), as pytest would.
- A block that mentions `django` runs with Django configured as `tests/_django.py` does (cookie sessions), as a
  project's settings would be.
- A block that mentions `REDIS_URL` gets a real redis-server (from `tests/_redis.py`) in that variable;
  without `redis-server` it is skipped (and fails under `CI`, like the store tests).
- Not run: blocks in other languages (```bash, ```text, ```toml, ...), and a ```python block whose first line
  is the marker comment `# not run: <reason>` (used for code of other libraries, e.g. pytiktok).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._django import configure_django
from tests._redis import RedisServer, require_redis_server
from tests.docs_support import CLIENT_KEY, CLIENT_SECRET, Block, call_test_functions, code_blocks, fake_world
from tiktok_oauth.testing import FakeTikTok

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLAIN_PAGES = {"testing.md", "web.md", "webhooks.md"}


def _blocks() -> list[Block]:
    return [block for page in PAGES if page.exists() for block in code_blocks(page) if block.runnable]


BLOCKS = _blocks()


@dataclass
class _Page:
    """The state the blocks of one page share."""

    directory: Path
    fake: FakeTikTok = field(default_factory=lambda: FakeTikTok(CLIENT_KEY, CLIENT_SECRET))
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__docs__"})
    done: int = 0
    failed: str | None = None


@pytest.fixture(scope="session")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, _Page]:
    return {path: _Page(tmp_path_factory.mktemp(path.stem)) for path in PAGES}


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with RedisServer(require_redis_server()) as server:
        yield server.url


def _run(block: Block, page: _Page, environ: dict[str, str]) -> None:
    code = compile(block.source, f"{block.path.name}:{block.line}", "exec")
    before = set(page.namespace)
    plain = block.path.name in PLAIN_PAGES
    if "django" in block.source:
        configure_django()  # a project's settings.py, which a sample cannot show whole
    with fake_world(page.fake, page.directory, patch_http=not plain, environ=environ):
        exec(code, page.namespace)  # noqa: S102 - running the documentation is the point
        if plain:
            call_test_functions(page.namespace, before, page.directory)


def _needs_redis(block: Block) -> bool:
    return "REDIS_URL" in block.source


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.path.name}:{b.line}" for b in BLOCKS])
def test_sample_runs(block: Block, pages: dict[Path, _Page], request: pytest.FixtureRequest) -> None:
    page = pages[block.path]
    runnable = [b for b in BLOCKS if b.path == block.path]
    position = runnable.index(block)
    while page.done <= position:
        current = runnable[page.done]
        if page.failed is not None:
            pytest.fail(f"an earlier block of this page failed: {page.failed}")
        environ = {"REDIS_URL": request.getfixturevalue("redis_url")} if _needs_redis(current) else {}
        page.done += 1
        try:
            _run(current, page, environ)
        except BaseException:
            page.failed = f"{current.path.name}:{current.line}"
            raise


def test_every_page_has_samples_or_says_why() -> None:
    assert BLOCKS, "no ```python blocks found"
    assert any(block.path.name == "README.md" for block in BLOCKS)


@pytest.mark.slow
def test_mkdocs_build_is_strict_clean(tmp_path: Path) -> None:
    # The docs toolchain is the `docs` extra, not `test`: CI builds the docs strictly with `nox -s docs`.
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None:
        pytest.skip("mkdocs and mkdocstrings are not installed (pip install -e '.[docs]'; nox -s docs)")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
