"""The Server's web pages: templates, the page script and the session cookie.

The shared parts (rendering, headers, the style sheet, common.js) are in
backend/webui; this package has the Server's templates and its page script
(static/flamenco.js), which refreshes the pages from the JSON API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend import webui
from backend.webui import script_json  # noqa: F401 (re-exported)

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def render(name: str, **values: Any) -> str:
    return webui.render(TEMPLATE_DIR, name, **values)
