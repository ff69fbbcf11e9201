"""The web pages: sign in and out, the jobs list, a job, and (for admins) workers and managers.

The pages are HTML shells with the data they start from; the script under
/static/ refreshes them from the JSON API, signed in by the same session cookie
(see web/sessions.py). They are not API routes: `routes.page(...)` adds them
outside the OpenAPI document and lists them in `routes.pages`.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import bottle

from backend.web import ApiError
from shared.statuses import JOB_FINAL, JOB_USER_TRANSITIONS, JobStatus, requeue_moves
from shared.version import __version__

from .. import auth
from .. import jobs as job_service
from ..admin import user_projects
from ..database import write
from ..models import User, utcnow
from ..signin_limits import client_address
from ..web import STATIC_DIR, render, script_json, sessions
from .account import check_sign_in

log = logging.getLogger(__name__)

J = JobStatus
REFRESH_MS = 3000
JOBS_PER_PAGE = 50

# The buttons of the job page: (status word for POST /api/jobs/{id}/status, label, the status it asks for).
ACTIONS = (("pause", "Pause", J.PAUSE_REQUESTED), ("resume", "Resume", J.QUEUED),
           ("cancel", "Cancel", J.CANCEL_REQUESTED), ("requeue", "Requeue", J.REQUEUED))

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_dummy_hash: list[str] = []


def job_actions() -> dict[str, list[str]]:
    """Per job status, the buttons the job page offers: what the status tables let a person ask for.

    Requeueing a queued or active job only retries its failed tasks; the page
    offers that as 'requeue-failed' when the job has failed or canceled tasks.
    """
    out = {}
    for status in JobStatus:
        allowed = JOB_USER_TRANSITIONS.get(status, frozenset())
        words = [word for word, _, target in ACTIONS if target in allowed]
        if "requeue" in words and status not in JOB_FINAL and status != J.PAUSED:
            words[words.index("requeue")] = "requeue-failed"
        out[status] = words
    return out


def requeue_moves_by_status() -> dict[str, dict[str, list[str]]]:
    """Per job status, the task statuses each requeue button would move: the page hides a
    button whose job has none of them (the Server would answer 409 nothing_to_requeue)."""
    out = {}
    for status, words in job_actions().items():
        moves = {w: sorted(s.value for s in requeue_moves(status, w == "requeue-failed"))
                 for w in words if w.startswith("requeue")}
        if moves:
            out[status] = moves
    return out


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this Server, never another site."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or value.startswith("/login") \
            or any(ord(c) < 32 or c == "\\" for c in value):
        return "/"
    return value


def login_url() -> str:
    req = bottle.request
    here = req.path + (f"?{req.query_string}" if req.query_string else "")
    return "/login" + ("" if here == "/" else f"?next={quote(here, safe='/')}")


def check_password(user: User | None, password: str) -> bool:
    """The scrypt check, with the same work for unknown users and users without a password."""
    if user is None or not user.password_hash:
        if not _dummy_hash:
            _dummy_hash.append(auth.hash_password("not a password"))
        auth.verify_password(password, _dummy_hash[0])
        return False
    return auth.verify_password(password, user.password_hash)


def install(routes, ctx) -> None:
    app = routes.app
    hours = ctx.config.web_session_hours
    job_labels = {t["name"]: t["label"] for t in ctx.registry.describe()}

    def html(body: str, status: int = 200) -> str:
        bottle.response.status = status
        bottle.response.content_type = "text/html; charset=utf-8"
        for name, value in SECURITY_HEADERS.items():
            bottle.response.set_header(name, value)
        return body

    def page(template: str, session: sessions.Session | None, title: str, nav: str = "", http_status: int = 200,
             data: dict | None = None, **values) -> str:
        user = session.user if session else None
        page_data = {"page": template, "refresh_ms": REFRESH_MS, **(data or {})}
        return html(render(template, title=title, nav=nav, user=user, csrf=session.csrf if session else "",
                           version=__version__, page_data=script_json(page_data), **values), http_status)

    def signed_in() -> sessions.Session:
        session = sessions.current()
        if session is None:
            bottle.redirect(login_url(), 303)
        return session

    def error_page(session, status: int, title: str, message: str) -> str:
        return page("error", session, title, http_status=status, message=message)

    # --- signing in and out ------------------------------------------------------

    def login_page(target: str, username: str = "", error: str = "", http_status: int = 200) -> str:
        return page("login", None, "Sign in", http_status=http_status, next_url=target, username=username,
                    error=error, login_token=sessions.new_login_token(bottle.response))

    def login_form():
        target = safe_next(bottle.request.query.getunicode("next"))
        if sessions.current() is not None:
            bottle.redirect(target, 303)
        return login_page(target)

    def login():
        forms = bottle.request.forms
        name = forms.getunicode("username") or ""
        password = forms.getunicode("password") or ""
        target = safe_next(forms.getunicode("next"))
        if not sessions.login_token_ok(forms.getunicode(sessions.LOGIN_FIELD)):
            return login_page(target, name, "This sign-in form has expired or was not sent from this Server's "
                                            "page; please sign in again.", 403)
        user = User.get_or_none(User.name == name) if name and len(name) <= 100 else None
        try:
            ok = check_sign_in(ctx, user, name[:100], password[:1024], check_password)
        except ApiError as ex:  # 429
            bottle.response.set_header("Retry-After", ex.headers["Retry-After"])
            return login_page(target, name[:100], f"Too many wrong passwords; try again in "
                                                  f"{ex.headers['Retry-After']} seconds.", ex.status)
        if not ok:
            log.info("web sign-in as '%s' from %s refused", name[:100],
                     client_address())
            return login_page(target, name[:100], "Wrong user name or password.", 401)
        now = utcnow()
        with write(ctx.db):
            sessions.purge_expired(now)
            sessions.end(bottle.request.get_cookie(sessions.COOKIE))
            value = sessions.create(user, hours, now)
        log.info("user %s signed in to the web pages from %s", user.name, client_address())
        sessions.clear_login_cookie(bottle.response)
        sessions.set_cookie(bottle.response, value, hours)
        bottle.redirect(target, 303)

    def logout():
        session = sessions.current()
        given = bottle.request.forms.getunicode(sessions.CSRF_FIELD) or bottle.request.get_header(sessions.CSRF_HEADER)
        if session is not None:
            if not session.csrf_ok(given):
                return error_page(session, 403, "Not signed out",
                                  "The sign-out form was not sent from this Server's pages.")
            with write(ctx.db):
                sessions.end(bottle.request.get_cookie(sessions.COOKIE))
        sessions.clear_cookie(bottle.response)
        bottle.redirect("/login", 303)

    # --- pages ---------------------------------------------------------------------

    def jobs_page():
        session = signed_in()
        query = bottle.request.query
        statuses = set(JobStatus)
        status = query.getunicode("status") or ""
        status = ",".join(s for s in status.split(",") if s in statuses)
        projects = user_projects(session.user)
        project = query.getunicode("project") or ""
        if project not in {p.id for p in projects}:
            project = ""
        try:
            number = max(1, min(10 ** 6, int(query.get("page") or 1)))
        except ValueError:
            number = 1
        offset = (number - 1) * JOBS_PER_PAGE
        initial = job_service.list_jobs(session.user, status or None, project or None, None, None,
                                        JOBS_PER_PAGE, offset)
        return page("jobs", session, "Jobs", nav="jobs", projects=projects, statuses=list(JobStatus),
                    status=status, project=project,
                    data={"filter": {"status": status, "project": project, "page": number},
                          "per_page": JOBS_PER_PAGE, "initial": initial})

    def job_page(job_id):
        session = signed_in()
        try:
            job = job_service.get_visible_job(session.user, job_id)
        except ApiError:
            return error_page(session, 404, "Job not found",
                              f"There is no job '{job_id}', or it belongs to a project you are not a member of.")
        doc = job_service.job_docs([job])[0]
        settings = [(key, value if isinstance(value, str) else json.dumps(value))
                    for key, value in sorted(doc["settings"].items())]
        return page("job", session, doc["name"], nav="jobs", job=doc, settings=settings,
                    type_label=job_labels.get(doc["type"], doc["type"]),
                    data={"job": doc, "actions": job_actions(), "requeue_moves": requeue_moves_by_status()})

    def admin_page(template: str, title: str):
        session = signed_in()
        if not session.user.is_admin:
            return error_page(session, 403, "Admins only", f"The {title.lower()} page is for admins.")
        return page(template, session, title, nav=template)

    def workers_page():
        return admin_page("workers", "Workers")

    def managers_page():
        return admin_page("managers", "Managers")

    def static(path):
        resp = bottle.static_file(path, root=str(STATIC_DIR))
        if resp.status_code == 200:
            resp.set_header("Cache-Control", "no-cache")
            resp.set_header("X-Content-Type-Options", "nosniff")
        return resp

    routes.page("GET", "/login", login_form)
    routes.page("POST", "/login", login)
    routes.page("POST", "/logout", logout)
    routes.page("GET", "/", jobs_page)
    routes.page("GET", "/jobs/<job_id>", job_page)
    routes.page("GET", "/workers", workers_page)
    routes.page("GET", "/managers", managers_page)
    routes.page("GET", "/static/<path:path>", static)

    json_not_found = app.error_handler.get(404)

    def not_found(err):
        """HTML for a browser asking for a page that does not exist; the API's JSON otherwise."""
        req = bottle.request
        if req.path.startswith("/api/") or "text/html" not in req.get_header("Accept", "") or json_not_found is None:
            return json_not_found(err) if json_not_found else err.body
        try:
            with ctx.db.connection_context():
                return error_page(sessions.current(), 404, "Not found", f"There is no page '{req.path}' here.")
        except Exception:  # noqa: BLE001 - an error page must not fail
            log.exception("rendering the 404 page failed")
            return json_not_found(err)

    app.error(404)(not_found)
