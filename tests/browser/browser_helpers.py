"""Helpers for the browser tests (a module of its own: conftest modules are not imported by name)."""

from __future__ import annotations

import os
import shutil

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
