"""Glue for other libraries, one optional extra each; nothing here is imported by `import tiktok_oauth`.

- `starlette`, `flask`, `django`: `TikTokLogin`, "Log in with TikTok" for web apps (a thin skin over
  `tiktok_oauth.web.TikTokLogin`: each reads the request and the session and builds the framework's redirect),
  with ready-made login routes (`router()`, `blueprint()`, `urls()`) and `current_auth`;
- `aiohttp`: `middleware(auth)`, `TikTokAuth` for aiohttp client sessions.

Import the module you need (`from tiktok_oauth.integrations.starlette import TikTokLogin`); this package
itself imports none of them.
"""
