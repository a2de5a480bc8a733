"""`tiktok-oauth fake serve`: a served `FakeTikTok` (consent page, every endpoint, control endpoints) until
Ctrl-C or SIGTERM, so an app in another process can be tried against it."""

from __future__ import annotations

import argparse
import secrets
import signal
import threading
from typing import Any

__all__ = ["add_fake"]


def add_fake(commands: Any, common: argparse.ArgumentParser) -> None:
    """The `fake` command and its `serve` action."""
    fake = commands.add_parser(
        "fake",
        parents=[common],
        help="run a fake TikTok on this machine, for an app in another process",
        description="A FakeTikTok served on 127.0.0.1: TikTok's consent page and endpoints, answered the way "
        "TikTok answers them, with control endpoints (GET /_fake/state, POST /_fake/expire, "
        "POST /_fake/revoke).",
    )
    actions = fake.add_subparsers(title="actions", dest="action", required=True, metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        parents=[common],
        help="serve the fake until Ctrl-C",
        description="Serve a FakeTikTok on 127.0.0.1 until Ctrl-C or SIGTERM; print its base URL and the "
        "app credentials it accepts.",
    )
    serve.add_argument("--port", type=int, default=0, metavar="PORT", help="the port (default: a free one)")
    serve.add_argument("--client-key", default="fake-client-key", help="the client key it accepts")
    serve.add_argument(
        "--client-secret", help="the client secret it accepts (default: a new random one, printed)"
    )
    serve.set_defaults(handler=run_fake_serve)


def run_fake_serve(args: argparse.Namespace) -> int:
    """Serve until a signal; exit 0."""
    from tiktok_oauth.testing import FakeTikTok  # noqa: PLC0415 - test helpers load only here

    secret = args.client_secret or secrets.token_urlsafe(24)
    fake = FakeTikTok(client_key=args.client_key, client_secret=secret)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with fake.serve(port=args.port) as base_url:
            endpoints = fake.endpoints(base_url)
            print(f"A fake TikTok is serving at {base_url} (its consent page, token, revoke, user info).")
            print(f"  client key:     {fake.client_key}")
            print(f"  client secret:  {fake.client_secret}  (the fake's own; not a TikTok secret)")
            print(f"  authorize URL:  {endpoints['authorize_url']}")
            print(f"  token URL:      {endpoints['token_url']}")
            print(f"  revoke URL:     {endpoints['revoke_url']}")
            print(f"  counters:       GET {base_url}/_fake/state")
            print(f"Point a client at it: TikTokOAuth2Client(key, secret, base_url={base_url!r}),")
            print(f"or any tiktok-oauth command: --base-url {base_url}")
            print("Press Ctrl-C to stop.", flush=True)
            stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Stopped.")
    return 0
