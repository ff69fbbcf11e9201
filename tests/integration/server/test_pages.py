"""The web pages over HTTP: signing in, the session cookie on the API, CSRF, redirects, 404s, escaping."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import pytest
import requests

from backend.server.housekeeping import Housekeeping
from backend.server.models import WebSession
from backend.server.routes.pages import job_actions, safe_next
from tests.integration.server.server_it_helpers import sleep_job

CSRF = "X-Flamenco-CSRF"
NASTY = '<script>alert("x")</script> & \'shot\' </script><img src=x onerror=alert(1)>'


@pytest.fixture
def boss_password(studio, server) -> str:
    """The admin's password, for the tests that sign in as the admin."""
    from backend.server import admin
    with server.db.connection_context():
        admin.set_password(server.db, "boss", "boss-pw-long")
    return "boss-pw-long"


def browser(studio) -> requests.Session:
    s = requests.Session()
    s.headers["Accept"] = "text/html,application/xhtml+xml"
    return s


def login_token(s: requests.Session, studio) -> str:
    """The sign-in form's token (its cookie is now in the session)."""
    page = s.get(studio.url + "/login").text
    return re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)


def post_login(s: requests.Session, studio, **form) -> requests.Response:
    form.setdefault("login_csrf", login_token(s, studio))
    return s.post(studio.url + "/login", data=form, allow_redirects=False)


def sign_in(studio, name="ann", password="ann-secret-pw", next_url="/") -> requests.Session:
    s = browser(studio)
    r = post_login(s, studio, username=name, password=password, next=next_url)
    assert r.status_code == 303, r.text
    return s


def csrf_of(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page).group(1)


def page_data(page: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="page-data">(.*?)</script>', page, re.S).group(1))


def test_pages_send_strangers_to_the_sign_in_form(studio):
    s = browser(studio)
    for path, login in (("/", "/login"), ("/jobs/abc?x=1&y=2", "/login?next=/jobs/abc%3Fx%3D1%26y%3D2"),
                        ("/workers", "/login?next=/workers"), ("/managers", "/login?next=/managers")):
        r = s.get(studio.url + path, allow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["Location"].endswith(login), (path, r.headers["Location"])
    r = s.get(studio.url + "/login?next=/jobs/abc%3Fx%3D1")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert '<input type="hidden" name="next" value="/jobs/abc?x=1">' in r.text
    assert "Content-Security-Policy" in r.headers and r.headers["X-Frame-Options"] == "DENY"
    assert s.get(studio.url + "/api/jobs").status_code == 401, "no cookie, no token"


def test_signing_in_gives_a_hashed_expiring_session_cookie(studio, server):
    s = browser(studio)
    r = post_login(s, studio, username="ann", password="wrong", next="/")
    assert r.status_code == 401 and "Wrong user name or password." in r.text and "flamenco_session" not in s.cookies
    assert 'value="ann"' in r.text, "the name stays filled in"
    r = post_login(s, studio, username="bob", password="")
    assert r.status_code == 401, "bob has no password: API tokens only"

    other_site = requests.Session()  # a form on another site: no sign-in form cookie, or not the right one
    r = other_site.post(studio.url + "/login", data={"username": "ann", "password": "ann-secret-pw",
                                                     "login_csrf": "made-up"}, allow_redirects=False)
    assert r.status_code == 403 and "flamenco_session" not in other_site.cookies
    r = s.post(studio.url + "/login", data={"username": "ann", "password": "ann-secret-pw", "login_csrf": "made-up"},
               allow_redirects=False)
    assert r.status_code == 403 and "flamenco_session" not in s.cookies
    form_cookie = s.cookies["flamenco_login"]
    assert len(form_cookie) >= 32

    r = post_login(s, studio, username="ann", password="ann-secret-pw", next="/jobs/x?a=1")
    assert r.status_code == 303 and r.headers["Location"].endswith("/jobs/x?a=1")
    cookie = next(c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("flamenco_session="))
    assert "flamenco_login" not in s.cookies, "the sign-in form's cookie is done with"
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/", "Max-Age=604800"):
        assert attribute in cookie, cookie
    assert "Secure" not in cookie, "plain HTTP here; Secure only behind HTTPS"
    value = s.cookies["flamenco_session"]
    session_id, secret = value.split(".")
    with server.db.connection_context():
        row = WebSession.get_by_id(session_id)
        assert row.user.name == "ann" and secret not in row.secret_hash and len(row.secret_hash) == 64
        assert dt.timedelta(hours=167) < row.expires - row.created <= dt.timedelta(hours=168)

    r = s.get(studio.url + "/login", allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].endswith("/"), "signed in already"
    old_session = session_id
    r = post_login(browser(studio), studio, username="ann", password="ann-secret-pw")
    assert r.status_code == 303
    s.cookies.set("flamenco_login", "t", path="/login")
    r = s.post(studio.url + "/login", data={"username": "ann", "password": "ann-secret-pw", "login_csrf": "t"},
               allow_redirects=False)
    assert r.status_code == 303
    with server.db.connection_context():
        assert WebSession.get_or_none(WebSession.id == old_session) is None, "signing in again ends the old one"
        assert WebSession.select().count() == 2


def test_next_never_leaves_the_server():
    assert safe_next("/jobs/1?x=2") == "/jobs/1?x=2"
    for bad in (None, "", "//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:alert(1)",
                "/login?next=/", "/x\r\nSet-Cookie: a=b", "jobs/1"):
        assert safe_next(bad) == "/", bad


def test_the_api_takes_the_session_cookie_and_wants_csrf_for_changes(studio):
    s = sign_in(studio)
    me = s.get(studio.url + "/api/me")
    assert me.status_code == 200 and me.json()["name"] == "ann"
    token = csrf_of(s.get(studio.url + "/").text)

    r = s.post(studio.url + "/api/jobs", json=sleep_job())
    assert r.status_code == 403 and r.json()["code"] == "csrf_failed", "a cookie alone cannot change things"
    r = s.post(studio.url + "/api/jobs", json=sleep_job(), headers={CSRF: "0" * 64})
    assert r.status_code == 403
    r = s.post(studio.url + "/api/jobs", json=sleep_job(), headers={CSRF: token})
    assert r.status_code == 201, r.text
    job = r.json()
    r = s.post(studio.url + f"/api/jobs/{job['id']}/status", json={"status": "pause"}, headers={CSRF: token})
    assert r.status_code == 200 and r.json()["status"] == "paused"
    assert studio.ann.get(f"/api/jobs/{job['id']}").json()["status"] == "paused"

    other = sign_in(studio)
    assert csrf_of(other.get(studio.url + "/").text) != token, "each session has its own token"
    r = other.post(studio.url + f"/api/jobs/{job['id']}/status", json={"status": "resume"}, headers={CSRF: token})
    assert r.status_code == 403, "another session's token does not do"

    r = studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "resume"})
    assert r.status_code == 200, "bearer-token clients need no CSRF token"
    r = s.get(studio.url + "/api/me", headers={"Authorization": "Bearer nope.nope"})
    assert r.status_code == 401, "a bad bearer token is not rescued by the cookie"
    assert s.get(studio.url + "/api/users").status_code == 403, "the cookie is ann's, an artist"


def test_signing_out(studio, server):
    s = sign_in(studio)
    token = csrf_of(s.get(studio.url + "/").text)
    value = s.cookies["flamenco_session"]
    r = s.post(studio.url + "/logout", data={}, allow_redirects=False)
    assert r.status_code == 403 and s.get(studio.url + "/api/me").status_code == 200, "no CSRF token, no sign-out"
    r = s.post(studio.url + "/logout", data={"csrf": token}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].endswith("/login")
    assert "flamenco_session=" in r.headers["Set-Cookie"] and "Max-Age=0" in r.headers["Set-Cookie"]
    stale = requests.Session()
    stale.cookies.set("flamenco_session", value)
    assert stale.get(studio.url + "/api/me").status_code == 401, "the session is gone on the Server too"
    assert stale.get(studio.url + "/", allow_redirects=False).status_code == 303
    with server.db.connection_context():
        assert WebSession.select().count() == 0


def test_expired_sessions_stop_working_and_are_purged(studio, server):
    s = sign_in(studio)
    assert s.get(studio.url + "/api/me").status_code == 200
    with server.db.connection_context():
        WebSession.update(expires=dt.datetime(2000, 1, 1)).execute()
    assert s.get(studio.url + "/api/me").status_code == 401
    r = s.get(studio.url + "/", allow_redirects=False)
    assert r.status_code == 303 and "/login" in r.headers["Location"]
    assert Housekeeping(server.ctx).tick(server.ctx.clock.now()) == 1
    with server.db.connection_context():
        assert WebSession.select().count() == 0


def test_job_pages_and_404_for_other_projects(studio, boss_password):
    job = studio.ann.post("/api/jobs", json=sleep_job(name="shot 010")).json()
    assert job["web_url"] == f"/jobs/{job['id']}", "relative to the Server's URL"
    assert studio.ann.get("/api/jobs").json()["jobs"][0]["web_url"] == job["web_url"]

    s = sign_in(studio)
    r = s.get(studio.url + job["web_url"])
    assert r.status_code == 200 and "<title>shot 010 · Flamenco</title>" in r.text
    data = page_data(r.text)
    assert data["page"] == "job" and data["job"]["id"] == job["id"]
    assert data["actions"]["queued"] == ["pause", "cancel", "requeue-failed"]
    assert r.headers["Cache-Control"] == "no-store"
    assert "/workers" not in r.text, "artists get no admin links"

    boss = sign_in(studio, "boss", boss_password)
    assert boss.get(studio.url + job["web_url"]).status_code == 200, "admins see every job"

    for path in ("/jobs/" + "0" * 32, "/jobs/nope"):
        r = s.get(studio.url + path)
        assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
        assert "Job not found" in r.text


def test_artists_do_not_see_other_projects_jobs(studio, server):
    from backend.server import admin
    with server.db.connection_context():
        admin.link_manager(server.db, "m1", "ads")
    bobs = studio.bob.post("/api/jobs", json={"name": "bob's ad", "type": "sleep", "project": "ads",
                                              "settings": {"frames": "1"}}).json()
    with server.db.connection_context():
        admin.set_password(server.db, "bob", "bob-secret-pw")  # ends bob's API token
    s = sign_in(studio)
    r = s.get(studio.url + bobs["web_url"])
    assert r.status_code == 404 and "Job not found" in r.text and "bob&#039;s ad" not in r.text
    assert s.get(studio.url + f"/api/jobs/{bobs['id']}").status_code == 404
    listed = page_data(s.get(studio.url + "/").text)["initial"]
    assert listed["jobs"] == [] and listed["total"] == 0
    bob = sign_in(studio, "bob", "bob-secret-pw")
    assert bob.get(studio.url + bobs["web_url"]).status_code == 200


def test_everything_from_users_is_escaped(studio):
    job = studio.admin.post("/api/jobs", json={"name": NASTY, "type": "exec-command", "project": "film",
                                               "settings": {"cmd": NASTY}}).json()
    s = sign_in(studio, next_url="/")
    for path in (job["web_url"], "/?status=" + NASTY, "/login?next=/" + NASTY):
        text = s.get(studio.url + path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert text.count("</script>") == 2, "only the page's own script elements end"
    text = s.get(studio.url + job["web_url"]).text
    shown = re.search(r'<h1 id="job-name">(.*?)</h1>', text).group(1)
    assert "<" not in shown and html.unescape(shown) == NASTY
    assert page_data(text)["job"]["name"] == NASTY, "the page data says the same, as JSON"
    assert page_data(text)["job"]["settings"]["cmd"] == NASTY
    r = s.get(studio.url + "/login?next=" + requests.utils.quote('/"><script>alert(1)</script>'))
    assert '"><script>' not in r.text


def test_admin_pages(studio, boss_password):
    ann = sign_in(studio)
    for path in ("/workers", "/managers"):
        r = ann.get(studio.url + path)
        assert r.status_code == 403 and "Admins only" in r.text
    boss = sign_in(studio, "boss", boss_password)
    for path in ("/workers", "/managers"):
        r = boss.get(studio.url + path)
        assert r.status_code == 200 and page_data(r.text)["page"] == path[1:]
        assert 'href="/workers"' in r.text and 'href="/managers"' in r.text
    assert boss.get(studio.url + "/api/workers").status_code == 200
    assert boss.get(studio.url + "/api/managers").json()["managers"][0]["name"] == "m1"


def test_unknown_pages_and_static_files(studio):
    s = browser(studio)
    r = s.get(studio.url + "/no/such/page")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    r = requests.get(studio.url + "/api/no/such/route")
    assert r.status_code == 404 and r.json()["code"] == "not_found", "the API keeps answering JSON"
    r = requests.get(studio.url + "/no/such/page")
    assert r.status_code == 404 and r.json()["code"] == "not_found", "JSON unless a browser asks for HTML"
    for name, kind in (("flamenco.js", "javascript"), ("flamenco.css", "text/css")):
        r = s.get(studio.url + "/static/" + name)
        assert r.status_code == 200 and kind in r.headers["Content-Type"] and r.headers["Cache-Control"] == "no-cache"
    assert s.get(studio.url + "/static/../routes/pages.py").status_code == 404
    assert s.get(studio.url + "/static/%2e%2e/sessions.py").status_code in (403, 404)


def test_job_actions_follow_the_status_tables():
    actions = job_actions()
    assert actions["active"] == ["pause", "cancel", "requeue-failed"]
    assert actions["paused"] == ["resume", "cancel", "requeue"]
    assert actions["pause-requested"] == ["resume", "cancel"]
    assert actions["completed"] == actions["failed"] == actions["canceled"] == ["requeue"]
    assert actions["cancel-requested"] == actions["archived"] == []
