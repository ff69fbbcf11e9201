"""Helpers for the Server's integration tests."""

from __future__ import annotations

import requests


class Client:
    """requests with a base URL and a bearer token."""

    def __init__(self, base: str, token: str | None = None):
        self.base, self.token = base, token
        self.session = requests.Session()

    def request(self, method: str, path: str, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.session.request(method, self.base + path, headers=headers, timeout=30, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def sleep_job(**kw):
    return {"name": "sleepy", "type": "sleep", "settings": {"frames": "1-4", "chunk_size": 1,
                                                              "time_in_seconds": 0.1}, "project": "film", **kw}


def web_sign_in(base: str, name: str, password: str, session: requests.Session | None = None) -> requests.Response:
    """Sign in on the web pages' form, as a browser does; the answer (303 and the session cookie)."""
    import re
    s = session or requests.Session()
    page = s.get(base + "/login", headers={"Accept": "text/html"}, timeout=30).text
    token = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
    return s.post(base + "/login", data={"username": name, "password": password, "login_csrf": token},
                  allow_redirects=False, timeout=30)
