"""Helpers for the browser tests (a module of its own: conftest modules are not imported by name)."""

from __future__ import annotations

import os
import pathlib
import shutil
import struct
import time
import zlib

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORDS = {"ann": "ann-secret-pw", "boss": "boss-secret-pw", "bob": "bob-secret-pw"}


def chromium_executable() -> str | None:
    for candidate in (os.environ.get("FLAMENCO_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def sign_in(page, name: str, start: str = "/") -> None:
    """Open `start`, land on the sign-in form, sign in and come back to `start`."""
    page.goto(start)
    page.wait_for_url("**/login?**" if start != "/" else "**/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name])
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/login" not in url)

FARM_PASSWORDS = {"admin": "farm-admin-pw", "ann": "farm-ann-pw", "manager": "the manager's admin pw"}
SCREENSHOT_DIR_ENV = "FLAMENCO_SCREENSHOT_DIR"
"""Set (to docs/images) to keep the pages' screenshots; they always go to the test's tmp_path too."""


def screenshot(page, tmp_path, name: str) -> None:
    """A full-page screenshot `name`.png in tmp_path, and in $FLAMENCO_SCREENSHOT_DIR when set."""
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    keep = os.environ.get(SCREENSHOT_DIR_ENV)
    if keep:
        pathlib.Path(keep).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(pathlib.Path(keep) / f"{name}.png"), full_page=True)


def wait_until(check, timeout: float, message: str, interval: float = 0.2):
    """Poll `check()` until it is true (its value is returned) or fail with `message`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, message
        time.sleep(interval)


def sign_in_as(page, name: str, start: str) -> None:
    """On the farm: open `start`, sign in as `name` with FARM_PASSWORDS, come back to `start`."""
    page.goto(start)
    page.wait_for_url("**/login?**")
    page.fill("#username", name)
    page.fill("#password", FARM_PASSWORDS[name])
    page.click("#sign-in")
    page.wait_for_url(lambda url: "/login" not in url)


def png(width: int, height: int, rgb=(232, 89, 12)) -> bytes:
    """A real PNG of one colour, so the browser has something to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def row_action(row, key: str) -> None:
    """On a workers page (the Server's or a Manager's): open the row's Actions menu and click `key`."""
    row.locator("details.menu summary").click()
    row.locator(f'[data-worker-action="{key}"]').click()
