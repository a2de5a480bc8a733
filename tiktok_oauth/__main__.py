"""`python -m tiktok_oauth`: the `tiktok-oauth` command line."""

from tiktok_oauth.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
