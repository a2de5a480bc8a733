"""`tiktok-oauth login`: authorize the app in a browser and save the user's token in a `FileTokenStore`."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from urllib.parse import parse_qs, urlsplit

from tiktok_oauth._cli._common import (
    CLIError,
    client_from_args,
    describe_token,
    normalise_scope,
    open_store,
    where,
)
from tiktok_oauth._cli.catcher import RedirectCatcher, loopback_redirect
from tiktok_oauth._cli.qr_login import run_qr_login
from tiktok_oauth.auth import TokenSource

__all__ = ["run_login"]


def run_login(args: argparse.Namespace) -> int:
    """Run `tiktok-oauth login`: consent in the browser, code exchange, token saved; return the exit code."""
    if args.qr:
        return run_qr_login(args)
    redirect_uri: str = args.redirect_uri
    store = open_store(args)
    with client_from_args(args, redirect_uri=redirect_uri, scope=normalise_scope(args.scope)) as client:
        verifier = client.generate_code_verifier() if args.pkce else None
        url, state = client.create_authorization_url(code_verifier=verifier)
        loopback = loopback_redirect(redirect_uri)
        if loopback is None:
            callback = _pasted_callback(url, redirect_uri, open_browser=not args.no_browser)
        else:
            host, port, path = loopback
            callback = _caught_callback(
                url, redirect_uri, host, port, path, open_browser=not args.no_browser, timeout=args.timeout
            )
        token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
        key: str = args.key or token.open_id or "default"
        TokenSource.over(client, store, key).store_login(token)  # under the lock: the one writer
    print(f"Logged in. Token saved in {where(store)} under key {key!r}:")
    for line in describe_token(token):
        print(line)
    return 0


def _show_authorization_url(url: str, *, open_browser: bool) -> None:
    print("Open this URL in a browser, log in to TikTok and approve the app:")
    print(f"  {url}", flush=True)
    if not open_browser:
        return
    try:
        opened = webbrowser.open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        print("(No browser could be opened: open the URL above yourself.)", flush=True)


def _caught_callback(
    url: str, redirect_uri: str, host: str, port: int, path: str, *, open_browser: bool, timeout: float
) -> str:
    try:
        catcher = RedirectCatcher(
            host, port, path, scheme_and_netloc=f"http://{urlsplit(redirect_uri).netloc}"
        )
    except OSError as exc:
        raise CLIError(
            f"cannot listen on {host}:{port} for TikTok's redirect ({exc.strerror or exc}): "
            "free that port or choose another --redirect-uri"
        ) from None
    with catcher:
        _show_authorization_url(url, open_browser=open_browser)
        print(f"Waiting up to {timeout:g} s for the browser to come back to {redirect_uri} ...", flush=True)
        callback = catcher.wait(timeout)
    if callback is None:
        raise CLIError(
            f"timed out after {timeout:g} s waiting for the browser to come back to {redirect_uri}"
        )
    print("TikTok redirected the browser back; exchanging the code for a token ...", flush=True)
    return callback


def _pasted_callback(url: str, redirect_uri: str, *, open_browser: bool) -> str:
    _show_authorization_url(url, open_browser=open_browser)
    print(f"After you approve, TikTok sends the browser to {redirect_uri}?code=... ; that page may not load.")
    print("Copy the whole address from the browser's address bar and paste it here.")
    print("Redirected URL: ", end="", flush=True)
    pasted = sys.stdin.readline().strip().strip("'\"<>")
    if not pasted:
        raise CLIError("no redirected URL was pasted")
    query = parse_qs(urlsplit(pasted).query)
    if "code" not in query and "error" not in query:
        raise CLIError(
            "the pasted text has no code= or error= parameter: paste the whole address the browser was sent to"
        )
    return pasted
