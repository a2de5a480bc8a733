"""Run the documentation's code samples against `FakeTikTok`: the machinery behind `tests/test_docs.py`.

A sample is written as real user code, with TikTok's real URLs. While a sample runs, this module makes that
code meet a fake TikTok instead of the real one:

- `httpx2.Client` / `httpx2.AsyncClient` (what the library's clients make) and `httpx.Client` /
  `httpx.AsyncClient` made without a `transport=` get the fake's transport;
- every new `requests.Session` (also the one inside `requests.get`) has the fake mounted;
- niquests sessions (sync and async) and aiohttp client sessions send what they address to
  `open.tiktokapis.com` to the fake served on loopback (started on first use), after auth has run;
- `TIKTOK_CLIENT_KEY` / `TIKTOK_CLIENT_SECRET` hold the fake app's credentials, `SESSION_SECRET_KEY` a web
  app's session key (`REDIS_URL` a test Redis);
- `webbrowser.open(url)` plays a user who consents on TikTok's page; when the redirect URI is on loopback
  `http`, it then follows the redirect to it, as a browser would (in a thread, so the sample's one-shot
  server can answer);
- `input()` plays a user who consents on the page of the last authorization URL and pastes the callback URL;
- `wait_qr_login(qr)` (both clients) plays a user whose phone scans and confirms `qr` as the wait begins
  (not on the testing pages, whose samples scan with their own fake);
- the working directory is a temporary directory of the page, so token files land there.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import os
import re
import textwrap
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import httpx
import httpx2
import requests

from tiktok_oauth import AsyncTikTokOAuth2Client, TikTokOAuth2Client
from tiktok_oauth.testing import FakeTikTok

#: The fake app's credentials; samples read them from these environment variables.
CLIENT_KEY = "docs-client-key"
CLIENT_SECRET = "docs-client-secret"

#: The web apps' session signing key, from `SESSION_SECRET_KEY` as a deployment would set it.
SESSION_SECRET_KEY = "docs-session-secret-key"

#: First line of a ```python block that is shown but not run, followed by the reason.
NOT_RUN = "# not run:"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    language: str
    source: str

    @property
    def runnable(self) -> bool:
        return self.language == "python" and not self.source.lstrip().startswith(NOT_RUN)


def code_blocks(path: Path) -> list[Block]:
    """Every fenced block of `path`, indented ones (in tabs and admonitions) included, dedented."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip().lstrip("{").lstrip(".")
        language = info.split()[0] if info.split() else ""
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
        blocks.append(Block(path, index + 1, language, textwrap.dedent("\n".join(body)) + "\n"))
        index = end + 1
    return blocks


@dataclass
class _User:
    """A user in front of a browser: consents on TikTok's page for the fake (and scans QR codes with a phone)."""

    fake: FakeTikTok
    authorization_urls: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def saw(self, url: str) -> None:
        self.authorization_urls.append(url)

    def paste_callback(self, prompt: object = "") -> str:
        del prompt
        if not self.authorization_urls:
            raise RuntimeError("input() was called before any authorization URL was created")
        return self.fake.authorize(self.authorization_urls[-1])

    def open_browser(self, url: str, *_: Any, **__: Any) -> bool:
        self.saw(url)
        callback = self.fake.authorize(url)
        parts = urlsplit(callback)
        if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost"}:
            thread = threading.Thread(target=_follow_redirect, args=(callback,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return True

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads.clear()


def _scanning(user: _User, original: Callable[..., Any], *, is_async: bool) -> Callable[..., Any]:
    """`wait_qr_login` with the user's phone scanning and confirming the QR code as the wait begins."""
    if is_async:

        async def await_qr_login(self: Any, qr: Any, *args: Any, **kwargs: Any) -> Any:
            user.fake.scan_qr(qr.scan_url, open_id="test-open-id")
            return await original(self, qr, *args, **kwargs)

        return await_qr_login

    def wait_qr_login(self: Any, qr: Any, *args: Any, **kwargs: Any) -> Any:
        user.fake.scan_qr(qr.scan_url, open_id="test-open-id")
        return original(self, qr, *args, **kwargs)

    return wait_qr_login


def _follow_redirect(url: str) -> None:
    """GET the loopback callback URL, as the browser does after TikTok's redirect; retry until it listens."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with opener.open(url, timeout=5) as response:
                response.read()
        except urllib.error.URLError:
            time.sleep(0.05)
        else:
            return


def _default_transport(original: Callable[..., None], make: Callable[[], Any]) -> Callable[..., None]:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("transport") is None and not kwargs.get("mounts"):
            kwargs["transport"] = make()
            kwargs.setdefault("trust_env", False)  # an environment proxy would bypass the transport
        original(self, *args, **kwargs)

    return init


def _mounting(fake: FakeTikTok, original: Callable[..., None]) -> Callable[..., None]:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fake.mount(self)

    return init


def _recording(user: _User, original: Callable[..., Any]) -> Callable[..., Any]:
    def create_authorization_url(self: Any, *args: Any, **kwargs: Any) -> Any:
        url, state = original(self, *args, **kwargs)
        user.saw(url)
        return url, state

    return create_authorization_url


@dataclass
class _Served:
    """The fake served on loopback, started when a niquests or aiohttp sample first needs it."""

    fake: FakeTikTok
    stack: contextlib.ExitStack
    base_url: str | None = None

    def rewrite(self, url: str) -> str:
        """`url` on the served fake when it is TikTok's API host, else `url`."""
        parts = urlsplit(url)
        if parts.hostname != "open.tiktokapis.com":
            return url
        if self.base_url is None:
            self.base_url = self.stack.enter_context(self.fake.serve())
        return self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")


def _niquests_patches(served: _Served) -> dict[Any, Callable[..., None]]:
    """niquests sessions with an adapter for TikTok's API host that sends to the served fake."""
    import niquests
    import niquests.adapters

    class ToFake(niquests.adapters.HTTPAdapter):  # type: ignore[misc]
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            original, request.url = request.url, served.rewrite(request.url)
            try:
                return super().send(request, *args, **kwargs)
            finally:
                request.url = original  # the auth sees the request it prepared

    class AsyncToFake(niquests.adapters.AsyncHTTPAdapter):  # type: ignore[misc]
        async def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            original, request.url = request.url, served.rewrite(request.url)
            try:
                return await super().send(request, *args, **kwargs)
            finally:
                request.url = original

    def mounting(original: Callable[..., None], adapter: type[Any]) -> Callable[..., None]:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.mount("https://open.tiktokapis.com", adapter())

        return init

    return {
        niquests.Session: mounting(niquests.Session.__init__, ToFake),
        niquests.AsyncSession: mounting(niquests.AsyncSession.__init__, AsyncToFake),
    }


def _aiohttp_patches(served: _Served) -> dict[Any, Callable[..., None]]:
    """aiohttp sessions whose innermost middleware sends requests for TikTok's API host to the served fake."""
    import aiohttp
    from yarl import URL

    async def to_fake(request: Any, handler: Any) -> Any:
        original = request.url
        request.url = URL(served.rewrite(str(original)))
        try:
            return await handler(request)
        finally:
            request.url = original

    original_init = aiohttp.ClientSession.__init__

    def init(self: Any, *args: Any, middlewares: Any = (), **kwargs: Any) -> None:
        original_init(self, *args, middlewares=(*middlewares, to_fake), **kwargs)

    return {aiohttp.ClientSession: init}


@contextlib.contextmanager
def fake_world(
    fake: FakeTikTok, directory: Path, *, patch_http: bool = True, environ: dict[str, str] | None = None
) -> Iterator[None]:
    """Point the libraries a sample uses at `fake` (see the module docstring); undo it on exit."""
    user = _User(fake)
    variables = {
        "TIKTOK_CLIENT_KEY": CLIENT_KEY,
        "TIKTOK_CLIENT_SECRET": CLIENT_SECRET,
        "SESSION_SECRET_KEY": SESSION_SECRET_KEY,
        **(environ or {}),
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.chdir(directory))
        stack.enter_context(mock.patch.dict(os.environ, variables))
        stack.enter_context(mock.patch.object(builtins, "input", user.paste_callback))
        stack.enter_context(mock.patch.object(webbrowser, "open", user.open_browser))
        for cls in (TikTokOAuth2Client, AsyncTikTokOAuth2Client):
            recording = _recording(user, cls.create_authorization_url)
            stack.enter_context(mock.patch.object(cls, "create_authorization_url", recording))
            if patch_http:  # the testing pages' samples scan with their own fake
                scanning = _scanning(user, cls.wait_qr_login, is_async=cls is AsyncTikTokOAuth2Client)
                stack.enter_context(mock.patch.object(cls, "wait_qr_login", scanning))
        if patch_http:
            patches = {
                httpx.Client: _default_transport(httpx.Client.__init__, fake.transport),
                httpx.AsyncClient: _default_transport(httpx.AsyncClient.__init__, fake.async_transport),
                httpx2.Client: _default_transport(httpx2.Client.__init__, fake.transport),
                httpx2.AsyncClient: _default_transport(httpx2.AsyncClient.__init__, fake.async_transport),
                requests.Session: _mounting(fake, requests.Session.__init__),
            }
            served = _Served(fake, stack)
            if importlib.util.find_spec("niquests") is not None:
                patches.update(_niquests_patches(served))
            if importlib.util.find_spec("aiohttp") is not None:
                patches.update(_aiohttp_patches(served))
            for cls, init in patches.items():
                stack.enter_context(mock.patch.object(cls, "__init__", init))
        stack.callback(user.join)
        yield


def call_test_functions(namespace: dict[str, Any], before: set[str], directory: Path) -> list[str]:
    """Call the `test_*` functions a sample defined, as pytest would, with a fresh `fake_tiktok`."""
    called = []
    for name, function in list(namespace.items()):
        if name.startswith("test_") and name not in before and callable(function):
            fixtures = {"fake_tiktok": FakeTikTok(), "tmp_path": directory}
            wanted = function.__code__.co_varnames[: function.__code__.co_argcount]
            function(**{argument: fixtures[argument] for argument in wanted})
            called.append(name)
    return called
