"""The fake's videos: the same few for a user every time, and TikTok's cursor paging over them (no I/O).

TikTok lists a user's videos newest first. The cursor is a UTC timestamp in milliseconds: a page holds
videos created before it, and the answer's `cursor` is the one to send for the next page (TIKTOK.md row 26).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_COUNT", "VIDEOS_PER_USER", "VIDEO_FIELDS", "Page", "page_of_videos"]

#: How many videos each fake user has.
VIDEOS_PER_USER = 12
#: TikTok's page size: 10 when `max_count` is not sent, at most 20.
DEFAULT_COUNT = 10
MAX_COUNT = 20
#: Every field the video list answers, in TikTok's documented order.
VIDEO_FIELDS = (
    "id",
    "create_time",
    "cover_image_url",
    "share_url",
    "video_description",
    "duration",
    "height",
    "width",
    "title",
    "embed_html",
    "embed_link",
    "like_count",
    "comment_count",
    "share_count",
    "view_count",
)
_NEWEST = 1_735_689_600  # 2025-01-01T00:00:00Z: the newest fake video; one a day before that
_DAY = 86_400


@dataclass(frozen=True)
class Page:
    """One answer of the video list: `data.videos`, `data.cursor`, `data.has_more`."""

    videos: list[dict[str, Any]]
    cursor: int
    has_more: bool


def page_of_videos(open_id: str, fields: list[str], cursor: int | None, max_count: int) -> Page:
    """The videos of `open_id` created before `cursor` (ms; None: from the newest), at most `max_count`."""
    catalogue = [_video(open_id, index) for index in range(VIDEOS_PER_USER)]
    older = [video for video in catalogue if cursor is None or video["create_time"] * 1000 < cursor]
    page = older[:max_count]
    next_cursor = page[-1]["create_time"] * 1000 if page else (cursor or 0)
    wanted = [name for name in fields if name in VIDEO_FIELDS]
    return Page(
        videos=[{name: video[name] for name in wanted} for video in page],
        cursor=next_cursor,
        has_more=len(older) > len(page),
    )


def _video(open_id: str, index: int) -> dict[str, Any]:
    digest = hashlib.sha256(f"{open_id}/{index}".encode()).digest()
    video_id = str(7_000_000_000_000_000_000 + int.from_bytes(digest[:8]) % 10**18)
    number = index + 1
    share_url = f"https://www.tiktok.com/@fake.{open_id}/video/{video_id}"
    return {
        "id": video_id,
        "create_time": _NEWEST - index * _DAY,
        "cover_image_url": f"https://p16-sign.tiktokcdn.com/fake/{video_id}.jpeg",
        "share_url": share_url,
        "video_description": f"Fake video {number} of {open_id} #fake",
        "duration": 15 + digest[8] % 45,
        "height": 1024,
        "width": 576,
        "title": f"Fake video {number}",
        "embed_html": f'<blockquote class="tiktok-embed" cite="{share_url}" data-video-id="{video_id}"></blockquote>',
        "embed_link": f"https://www.tiktok.com/player/v1/{video_id}",
        "like_count": int.from_bytes(digest[9:11]),
        "comment_count": digest[11],
        "share_count": digest[12],
        "view_count": int.from_bytes(digest[13:16]),
    }
