"""`tiktok-oauth login --qr` as a real process on a pseudo-terminal: the QR code it draws is decoded back."""

from __future__ import annotations

import codecs
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zxingcpp  # the test extra's QR decoder (segno, which draws, comes with the qr extra)

from tests.cli._support import CLI, Served, assert_no_leaks, known_tokens
from tiktok_oauth.stores import FileTokenStore

DEADLINE = 60.0  # generous: the machine may be busy; nothing here waits that long when all is well

#: segno's compact drawing: a character is two modules, top and bottom; a block is a light module.
_TOP_DARK = {" ": True, "\u2584": True, "\u2580": False, "\u2588": False}
_BOTTOM_DARK = {" ": True, "\u2580": True, "\u2584": False, "\u2588": False}


class Terminal:
    """The leader side of a pty: everything the process wrote, read until a marker shows up."""

    def __init__(self, leader: int) -> None:
        self.leader = leader
        self.text = ""
        # Incremental: on a busy machine a read can end inside a half block's three UTF-8 bytes.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending_cr = False

    def read_until(self, marker: str, deadline: float) -> str:
        while marker not in self.text:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} on the terminal in time; it shows:\n{self.text}"
            ready, _, _ = select.select([self.leader], [], [], left)
            if ready and not self._read():
                raise AssertionError(f"the process ended before {marker!r}; it showed:\n{self.text}")
        return self.text

    def read_to_end(self, deadline: float) -> str:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.leader], [], [], deadline - time.monotonic())
            if ready and not self._read():
                return self.text
        raise AssertionError(f"the process did not end in time; it shows:\n{self.text}")

    def _read(self) -> bool:
        try:
            chunk = os.read(self.leader, 65536)
        except OSError:  # EIO: the other end is closed
            return False
        text = ("\r" if self._pending_cr else "") + self._decoder.decode(chunk)
        self._pending_cr = text.endswith("\r")  # a CR LF split between two reads
        self.text += (text[:-1] if self._pending_cr else text).replace("\r\n", "\n")
        return bool(chunk)


def decode_drawn_qr_code(lines: list[str]) -> str:
    """Turn the half-block drawing back into pixels and decode them with zxing-cpp."""
    rows: list[list[bool]] = []
    for line in lines:
        rows.append([_TOP_DARK[c] for c in line])
        rows.append([_BOTTOM_DARK[c] for c in line])
    scale = 4
    pixels = bytearray()
    for row in rows:
        line = b"".join((b"\x00" if dark else b"\xff") * scale for dark in row)
        pixels += line * scale
    image = memoryview(bytes(pixels)).cast("B", (len(rows) * scale, len(rows[0]) * scale))
    (barcode,) = zxingcpp.read_barcodes(image)
    return str(barcode.text)


@pytest.mark.slow
def test_login_qr_draws_a_qr_code_of_the_scan_url_waits_for_the_phone_and_saves_the_token(
    served: Served, store_dir: Path, store: FileTokenStore
) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tiktok_oauth",
            "login",
            "--qr",
            *served.options,
            "--store",
            str(store_dir),
            "--interval",
            "0.1",
            "--scope",
            "user.info.basic,video.list",
        ],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    terminal = Terminal(leader)
    try:
        deadline = time.monotonic() + DEADLINE
        shown = terminal.read_until("Waiting for the QR code to be scanned", deadline)
        lines = shown.split("\n")
        start = lines.index("Scan this QR code with the TikTok app on your phone:") + 1
        end = next(i for i, line in enumerate(lines) if line.startswith("(The QR code holds "))
        drawing = lines[start:end]
        assert len(drawing) > 10
        assert all(set(line) <= set(_TOP_DARK) and len(line) == len(drawing[0]) for line in drawing)

        scan_url = decode_drawn_qr_code(drawing)
        assert scan_url.startswith("aweme://authorize?")
        assert "client_ticket=tobefilled" not in scan_url
        assert lines[end] == f"(The QR code holds {scan_url} )"

        served.fake.scan_qr(scan_url, open_id="phone-user", confirm=False)
        terminal.read_until("Scanned: confirm the login on the phone", deadline)
        served.fake.scan_qr(scan_url, open_id="phone-user")
        output = terminal.read_to_end(deadline)
        assert process.wait(timeout=DEADLINE) == 0, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)

    assert "Confirmed; exchanging the code for a token" in output
    assert "Logged in. Token saved in" in output
    saved = store.get("phone-user")
    assert saved is not None
    assert saved.scopes == {"user.info.basic", "video.list"}
    assert served.fake.token_requests[-1]["grant_type"] == "authorization_code"
    assert_no_leaks([output], known_tokens(served, [store]))


def test_login_qr_without_segno_says_which_extra_to_install(
    cli: CLI, served: Served, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)  # import segno raises ImportError
    result = cli("login", "--qr", *served.options, "--store", str(store_dir))
    assert result.code == 2
    assert "pip install 'tiktok-oauth[qr]'" in result.err


def test_login_qr_ends_when_the_qr_code_expires(cli: CLI, served: Served, store_dir: Path) -> None:
    served.fake.qr_ttl = 0  # expired at once
    result = cli("login", "--qr", *served.options, "--store", str(store_dir), "--interval", "0.05")
    assert result.code == 1
    assert "expired" in result.err
    assert not store_dir.exists() or not list(store_dir.glob("*.json"))
