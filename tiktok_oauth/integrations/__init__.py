"""Integrations with other libraries: each module imports its library, and `import tiktok_oauth` imports none.

- `aiohttp`: `middleware(auth)`, `TikTokAuth` for `aiohttp.ClientSession(middlewares=...)`.
"""
