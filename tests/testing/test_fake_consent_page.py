"""The served fake's consent page, for a real browser: the HTML, its form, and what submitting it does."""

from __future__ import annotations

import html.parser
import http.client
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from tiktok_oauth import TikTokOAuth2Client
from tiktok_oauth.testing import FakeTikTok
from tiktok_oauth.testing._models import FakeResponse

AuthUrl = Callable[..., str]


class _Form(html.parser.HTMLParser):
    """The page's text, its form's action and method, its inputs and its submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.form: dict[str, str] = {}
        self.inputs: dict[str, dict[str, str]] = {}
        self.buttons: dict[str, str] = {}
        self.text: list[str] = []
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.form = values
        elif tag == "input":
            self.inputs[values["name"]] = values
        elif tag == "button":
            self._button = values

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._button is not None:
            self.buttons[data.strip()] = f"{self._button['name']}={self._button['value']}"

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None


def _params(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


@pytest.fixture
def base_url(fake: FakeTikTok) -> Iterator[str]:
    with fake.serve() as url:
        yield url


@pytest.fixture
def served_auth_url(auth_url: AuthUrl, base_url: str) -> AuthUrl:
    def build(**changes: str | None) -> str:
        return auth_url(**changes).replace("https://www.tiktok.com", base_url)

    return build


def _page(url: str) -> tuple[httpx.Response, _Form]:
    response = httpx.get(url)
    form = _Form()
    form.feed(response.text)
    return response, form


def _submit(url: str, form: _Form, button: str, open_id: str = "test-open-id") -> httpx.Response:
    """Press `button` as a browser would: POST the form's fields to its action, resolved against `url`."""
    action = str(httpx.URL(url).join(form.form["action"]))
    body = f"{form.buttons[button]}&open_id={quote(open_id)}"
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return httpx.post(action, content=body, headers=headers)


def test_the_page_shows_the_app_the_scopes_and_a_form(served_auth_url: AuthUrl) -> None:
    response, form = _page(served_auth_url())
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    text = " ".join(form.text)
    assert "test-key" in text
    assert "user.info.basic" in text
    assert "video.list" in text
    assert form.form["method"] == "post"
    assert form.inputs["open_id"]["type"] == "text"
    assert set(form.buttons) == {"Authorize", "Deny"}


def test_authorize_redirects_with_a_code_for_the_typed_open_id(
    fake: FakeTikTok, base_url: str, served_auth_url: AuthUrl
) -> None:
    url = served_auth_url()
    _, form = _page(url)
    response = _submit(url, form, "Authorize", open_id="alice")
    assert response.status_code == 302
    callback = response.headers["location"]
    assert callback.startswith("https://app.example/callback?code=")
    assert set(_params(callback)) == set(_params(fake.authorize(url)))  # what authorize() puts there
    assert _params(callback)["scopes"] == "user.info.basic,video.list"
    assert _params(callback)["state"] == "state-123"
    with TikTokOAuth2Client("test-key", "test-secret", **fake.endpoints(base_url)) as client:
        token = client.fetch_token(
            authorization_response=callback,
            state="state-123",
            redirect_uri="https://app.example/callback",
            code_verifier="verifier-" + "x" * 50,
        )
    assert token.open_id == "alice"


def test_deny_redirects_exactly_as_authorize_deny_does(fake: FakeTikTok, served_auth_url: AuthUrl) -> None:
    url = served_auth_url()
    _, form = _page(url)
    response = _submit(url, form, "Deny")
    assert response.status_code == 302
    assert response.headers["location"] == fake.authorize(url, deny=True)
    assert _params(response.headers["location"])["error"] == "access_denied"


def test_an_invalid_authorization_url_gets_an_html_error_page(served_auth_url: AuthUrl) -> None:
    response, _ = _page(served_auth_url(client_id="test-key"))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "client_id" in response.text


def test_a_submitted_form_with_an_invalid_authorization_url_gets_the_error_page(
    served_auth_url: AuthUrl,
) -> None:
    response = httpx.post(served_auth_url(state=None), data={"open_id": "a", "decision": "authorize"})
    assert response.status_code == 400
    assert "state" in response.text


@pytest.mark.parametrize(
    "form",
    [{"open_id": "a"}, {"open_id": "a", "decision": "maybe"}, {"open_id": " ", "decision": "authorize"}],
)
def test_a_form_the_page_cannot_send_gets_the_error_page(
    served_auth_url: AuthUrl, form: dict[str, str]
) -> None:
    response = httpx.post(served_auth_url(), data=form)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


def test_everything_echoed_is_escaped(served_auth_url: AuthUrl) -> None:
    url = served_auth_url(
        scope="user.info.basic,<script>alert(1)</script>",
        redirect_uri='https://app.example/cb?x="><img src=x onerror=alert(1)>',
    )
    response, form = _page(url)
    assert response.status_code == 200
    assert "<script>" not in response.text
    assert "<img" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "<script>alert(1)</script>" in " ".join(form.text)
    assert str(httpx.URL(url).join(form.form["action"])) == url  # the query survives the escaping


def test_the_page_through_a_transport_too(fake: FakeTikTok, auth_url: AuthUrl) -> None:
    with httpx.Client(transport=fake.transport()) as http:
        page = http.get(auth_url())
        answer = http.post(auth_url(), data={"open_id": "bob", "decision": "authorize"})
    assert page.status_code == 200
    assert 'name="open_id"' in page.text
    assert answer.status_code == 302


def _raw(base_url: str, method: str, target: str, body: bytes | None = None) -> http.client.HTTPResponse:
    """One request on its own connection, answered as the wire has it (no client cleans the headers)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"content-type": "application/x-www-form-urlencoded"} if body is not None else {}
    connection.request(method, target, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize("control", ["\r\n", "\n", "\r", "\x00", "\t", "\x7f"], ids=repr)
def test_a_redirect_uri_with_a_control_character_is_an_invalid_authorization_url(
    base_url: str, served_auth_url: AuthUrl, control: str
) -> None:
    url = served_auth_url(redirect_uri=f"https://app.example/callback{control}Set-Cookie: session=planted")
    target = url.removeprefix(base_url)
    for method, body in (("GET", None), ("POST", b"open_id=alice&decision=authorize")):
        response = _raw(base_url, method, target, body)
        assert response.status == 400, method
        assert response.getheader("content-type", "").startswith("text/html")
        assert response.getheader("set-cookie") is None
        assert response.getheader("location") is None


def test_the_server_never_writes_a_header_holding_cr_or_lf(
    fake: FakeTikTok, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = FakeResponse(302, {"location": "https://app.example/\r\nSet-Cookie: session=planted"}, b"")
    monkeypatch.setattr(fake, "handle", lambda *args: planted)
    response = _raw(base_url, "GET", "/v2/auth/authorize/")
    assert response.status == 500
    assert response.getheader("set-cookie") is None
    assert response.getheader("location") is None
