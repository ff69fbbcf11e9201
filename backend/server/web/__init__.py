"""The Server's web pages: templates, static files and the session cookie.

Pages are plain HTML rendered with Bottle's SimpleTemplate (which escapes every
`{{value}}`), plus one small script and one style sheet under /static/. The
script reads the page's data from a JSON <script> block and refreshes the page
from the JSON API, building the DOM with textContent only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bottle

from shared.json_text import dumps

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def render(name: str, **values: Any) -> str:
    return bottle.template(name, template_lookup=[str(TEMPLATE_DIR)], **values)


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> element: no '<', '>' or '&' in it."""
    text = dumps(value, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
