"""FakeTikTok's `POST /v2/video/list/`: scope, fields, cursor paging, the v2 envelope and its errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests

from tiktok_oauth import unwrap
from tiktok_oauth.testing import FakeTikTok

VIDEO_LIST_URL = "https://open.tiktokapis.com/v2/video/list/"


def a_token(fake: FakeTikTok, open_id: str = "alice", scopes: tuple[str, ...] = ("video.list",)) -> str:
    token: str = fake.issue_token(open_id=open_id, scopes=scopes)["access_token"]
    return token


@pytest.fixture
def videos(fake: FakeTikTok, http: httpx.Client) -> Callable[..., httpx.Response]:
    """POST the video list with a JSON body (or raw `content`), for alice unless a token is given."""

    def post(
        body: Any = None,
        *,
        token: str | None = None,
        url: str | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        bearer = token if token is not None else a_token(fake)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        if content is None and body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return http.post(url or fake.video_list_url(), headers=headers, content=content or b"")

    return post


def test_first_page_is_ten_videos_newest_first_in_the_envelope(videos: Callable[..., httpx.Response]) -> None:
    response = videos({})
    body = response.json()
    assert response.status_code == 200
    assert body["error"]["code"] == "ok"
    assert len(body["error"]["log_id"]) == 34
    data = body["data"]
    assert len(data["videos"]) == 10
    assert data["has_more"] is True
    times = [video["create_time"] for video in data["videos"]]
    assert times == sorted(times, reverse=True)
    assert data["cursor"] == times[-1] * 1000


def test_the_cursor_pages_through_every_video_once(videos: Callable[..., httpx.Response]) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        request = {"max_count": 5} if cursor is None else {"max_count": 5, "cursor": cursor}
        data = videos(request).json()["data"]
        seen += [video["id"] for video in data["videos"]]
        pages += 1
        if not data["has_more"]:
            break
        cursor = data["cursor"]
    assert pages == 3
    assert len(seen) == len(set(seen)) == 12


def test_a_page_of_twenty_holds_all_twelve_and_no_more(videos: Callable[..., httpx.Response]) -> None:
    data = videos({"max_count": 20}).json()["data"]
    assert (len(data["videos"]), data["has_more"]) == (12, False)


def test_a_cursor_before_every_video_is_an_empty_last_page(videos: Callable[..., httpx.Response]) -> None:
    data = videos({"cursor": 1000}).json()["data"]
    assert data == {"videos": [], "cursor": 1000, "has_more": False}


def test_an_empty_body_is_the_first_page(videos: Callable[..., httpx.Response]) -> None:
    assert len(videos().json()["data"]["videos"]) == 10


def test_only_the_requested_fields_come_back(fake: FakeTikTok, videos: Callable[..., httpx.Response]) -> None:
    response = videos({}, url=f"{VIDEO_LIST_URL}?fields=id,title,share_url,not_a_field")
    assert {tuple(sorted(video)) for video in response.json()["data"]["videos"]} == {
        ("id", "share_url", "title")
    }


def test_every_field_of_video_list_url(fake: FakeTikTok, videos: Callable[..., httpx.Response]) -> None:
    video = videos({}).json()["data"]["videos"][0]
    names = fake.video_list_url().split("fields=")[1].split(",")
    assert sorted(video) == sorted(names)
    assert isinstance(video["id"], str)
    assert video["id"].isdigit()
    assert isinstance(video["view_count"], int)


def test_a_user_sees_the_same_videos_every_time_and_others_see_theirs(
    fake: FakeTikTok, videos: Callable[..., httpx.Response]
) -> None:
    first = videos({}).json()["data"]["videos"]
    again = videos({}, token=a_token(fake, "alice")).json()["data"]["videos"]
    bob = videos({}, token=a_token(fake, "bob")).json()["data"]["videos"]
    assert first == again
    assert not {v["id"] for v in first} & {v["id"] for v in bob}


def test_video_list_url_on_a_base_url(fake: FakeTikTok) -> None:
    assert fake.video_list_url("http://127.0.0.1:9/").startswith(
        "http://127.0.0.1:9/v2/video/list/?fields=id,"
    )


# -- errors ------------------------------------------------------------------------------------------


def test_without_fields_is_400_invalid_params(videos: Callable[..., httpx.Response]) -> None:
    response = videos({}, url=VIDEO_LIST_URL)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_params"


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(b'{"max_count": 21}', id="max_count over 20"),
        pytest.param(b'{"max_count": 0}', id="max_count 0"),
        pytest.param(b'{"max_count": "5"}', id="max_count a string"),
        pytest.param(b'{"max_count": true}', id="max_count a bool"),
        pytest.param(b'{"cursor": -1}', id="negative cursor"),
        pytest.param(b'{"cursor": "abc"}', id="cursor a string"),
        pytest.param(b"max_count=5", id="a form, not JSON"),
        pytest.param(b"[5]", id="a JSON array"),
    ],
)
def test_a_bad_body_is_400_invalid_params(videos: Callable[..., httpx.Response], request_body: bytes) -> None:
    response = videos(content=request_body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_params"


def test_without_video_list_scope_is_401_scope_not_authorized(
    fake: FakeTikTok, videos: Callable[..., httpx.Response]
) -> None:
    response = videos({}, token=a_token(fake, scopes=("user.info.basic",)))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "scope_not_authorized"


@pytest.mark.parametrize("token", ["act.unknown", ""], ids=["unknown token", "no authorization"])
def test_a_bad_token_is_401_access_token_invalid(videos: Callable[..., httpx.Response], token: str) -> None:
    response = videos({}, token=token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "access_token_invalid"


def test_an_expired_token_is_401_access_token_invalid(
    fake: FakeTikTok, videos: Callable[..., httpx.Response]
) -> None:
    token = a_token(fake)
    fake.expire_access_tokens()
    response = videos({}, token=token)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "access_token_invalid")


def test_a_client_token_is_401(
    fake: FakeTikTok, videos: Callable[..., httpx.Response], post_token: Any
) -> None:
    token = post_token(grant_type="client_credentials").json()["access_token"]
    assert videos({}, token=token).status_code == 401


def test_get_is_not_the_video_list(fake: FakeTikTok, http: httpx.Client) -> None:
    response = http.get(fake.video_list_url(), headers={"Authorization": f"Bearer {a_token(fake)}"})
    assert response.status_code == 404


def test_fail_next_reaches_the_video_list(fake: FakeTikTok, videos: Callable[..., httpx.Response]) -> None:
    fake.fail_next(500, endpoint="video_list")
    failed, then = videos({}), videos({})
    assert (failed.status_code, failed.json()["error"]["code"]) == (500, "internal_error")
    assert then.status_code == 200


def test_requests_are_recorded(fake: FakeTikTok, videos: Callable[..., httpx.Response]) -> None:
    videos({"max_count": 3})
    recorded = fake.requests[-1]
    assert (recorded.method, recorded.url, json.loads(recorded.body)) == (
        "POST",
        fake.video_list_url(),
        {"max_count": 3},
    )


# -- every way in --------------------------------------------------------------------------------------


@pytest.fixture
def served(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as base_url:
        yield base_url


def _post_async(fake: FakeTikTok, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async def main() -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(transport=fake.async_transport()) as client:
            response = await client.post(fake.video_list_url(), headers=headers, json={"max_count": 2})
            return response.status_code, unwrap(response)

    return asyncio.run(main())


def _post_mounted(fake: FakeTikTok, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    with requests.Session() as session:
        fake.mount(session)
        response = session.post(fake.video_list_url(), headers=headers, json={"max_count": 2})
        return response.status_code, unwrap(response)


def _post_served_httpx(
    fake: FakeTikTok, headers: dict[str, str], base_url: str
) -> tuple[int, dict[str, Any]]:
    with httpx.Client() as client:
        response = client.post(fake.video_list_url(base_url), headers=headers, json={"max_count": 2})
        return response.status_code, unwrap(response)


def _post_served_requests(
    fake: FakeTikTok, headers: dict[str, str], base_url: str
) -> tuple[int, dict[str, Any]]:
    with requests.Session() as session:
        response = session.post(fake.video_list_url(base_url), headers=headers, json={"max_count": 2})
        return response.status_code, unwrap(response)


@pytest.mark.parametrize("way", ["async transport", "mount", "served httpx", "served requests"])
def test_every_way_in_answers_the_video_list(fake: FakeTikTok, served: str, way: str) -> None:
    headers = {"Authorization": f"Bearer {a_token(fake)}"}
    if way == "async transport":
        status, data = _post_async(fake, headers)
    elif way == "mount":
        status, data = _post_mounted(fake, headers)
    elif way == "served httpx":
        status, data = _post_served_httpx(fake, headers, served)
    else:
        status, data = _post_served_requests(fake, headers, served)
    assert status == 200
    assert len(data["videos"]) == 2
    assert data["has_more"] is True
