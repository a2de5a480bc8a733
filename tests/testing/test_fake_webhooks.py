"""FakeTikTok's webhook deliveries: `webhook_url`, `revoke_grants(open_id, reason)`, retries, `webhook_deliveries`."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tiktok_oauth.testing import FakeTikTok


def signature_ok(body: bytes, headers: dict[str, str], secret: str) -> bool:
    fields = dict(part.split("=", 1) for part in headers["TikTok-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["s"])


class Answers:
    """A callable webhook target answering the given statuses in turn (then 200), keeping what it got."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        self.received.append((body, headers))
        return self.statuses.pop(0) if self.statuses else 200


def test_without_webhook_url_revoke_grants_sends_nothing(fake: FakeTikTok, http: httpx.Client) -> None:
    body = fake.issue_token(open_id="alice")
    fake.revoke_grants("alice")
    assert fake.webhook_deliveries == []
    response = http.get(fake.user_info_url(), headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 401


def test_revoke_grants_sends_a_signed_authorization_removed(fake: FakeTikTok) -> None:
    target = Answers()
    fake.webhook_url = target
    fake.issue_token(open_id="alice")
    before = int(time.time())
    fake.revoke_grants("alice", reason=4)
    [(body, headers)] = target.received
    payload = json.loads(body)
    assert payload["client_key"] == fake.client_key
    assert payload["event"] == "authorization.removed"
    assert payload["user_openid"] == "alice"
    assert before <= payload["create_time"] <= time.time()
    assert json.loads(payload["content"]) == {"reason": 4}  # a JSON string, as TikTok sends it
    assert headers["Content-Type"] == "application/json"
    assert signature_ok(body, headers, fake.client_secret)
    assert not signature_ok(body, headers, "another-secret")
    assert fake.webhook_deliveries == [(body, headers, 200)]


def test_the_default_reason_is_1_user_disconnected(fake: FakeTikTok) -> None:
    target = Answers()
    fake.webhook_url = target
    fake.revoke_grants("alice")
    assert json.loads(json.loads(target.received[0][0])["content"]) == {"reason": 1}


def test_a_non_200_answer_is_retried_with_the_same_body_until_200(fake: FakeTikTok) -> None:
    target = Answers(500, 503)
    fake.webhook_url = target
    fake.webhook_backoff = 0.01
    fake.revoke_grants("alice")
    assert [status for _, _, status in fake.webhook_deliveries] == [500, 503, 200]
    assert len({body for body, _ in target.received}) == 1
    assert all(signature_ok(body, headers, fake.client_secret) for body, headers in target.received)


def test_retries_are_bounded_by_webhook_retries(fake: FakeTikTok) -> None:
    target = Answers(*[500] * 10)
    fake.webhook_url = target
    fake.webhook_retries = 2
    fake.webhook_backoff = 0.01
    fake.revoke_grants("alice")
    assert [status for _, _, status in fake.webhook_deliveries] == [500, 500, 500]


def test_retries_back_off(fake: FakeTikTok) -> None:
    times: list[float] = []

    def target(body: bytes, headers: dict[str, str]) -> int:
        times.append(time.monotonic())
        return 500

    fake.webhook_url = target
    fake.webhook_retries = 2
    fake.webhook_backoff = 0.05
    fake.revoke_grants("alice")
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1


@contextmanager
def webhook_server(statuses: list[int], hold: threading.Event) -> Iterator[tuple[str, list[bytes]]]:
    """A loopback HTTP server answering POSTs with `statuses` in turn (then 200), once `hold` is set."""
    received: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            hold.wait(10)
            status = statuses.pop(0) if statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tiktok/webhook", received
    finally:
        hold.set()
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_gets_its_deliveries_in_the_background(fake: FakeTikTok) -> None:
    hold = threading.Event()
    with webhook_server([502], hold) as (url, received):
        fake.webhook_url = url
        fake.webhook_backoff = 0.01
        fake.revoke_grants("alice")  # returns though the server has not answered yet
        assert fake.webhook_deliveries == []
        assert not fake.wait_webhooks(timeout=0.05)
        hold.set()
        assert fake.wait_webhooks(timeout=10)
    assert [status for _, _, status in fake.webhook_deliveries] == [502, 200]
    assert received == [fake.webhook_deliveries[0][0]] * 2


def test_an_unreachable_url_is_recorded_as_status_0_and_retried(fake: FakeTikTok) -> None:
    with webhook_server([], threading.Event()) as (url, _):
        pass  # the port is closed again
    fake.webhook_url = url
    fake.webhook_retries = 1
    fake.webhook_backoff = 0.01
    fake.revoke_grants("alice")
    assert fake.wait_webhooks(timeout=10)
    assert [status for _, _, status in fake.webhook_deliveries] == [0, 0]
