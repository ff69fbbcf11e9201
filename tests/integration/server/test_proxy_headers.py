"""X-Forwarded-* from a trusted proxy only (backend/proxy.py): the session cookie is Secure when the
browser used HTTPS at the proxy, and nobody else can claim HTTPS, another host or another address."""

from __future__ import annotations

import re

import pytest
import requests

from backend.proxy import TrustedProxies
from backend.server.app import make_app
from backend.server.config import ConfigError, ServerConfig
from shared.serving import ServiceThread

FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "10.9.9.9"}


def environ(peer: str, **headers) -> dict:
    env = {"REMOTE_ADDR": peer, "wsgi.url_scheme": "http", "HTTP_HOST": "server:8080"}
    env.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    return env


@pytest.mark.parametrize("chain, client", [
    ("203.0.113.7", "203.0.113.7"),
    ("127.0.0.1, 203.0.113.7", "203.0.113.7"),  # a client's forged first entry is not believed
    ("203.0.113.7, 10.0.0.5", "203.0.113.7"),  # through two trusted proxies
    ("10.0.0.5", "10.0.0.5"),  # only proxies: the farthest
    ("garbage", "10.0.0.2"),  # not an address: the peer stays
])
def test_the_client_is_the_last_address_before_the_trusted_proxies(chain, client):
    env = environ("10.0.0.2", **{"X-Forwarded-For": chain, "X-Forwarded-Proto": "https"})
    TrustedProxies(["10.0.0.0/8"]).apply(env)
    assert env["REMOTE_ADDR"] == client and env["wsgi.url_scheme"] == "https"


def test_headers_from_anyone_else_are_dropped():
    env = environ("203.0.113.7", **FORGED)
    TrustedProxies(["10.0.0.0/8"]).apply(env)
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("203.0.113.7", "http", "server:8080")
    assert not any(k.startswith("HTTP_X_FORWARDED") for k in env)
    env = environ("::ffff:10.1.2.3", **{"X-Forwarded-Proto": "https"})
    TrustedProxies(["10.0.0.0/8"]).apply(env)
    assert env["wsgi.url_scheme"] == "https", "an IPv4 proxy on a dual-stack socket"


def test_a_bad_trusted_proxy_is_a_config_error():
    with pytest.raises(ConfigError, match="trusted_proxies: 'proxy.local' is not an IP address"):
        ServerConfig.from_dict({"trusted_proxies": ["proxy.local"]})


def set_cookie(resp, name: str) -> str:
    return next(c for c in resp.raw.headers.getlist("Set-Cookie") if c.startswith(name + "="))


@pytest.mark.parametrize("trusted, secure", [([], False), (["127.0.0.1"], True)])
def test_the_session_cookie_is_secure_only_when_a_trusted_proxy_says_https(studio, tmp_path, trusted, secure):
    cfg = ServerConfig.from_dict({}, data_dir=tmp_path / "data", trusted_proxies=trusted)
    with ServiceThread(make_app(cfg, studio.server.db), threads=4) as service:
        # By hand, as a browser would over HTTPS: requests keeps Secure cookies from plain http.
        form = requests.get(service.url + "/login", headers=FORGED, timeout=30)
        login_cookie = set_cookie(form, "flamenco_login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)
        r = requests.post(service.url + "/login", headers={**FORGED, "Cookie": login_cookie.split(";")[0]},
                          data={"username": "ann", "password": "ann-secret-pw", "login_csrf": token},
                          allow_redirects=False, timeout=30)
        assert r.status_code == 303, r.text
        for cookie in (login_cookie, set_cookie(r, "flamenco_session")):
            assert ("; Secure" in cookie) is secure, cookie
