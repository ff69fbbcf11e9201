"""The Manager's own pages for the site admin: sign-in, the Manager at a glance, its workers with actions.

Signing in takes the admin password (`flamenco-manager set-admin-password`);
the session cookie is HttpOnly, SameSite=Strict and Secure behind TLS, and the
pages call the admin API with it plus the session's CSRF token (admin_auth.py).
The pages are HTML shells; the script (static/manager.js, on top of the shared
common.js) fills and refreshes them from the admin API. `GET /` sends a browser
to the overview and keeps answering JSON to everyone else.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

import bottle

from backend import webui
from backend.errors import ApiError
from shared.version import __version__

from . import admin_auth
from .web import STATIC_DIR, TEMPLATE_DIR

log = logging.getLogger(__name__)

REFRESH_MS = 2000
PAGES = ("status", "workers")


def safe_next(value: str | None) -> str:
    """Where to go after signing in: one of this Manager's pages."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\", "/login")) \
            or any(ord(c) < 32 or c == "\\" for c in value):
        return "/status"
    return value


def install(routes, core) -> None:
    auth = core.admin_auth
    cfg = core.config

    def page(template: str, session: admin_auth.PageSession | None, title: str, http_status: int = 200,
             **values) -> str:
        data = webui.script_json({"page": template, "refresh_ms": REFRESH_MS, "login_path": "/login",
                                  "linked": cfg.upstream.linked})
        return webui.html(webui.render(TEMPLATE_DIR, template, title=title, nav=template, signed_in=session is not None,
                                       csrf=session.csrf if session else "", version=__version__,
                                       page_data=data, **values), http_status)

    def current() -> admin_auth.PageSession | None:
        return auth.session(bottle.request.get_cookie(admin_auth.SESSION_COOKIE))

    def signed_in() -> admin_auth.PageSession:
        session = current()
        if session is None:
            req = bottle.request
            here = req.path + (f"?{req.query_string}" if req.query_string else "")
            bottle.redirect(f"/login?next={quote(here, safe='/')}", 303)
        return session

    def set_cookie(value: str, max_age: int) -> None:
        bottle.response.set_cookie(admin_auth.SESSION_COOKIE, value, path="/", httponly=True, samesite="strict",
                                   secure=webui.is_secure(), max_age=max_age)

    def login_form(next_url: str = "", error: str = "", http_status: int = 200) -> str:
        return page("login", None, "Sign in", http_status, next_url=safe_next(next_url), error=error,
                    has_password=auth.has_password())

    def login_page():
        target = safe_next(bottle.request.query.getunicode("next"))
        if current() is not None:
            bottle.redirect(target, 303)
        return login_form(target)

    def same_origin() -> bool:
        origin = bottle.request.get_header("Origin")
        if origin is None:
            return True
        parts = bottle.request.urlparts
        mine = {f"{parts.scheme}://{parts.netloc}"}
        if cfg.manager_url:
            url = urlsplit(cfg.manager_url)
            mine.add(f"{url.scheme}://{url.netloc}")
        return origin.rstrip("/") in mine

    def login():
        forms = bottle.request.forms
        target = safe_next(forms.getunicode("next"))
        if not same_origin():
            return login_form(target, "This sign-in form was not sent from this Manager's page.", 403)
        try:
            value, _ = auth.sign_in(forms.getunicode("password") or "", bottle.request.remote_addr or "")
        except ApiError as ex:
            if ex.status == 429:
                bottle.response.set_header("Retry-After", ex.headers.get("Retry-After", "60"))
            message = "Wrong password." if ex.code == "wrong_password" else ex.message
            return login_form(target, message, ex.status)
        set_cookie(value, int(cfg.admin_session_hours * 3600))
        bottle.redirect(target, 303)

    def logout():
        session = current()
        if session is not None:
            if not session.csrf_ok(bottle.request.forms.getunicode("csrf")):
                return page("error", session, "Not signed out", 403,
                            message="The sign-out form was not sent from this Manager's pages.")
            auth.sign_out(bottle.request.get_cookie(admin_auth.SESSION_COOKIE))
        set_cookie("", 0)
        bottle.redirect("/login", 303)

    def status_page():
        return page("status", signed_in(), "Manager")

    def workers_page():
        return page("workers", signed_in(), "Workers")

    def static(path):
        return webui.static_file(path, STATIC_DIR)

    def favicon():
        resp = webui.static_file("favicon.svg")
        resp.content_type = "image/svg+xml"
        return resp

    routes.page("GET", "/login", login_page)
    routes.page("POST", "/login", login)
    routes.page("POST", "/logout", logout)
    routes.page("GET", "/status", status_page)
    routes.page("GET", "/workers", workers_page)
    routes.page("GET", "/static/<path:path>", static)
    routes.page("GET", "/favicon.ico", favicon)
