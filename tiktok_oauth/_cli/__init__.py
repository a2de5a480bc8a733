"""The pieces of the `tiktok-oauth` command line; `tiktok_oauth.cli` builds the parser and runs them.

- `_common`: errors, credentials, the default store directory, and how tokens and times are shown.
- `catcher`: the one-shot loopback HTTP server that catches TikTok's redirect.
- `login`: `tiktok-oauth login`.
- `tokens`: `tiktok-oauth token show|refresh|revoke`.
- `demo`: `tiktok-oauth demo`, the whole flow against an embedded `FakeTikTok`.
"""
