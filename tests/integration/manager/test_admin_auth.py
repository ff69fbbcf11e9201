"""Who may use the Manager's admin API and pages (issue 12, leaks 3 and 5; issue 13, point 7).

Real Managers on cheroot (and, for the command line, real `flamenco-manager` processes): no admin
access without credentials, not even from this machine; bearer tokens for tools (configured, or
minted and stored hashed); a password for people, with a cookie, a CSRF token and a sign-in limit;
requests that change something must be JSON and come from the Manager's own pages; secrets never on
the command line; no open registration beyond loopback unless asked for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import requests

from tests.conftest import ROOT
from tests.integration.manager.manager_helpers import free_port, task_doc

PASSWORD = "a long admin password"
EVIL = "https://evil.example"


def admin_routes(manager) -> list[tuple[str, str]]:
    """(method, path) of every admin route of the Manager's OpenAPI document, with ids filled in."""
    doc = requests.get(manager.url + "/api/openapi.json", timeout=5).json()
    out = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if {"adminBearer": []} in op["security"]:
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "x1", path)))
    return out


def held_tasks(manager) -> list[str]:
    return [t["_id"] for t in manager.admin("GET", "/api/admin/tasks").json()["tasks"]]


def manager_cli(*args, data_dir, stdin=None, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.manager.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, input=stdin, timeout=timeout, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def signed_in(manager, password=PASSWORD) -> tuple[requests.Session, str]:
    """A browser's session on the Manager's pages: (session with the cookie, the page's CSRF token)."""
    s = requests.Session()
    r = s.post(manager.url + "/login", data={"password": password, "next": "/workers"}, timeout=10)
    assert r.status_code == 200 and r.url.endswith("/workers"), r.text[:300]
    return s, re.search(r'name="csrf-token" content="([^"]+)"', r.text).group(1)


def test_without_password_or_token_every_admin_route_is_refused_even_from_loopback(manager_factory):
    m = manager_factory(admin_token="")
    routes = admin_routes(m)
    assert len(routes) >= 15
    for method, path in routes:
        r = requests.request(method, m.url + path, json={}, timeout=5)
        assert r.status_code == 403, (method, path, r.status_code)
        assert r.json()["code"] == "admin_not_configured"
        assert "set-admin-password" in r.json()["message"] and "create-admin-token" in r.json()["message"]
    r = requests.post(m.url + "/api/admin/local-tasks", data=json.dumps({"tasks": [task_doc("t1")]}),
                      headers={"Content-Type": "text/plain"}, timeout=5)
    assert r.status_code == 403
    assert m.core.db.tasks.get("t1") is None, "nothing ran"
    assert requests.get(m.url + "/", timeout=5).json()["service"] == "flamenco-manager", "the index stays open"


def test_a_cross_site_text_plain_post_is_refused(manager_factory):
    """What a page on another site can make a browser send: a text/plain POST (no preflight) with the
    browser's cookies (none: SameSite=Strict), an Origin header, and no Authorization header."""
    m = manager_factory()
    m.core.admin_auth.set_password(PASSWORD)
    attack = json.dumps({"tasks": [task_doc("evil", commands=[{"name": "exec", "settings": {"cmd": "touch /tmp/x"}}])]})
    forged = {"Content-Type": "text/plain", "Origin": EVIL}
    r = requests.post(m.url + "/api/admin/local-tasks", data=attack, headers=forged, timeout=5)
    assert r.status_code == 401
    # Even a browser that did send the admin's cookie (it does not: SameSite=Strict) gets nowhere ...
    browser, csrf = signed_in(m)
    assert browser.post(m.url + "/api/admin/local-tasks", data=attack, headers=forged).status_code == 403
    assert browser.post(m.url + "/api/admin/local-tasks", data=attack,
                        headers={"Content-Type": "application/json"}).json()["code"] == "csrf_failed"
    assert browser.post(m.url + "/api/admin/local-tasks", data=attack,
                        headers={"Content-Type": "text/plain", "X-Flamenco-CSRF": csrf}).status_code == 415
    r = browser.post(m.url + "/api/admin/local-tasks", data=attack,
                     headers={"Content-Type": "application/json", "X-Flamenco-CSRF": csrf, "Origin": EVIL})
    assert r.status_code == 403 and r.json()["code"] == "cross_origin"
    # ... and neither does a tool's token from the wrong origin or as text/plain.
    assert m.admin("POST", "/api/admin/local-tasks", data=attack, headers={"Content-Type": "text/plain"}).status_code == 415
    assert m.admin("POST", "/api/admin/local-tasks", data=attack,
                   headers={"Content-Type": "application/json", "Origin": EVIL}).status_code == 403
    assert held_tasks(m) == [], "no task was added"
    # The Manager's own page, as the browser sends it, works.
    r = browser.post(m.url + "/api/admin/local-tasks", data=attack,
                     headers={"Content-Type": "application/json", "X-Flamenco-CSRF": csrf, "Origin": m.url})
    assert r.status_code == 200 and held_tasks(m) == ["evil"]


def test_bearer_tokens_configured_and_minted(manager_factory):
    m = manager_factory(admin_token="configured-token-42")
    assert requests.get(m.url + "/api/admin/status", timeout=5).status_code == 401
    assert requests.get(m.url + "/api/admin/status", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert requests.get(m.url + "/api/admin/status", headers={"Authorization": "Basic eDp5"}).status_code == 401
    good = {"Authorization": "Bearer configured-token-42"}
    assert requests.get(m.url + "/api/admin/status", headers=good, timeout=5).status_code == 200
    assert requests.get(m.url + "/api/admin/workers", params={"token": "configured-token-42"}).status_code == 401, \
        "a token in the URL ends up in logs and histories: not accepted"

    data_dir = m.config.data_dir
    made = manager_cli("create-admin-token", "--label", "bench", "--json", data_dir=data_dir)
    assert made.returncode == 0, made.stderr
    minted = json.loads(made.stdout)
    bearer = {"Authorization": f"Bearer {minted['token']}"}
    assert requests.get(m.url + "/api/admin/status", headers=bearer, timeout=5).status_code == 200
    stored = (data_dir / "flamenco-manager.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in data_dir.glob("flamenco-manager.sqlite-*"))
    assert minted["token"].split(".", 1)[1].encode() not in stored, "only the token's hash is stored"
    listed = json.loads(manager_cli("list-admin-tokens", "--json", data_dir=data_dir).stdout)["tokens"]
    assert [(t["id"], t["label"]) for t in listed] == [(minted["id"], "bench")] and listed[0]["last_used"]
    assert manager_cli("revoke-admin-token", minted["id"], data_dir=data_dir).returncode == 0
    assert requests.get(m.url + "/api/admin/status", headers=bearer, timeout=5).status_code == 403
    assert manager_cli("revoke-admin-token", minted["id"], data_dir=data_dir).returncode == 1


def test_the_password_gives_a_strict_cookie_and_a_csrf_token(manager_factory):
    m = manager_factory(admin_token="", trusted_proxies=["127.0.0.1"])  # a TLS proxy on this machine
    data_dir = m.config.data_dir
    short = manager_cli("set-admin-password", "--password-stdin", data_dir=data_dir, stdin="short\n")
    assert short.returncode == 2 and "10 to" in short.stderr
    assert "no admin password" in requests.get(m.url + "/login", timeout=5).text.lower()
    ok = manager_cli("set-admin-password", "--password-stdin", data_dir=data_dir, stdin=PASSWORD + "\n")
    assert ok.returncode == 0, ok.stderr
    assert PASSWORD.encode() not in (data_dir / "flamenco-manager.sqlite").read_bytes()

    r = requests.get(m.url + "/workers", allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"].endswith("/login?next=/workers")
    r = requests.get(m.url + "/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=5)
    assert r.status_code == 303 and r.headers["Location"].endswith("/status"), "a browser goes to the pages"
    r = requests.post(m.url + "/login", data={"password": "wrong password!"}, timeout=10)
    assert r.status_code == 401 and "Wrong password." in r.text
    r = requests.post(m.url + "/login", data={"password": PASSWORD}, headers={"Origin": EVIL}, timeout=10)
    assert r.status_code == 403, "signing in from another site's form"

    r = requests.post(m.url + "/login", data={"password": PASSWORD, "next": "//evil.example/x"},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"].endswith("/status"), "next stays on this Manager"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Secure" not in cookie
    behind_tls = requests.post(m.url + "/login", data={"password": PASSWORD}, allow_redirects=False,
                               headers={"X-Forwarded-Proto": "https"}, timeout=10)
    assert "Secure" in behind_tls.headers["Set-Cookie"]

    browser, csrf = signed_in(m)
    assert browser.get(m.url + "/api/admin/workers", timeout=5).status_code == 200
    assert browser.post(m.url + "/api/admin/kick", json={}).json()["code"] == "csrf_failed"
    assert browser.post(m.url + "/api/admin/kick", json={}, headers={"X-Flamenco-CSRF": csrf}).json()["code"] == \
        "not_linked", "past the checks: this Manager is not linked"
    assert browser.post(m.url + "/logout", data={"csrf": "wrong"}).status_code == 403
    assert browser.post(m.url + "/logout", data={"csrf": csrf}).url.endswith("/login")
    assert browser.get(m.url + "/api/admin/workers", timeout=5).status_code == 401, "the session ended"

    browser, _ = signed_in(m)
    m.core.admin_auth.set_password("another long password")
    assert browser.get(m.url + "/api/admin/workers", timeout=5).status_code == 401, \
        "a new password ends the sessions of the old one"


def test_wrong_passwords_are_limited(manager_factory):
    m = manager_factory(admin_token="")
    m.core.admin_auth.set_password(PASSWORD)
    for _ in range(5):
        assert requests.post(m.url + "/login", data={"password": "guess guess guess"}, timeout=10).status_code == 401
    r = requests.post(m.url + "/login", data={"password": PASSWORD}, timeout=10)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "try again in" in r.text


def test_secrets_on_the_command_line_are_refused(tmp_path):
    for flag, env in (("--token=abc", "FLAMENCO_MANAGER_TOKEN"), ("--admin-token=abc", "FLAMENCO_MANAGER_ADMIN_TOKEN"),
                      ("--registration-secret", "FLAMENCO_REGISTRATION_SECRET")):
        args = ["serve", flag] + (["abc"] if "=" not in flag else [])
        r = manager_cli(*args, "--listen", "127.0.0.1:0", data_dir=tmp_path / "m")
        assert r.returncode == 2, (flag, r.stderr)
        assert env in r.stderr and "ps" in r.stderr, r.stderr
    assert not (tmp_path / "m").exists(), "it did not start"


def _serve(tmp_path, listen, *args, env=None):
    return subprocess.Popen([sys.executable, "-m", "backend.manager.cli", "serve", "--data-dir", str(tmp_path),
                             "--listen", listen, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, **(env or {})})


def _answers(url, proc, timeout=30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return requests.get(url, timeout=1).ok
        except requests.RequestException:
            time.sleep(0.1)
    return False


def test_open_registration_beyond_loopback_is_refused_unless_asked_for(tmp_path):
    port = free_port()
    proc = _serve(tmp_path / "a", f"0.0.0.0:{port}")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "FLAMENCO_REGISTRATION_SECRET" in out and "--allow-open-registration" in out
    for extra, env in (([], {"FLAMENCO_REGISTRATION_SECRET": "a-secret"}), (["--allow-open-registration"], {})):
        proc = _serve(tmp_path / "b", f"0.0.0.0:{port}", *extra, env=env)
        try:
            assert _answers(f"http://127.0.0.1:{port}/api/openapi.json", proc), "it started"
        finally:
            proc.terminate()
            proc.wait(20)
