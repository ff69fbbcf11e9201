"""What the Server's and the Manager's web pages share: rendering, headers, static files, the style sheet
and the script helpers (static/common.js).

Pages are plain HTML rendered with Bottle's SimpleTemplate (which escapes every
`{{value}}`); the data a page starts from is JSON in a <script> block
(`script_json`); scripts build the DOM with textContent only. Each service keeps
its own templates and page script; both serve this package's static files too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bottle

from shared.json_text import dumps

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(template_dir: Path, name: str, **values: Any) -> str:
    """A service's template (which may include the shared ones of this package)."""
    return bottle.template(name, template_lookup=[str(template_dir), str(TEMPLATE_DIR)], **values)


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> element: no '<', '>' or '&' in it."""
    text = dumps(value, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def html(body: str, status: int = 200) -> str:
    """A page as the response: its status, HTML type and the security headers."""
    bottle.response.status = status
    bottle.response.content_type = "text/html; charset=utf-8"
    for name, value in SECURITY_HEADERS.items():
        bottle.response.set_header(name, value)
    return body


def static_file(path: str, *dirs: Path):
    """A static file from the first of `dirs` that has it (a service's own, then the shared ones)."""
    for directory in (*dirs, STATIC_DIR):
        if ".." not in path.split("/") and (directory / path).is_file():
            resp = bottle.static_file(path, root=str(directory))
            if resp.status_code == 200:
                resp.set_header("Cache-Control", "no-cache")
                resp.set_header("X-Content-Type-Options", "nosniff")
            return resp
    return bottle.HTTPError(404, "no such file")


def is_secure() -> bool:
    """Whether the browser reached us over HTTPS (directly, or as a proxy says with X-Forwarded-Proto)."""
    return bottle.request.urlparts.scheme == "https"


def wants_html() -> bool:
    return "text/html" in (bottle.request.get_header("Accept") or "")
