"""The `tiktok-oauth` command line (also `python -m tiktok_oauth`): `demo`, `login` and `token`.

```
tiktok-oauth demo                                   the whole flow against a local FakeTikTok
tiktok-oauth demo --web                             the same as a web app, in a browser
tiktok-oauth login [--scope ...] [--redirect-uri]   log in at TikTok in a browser, save the token
tiktok-oauth login --qr                             log in by scanning a QR code in the terminal (extra `qr`)
tiktok-oauth token show|refresh|revoke              inspect, refresh, or revoke-and-delete a token
tiktok-oauth token refresh --all [--due 1h]        refresh every due token (refresh_due)
```

Errors are one line on stderr and exit 1 (2 for usage errors, as argparse); `--debug` adds the traceback.
No access token, refresh token or client secret is ever printed.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from typing import Final

from authlib.common.errors import AuthlibBaseError

from tiktok_oauth import __version__
from tiktok_oauth._cli._common import CLIENT_KEY_ENV, CLIENT_SECRET_ENV, CLIError, default_store_path
from tiktok_oauth._cli.demo import run_demo
from tiktok_oauth._cli.fake import add_fake
from tiktok_oauth._cli.keeper import add_keeper
from tiktok_oauth._cli.login import run_login
from tiktok_oauth._cli.refresh_all import add_options as add_refresh_all_options
from tiktok_oauth._cli.refresh_all import parse_duration
from tiktok_oauth._cli.tokens import list_tokens, refresh_token, revoke_token, show_token
from tiktok_oauth.errors import ReauthorizationRequiredError, TikTokOAuthError

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _common_options(*, debug_default: object) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=debug_default,
        help="show a traceback when something fails",
    )
    return common


def _credential_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("app credentials")
    group.add_argument(
        "--client-key", metavar="KEY", help=f"the app's client key (default: ${CLIENT_KEY_ENV})"
    )
    group.add_argument(
        "--client-secret",
        metavar="SECRET",
        help=f"the app's client secret (default: ${CLIENT_SECRET_ENV}; prefer the variable: "
        "arguments are visible to other users in the process list)",
    )
    testing = parent.add_argument_group(
        "testing", "For testing against FakeTikTok (tiktok_oauth.testing) served on loopback."
    )
    testing.add_argument(
        "--base-url",
        metavar="URL",
        help="every TikTok endpoint under this origin (what `tiktok-oauth fake serve` prints)",
    )
    testing.add_argument(
        "--authorize-url", metavar="URL", help="TikTok's authorize URL, for testing against FakeTikTok"
    )
    testing.add_argument(
        "--token-url", metavar="URL", help="TikTok's token URL, for testing against FakeTikTok"
    )
    testing.add_argument(
        "--revoke-url", metavar="URL", help="TikTok's revoke URL, for testing against FakeTikTok"
    )
    return parent


def _encryption_keys(text: str) -> str:
    # ArgumentTypeError: argparse quotes the value of any other error, and this value is a secret.
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a Fernet key (encryption is never silently off)")
    return text


def _store_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--store",
        metavar="DIR_OR_URL",
        help="a FileTokenStore directory, a redis:// or rediss:// URL, or an SQLAlchemy URL "
        f"(sqlite:///..., postgresql://...) (default: {default_store_path()})",
    )
    parent.add_argument(
        "--table",
        metavar="NAME",
        help="the table of an SQL --store (default: tiktok_oauth_tokens; also ?table=NAME in the URL)",
    )
    parent.add_argument(
        "--encryption-key",
        type=_encryption_keys,
        metavar="KEYS",
        help="Fernet key(s), comma-separated, the first encrypting: an EncryptedTokenStore over --store "
        "(default: $TIKTOK_OAUTH_KEY)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    """The `tiktok-oauth` argument parser; each command sets `handler` to the function that runs it."""
    # Sub-commands take --debug too; SUPPRESS keeps their default from overwriting `tiktok-oauth --debug`.
    common = _common_options(debug_default=argparse.SUPPRESS)
    credentials, store = _credential_options(), _store_options()
    parser = argparse.ArgumentParser(
        prog="tiktok-oauth",
        description="TikTok OAuth 2.0 (Login Kit v2) from the command line. Tokens are never printed.",
        parents=[_common_options(debug_default=False)],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="walk the whole flow against a fake TikTok on this machine (no credentials)",
        description="Run the whole OAuth flow against an embedded FakeTikTok on 127.0.0.1, printing each "
        "step: authorization URL, consent, code exchange, token store, API calls through requests and "
        "httpx, forced expiry and refresh, revocation. With --web: serve a small web app with "
        "'Log in with TikTok' and the fake's consent page, to try in a browser.",
    )
    demo.add_argument(
        "--web", action="store_true", help="serve a web app to log in to in a browser, until Ctrl-C"
    )
    demo.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="PORT",
        help="the web app's port on 127.0.0.1 (default: a free one)",
    )
    demo.add_argument("--open", action="store_true", help="open the web app in a browser (with --web)")
    demo.set_defaults(handler=run_demo)

    login = commands.add_parser(
        "login",
        parents=[common, credentials, store],
        help="log in at TikTok in a browser and save the user's token",
        description="Open TikTok's consent page in a browser and save the user's token. On an "
        "http://localhost:PORT/ or http://127.0.0.1:PORT/ redirect URI the redirect is caught by a "
        "one-shot local server; otherwise paste the address the browser was redirected to. With --qr: "
        "show a QR code in the terminal to scan with the TikTok app, for a machine with no browser.",
    )
    login.add_argument(
        "--qr",
        action="store_true",
        help="log in by scanning a QR code shown in the terminal (needs the 'qr' extra: segno)",
    )
    login.add_argument(
        "--interval",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="with --qr: seconds between two checks of the QR code (default: %(default)g)",
    )
    login.add_argument(
        "--scope", default="user.info.basic", help="comma-separated scopes (default: %(default)s)"
    )
    login.add_argument(
        "--redirect-uri",
        default="https://localhost/",
        metavar="URI",
        help="the redirect URI registered for the app (default: %(default)s)",
    )
    login.add_argument(
        "--pkce",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send a PKCE code challenge (default: on)",
    )
    login.add_argument("--key", help="the key to store the token under (default: the user's open_id)")
    login.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")
    login.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the browser's redirect, or with --qr for the phone (default: %(default)g)",
    )
    login.set_defaults(handler=run_login)

    add_keeper(commands, [common, credentials, store])
    add_fake(commands, common)

    token = commands.add_parser(
        "token",
        parents=[common],
        help="show, refresh, revoke or list stored tokens",
        description="Inspect, refresh, or revoke-and-delete a token saved by `tiktok-oauth login`.",
    )
    actions = token.add_subparsers(title="actions", dest="action", required=True, metavar="ACTION")
    key_option = argparse.ArgumentParser(add_help=False)
    key_option.add_argument(
        "--key", help="the token's key in the store (default: the one token saved under its open_id)"
    )
    for name, handler, parents, help_text, description in (
        (
            "show",
            show_token,
            [common, store, key_option],
            "print its open_id, scopes and expiries",
            (
                "Print a stored token's open_id, scopes and expiries (local time and relative); "
                "the tokens themselves are masked."
            ),
        ),
        (
            "refresh",
            refresh_token,
            [common, credentials, store, key_option],
            "refresh it now and store the new one",
            "Refresh a stored token now and store the new one (TikTok rotates the refresh token).",
        ),
        (
            "revoke",
            revoke_token,
            [common, credentials, store, key_option],
            "revoke it at TikTok and delete it",
            "Revoke a stored token's access token at TikTok, then delete the token from the store.",
        ),
    ):
        action = actions.add_parser(name, parents=parents, help=help_text, description=description)
        action.set_defaults(handler=handler)
        if name == "refresh":
            add_refresh_all_options(action, handler)
    listing = actions.add_parser(
        "list",
        parents=[common, store],
        help="one line per stored token",
        description="List the stored tokens: key, open_id, scopes, and when the access and the refresh "
        "token expire (expired ones marked). Never a secret.",
    )
    listing.add_argument("--json", action="store_true", help="print one JSON array of objects")
    listing.add_argument(
        "--needs-login",
        nargs="?",
        const=0.0,
        default=None,
        type=parse_duration,
        metavar="BEFORE",
        help="only the users who must log in again: keys marked needs_login and, with BEFORE (7d, 12h), "
        "those whose refresh token expires within it",
    )
    listing.set_defaults(handler=list_tokens)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, CLIError | TikTokOAuthError):
        message = str(exc)
        if isinstance(exc, ReauthorizationRequiredError):
            message += " (run `tiktok-oauth login` again)"
    elif isinstance(exc, AuthlibBaseError | OSError):
        message = str(exc) or type(exc).__name__
    else:
        message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for a traceback)"
    return " ".join(message.split())


#: Options whose value is a secret that may begin with "-" (a Fernet key is url-safe base64: 1 in 64 does).
_SECRET_VALUED: Final = frozenset({"--encryption-key", "--client-secret"})


def _attach_secret_values(argv: list[str]) -> list[str]:
    """`--encryption-key -Xy...` as `--encryption-key=-Xy...`: argparse would take such a value for an option."""
    attached: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            attached += [arg, *rest]
            break
        value = next(rest, None) if arg in _SECRET_VALUED else None
        attached.append(arg if value is None else f"{arg}={value}")
    return attached


def main(argv: list[str] | None = None) -> int:
    """Run the `tiktok-oauth` command line with `argv` (default: `sys.argv[1:]`); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(_attach_secret_values(sys.argv[1:] if argv is None else list(argv)))
    except SystemExit as exit_:  # usage errors (2), --help and --version (0)
        return exit_.code if isinstance(exit_.code, int) else 1
    handler: Handler = args.handler
    debug = bool(getattr(args, "debug", False))
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure becomes a line on stderr
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CLIError) else 1
