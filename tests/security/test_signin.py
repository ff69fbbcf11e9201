"""Signing in (issue 12, 10): wrong passwords are limited; tokens expire, can be revoked, and end with a
password change or 'sign out everywhere'."""

from __future__ import annotations

import datetime as dt

import requests

from tests.security.security_helpers import ANN_PW, BOB_PW, Client, CookieClient, build_farm


def login(farm, name: str, password: str, **headers) -> requests.Response:
    return requests.post(farm.url + "/api/auth/login", json={"username": name, "password": password},
                         headers=headers, timeout=30)


def test_wrong_passwords_are_limited_per_user(farm):
    limit = farm.ctx.config.login_failures_per_user
    for _ in range(limit):
        assert login(farm, "ann", "wrong password").status_code == 401
    r = login(farm, "ann", ANN_PW)
    assert r.status_code == 429, "the right password, too, once over the limit"
    assert 0 < int(r.headers["Retry-After"]) <= farm.ctx.config.login_window_seconds
    assert r.json()["code"] == "too_many_attempts"
    assert login(farm, "bob", BOB_PW).status_code == 200, "other users are not locked out"
    browser = requests.Session()
    page = browser.get(farm.url + "/login", timeout=10).text
    token = page.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
    r = browser.post(farm.url + "/login", data={"username": "ann", "password": ANN_PW, "login_csrf": token},
                     allow_redirects=False, timeout=10)
    assert r.status_code == 429 and "Retry-After" in r.headers, "the web sign-in shares the limit"


def test_wrong_passwords_are_limited_per_address(server_factory):
    """Guessing many names from one address; a trusted proxy's X-Forwarded-For names the client."""
    farm = build_farm(*server_factory(trusted_proxies=["127.0.0.1"]))
    limit = farm.ctx.config.login_failures_per_address
    for i in range(limit):
        assert login(farm, f"nobody{i}", "guess", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
    assert login(farm, "bob", BOB_PW, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    assert login(farm, "bob", BOB_PW, **{"X-Forwarded-For": "203.0.113.8"}).status_code == 200


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(server_factory):
    from backend.server import admin
    service, _, db = server_factory(trusted_proxies=["192.0.2.1"], login_failures_per_address=3)
    with db.connection_context():
        admin.create_user(db, "carl", "artist", password="carl-secret-pw")
    for i in range(3):
        r = requests.post(service.url + "/api/auth/login", json={"username": f"x{i}", "password": "y"},
                          headers={"X-Forwarded-For": f"198.51.100.{i}"}, timeout=10)
        assert r.status_code == 401
    r = requests.post(service.url + "/api/auth/login", json={"username": "carl", "password": "carl-secret-pw"},
                      headers={"X-Forwarded-For": "198.51.100.99"}, timeout=10)
    assert r.status_code == 429, "a client cannot escape its limit with its own X-Forwarded-For"


def test_login_tokens_expire(farm):
    token = login(farm, "ann", ANN_PW).json()["token"]
    me = Client(farm.url, token)
    assert me.get("/api/me").status_code == 200
    (mine,) = [t for t in me.get("/api/auth/tokens").json()["tokens"] if t["current"]]
    expires = dt.datetime.fromisoformat(mine["expires"].rstrip("Z"))
    days = (expires - dt.datetime.utcnow()).total_seconds() / 86400
    assert abs(days - farm.ctx.config.login_token_days) < 0.01
    with farm.db.connection_context():
        from backend.server.models import ApiToken
        ApiToken.update(expires=dt.datetime.utcnow() - dt.timedelta(seconds=1)).where(
            ApiToken.id == mine["id"]).execute()
    assert me.get("/api/me").status_code == 401


def test_tokens_can_be_made_listed_and_revoked(farm):
    ann, bob = farm.client("ann"), farm.client("bob")
    r = ann.post("/api/auth/tokens", json={"label": "render node script", "expires_in_days": 7})
    assert r.status_code == 201
    new = r.json()
    assert new["label"] == "render node script" and new["expires"] is not None
    listed = {t["id"]: t for t in ann.get("/api/auth/tokens").json()["tokens"]}
    assert new["id"] in listed and "token" not in listed[new["id"]] and listed[farm.ids["ann_token_id"]]["current"]
    assert Client(farm.url, new["token"]).get("/api/me").status_code == 200
    assert bob.request("DELETE", f"/api/auth/tokens/{new['id']}").status_code == 404, "not bob's"
    assert ann.request("DELETE", f"/api/auth/tokens/{new['id']}").status_code == 204
    assert Client(farm.url, new["token"]).get("/api/me").status_code == 401
    assert ann.request("DELETE", f"/api/auth/tokens/{new['id']}").status_code == 404
    assert ann.post("/api/auth/tokens", json={"expires_in_days": -1}).status_code == 400


def test_sign_out_everywhere_ends_tokens_and_sessions(farm):
    browser = CookieClient(farm.url, "ann", ANN_PW)
    other = login(farm, "ann", ANN_PW).json()["token"]
    r = farm.client("ann").post("/api/auth/sign-out-everywhere")
    assert r.status_code == 204
    for client in (farm.client("ann"), Client(farm.url, other), browser):
        assert client.get("/api/me").status_code == 401
    assert farm.client("bob").get("/api/me").status_code == 200
    r = farm.client("bob").post("/api/users/bob/sign-out-everywhere")
    assert r.status_code == 403, "the admin route"
    assert farm.client("boss").post("/api/users/bob/sign-out-everywhere").status_code == 204
    assert farm.client("bob").get("/api/me").status_code == 401


def test_a_password_change_ends_the_other_sign_ins(farm):
    browser = CookieClient(farm.url, "ann", ANN_PW)
    other = login(farm, "ann", ANN_PW).json()["token"]
    ann = farm.client("ann")
    r = ann.post("/api/auth/password", json={"current_password": "not it", "new_password": "a new long password"})
    assert r.status_code == 401
    r = ann.post("/api/auth/password", json={"current_password": ANN_PW, "new_password": "short"})
    assert r.status_code == 400
    r = ann.post("/api/auth/password", json={"current_password": ANN_PW, "new_password": "a new long password"})
    assert r.status_code == 200, r.text
    fresh = r.json()["token"]
    for client in (ann, Client(farm.url, other), browser):
        assert client.get("/api/me").status_code == 401
    assert Client(farm.url, fresh).get("/api/me").status_code == 200, "the one making the change gets a new token"
    assert login(farm, "ann", ANN_PW).status_code == 401
    assert login(farm, "ann", "a new long password").status_code == 200


def test_a_password_change_on_the_pages_keeps_that_browser_signed_in(farm):
    browser = CookieClient(farm.url, "ann", ANN_PW).with_csrf()
    token_client = farm.client("ann")
    r = browser.post("/api/auth/password", json={"current_password": ANN_PW, "new_password": "another long pw"})
    assert r.status_code == 200 and r.json()["token"] is None
    assert browser.get("/api/me").status_code == 200, "a new session cookie"
    assert token_client.get("/api/me").status_code == 401


def test_the_cli_password_reset_ends_sign_ins(farm):
    from backend.server import admin
    with farm.db.connection_context():
        admin.set_password(farm.db, "bob", "reset by an admin")
    assert farm.client("bob").get("/api/me").status_code == 401
