"""A farm behind nginx with TLS (deploy/nginx/), a self-signed certificate made here.

The Server and a Manager run as processes on loopback, reached only through nginx over HTTPS:
the Manager links to the Server through it, a worker process takes its tasks through it, the
add-on's client signs in, uploads a large file and submits, the CLI watches the job to its end,
the web session cookie is Secure, and the Manager's event stream and the redirect to HTTPS work.
Each client trusts the certificate the documented way: REQUESTS_CA_BUNDLE (worker, Manager, CLI),
SSL_CERT_FILE (the add-on's urllib client).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest
import requests

from backend.manager.config import ManagerConfig
from blender_addon import client as addon_client
from tests.integration.deploy.deploy_helpers import (DEPLOY, PY, Nginx, Proc, config_value, free_port, make_certificate, seed_server,
                            site_config, start_manager, start_server, start_worker, wait_until)


@pytest.fixture
def tls_farm(tmp_path):
    cert, key = make_certificate(tmp_path)
    ports = {name: free_port() for name in ("server", "manager", "https_server", "https_manager", "http")}
    nginx = Nginx(tmp_path / "nginx", {
        "flamenco-server": site_config("flamenco-server", ports["https_server"], cert, key, [ports["server"]],
                                       8080, redirect_port=ports["http"]),
        "flamenco-manager": site_config("flamenco-manager", ports["https_manager"], cert, key, [ports["manager"]],
                                        8083),
    })
    server_url, manager_url = f"https://localhost:{ports['https_server']}", f"https://localhost:{ports['https_manager']}"
    ids = seed_server(tmp_path / "server")
    trust = {"REQUESTS_CA_BUNDLE": str(cert)}
    procs: list[Proc] = []
    try:
        procs.append(start_server("server", tmp_path / "server", ports["server"], tmp_path))
        nginx.start(ports["https_server"])
        procs.append(start_manager(tmp_path / "manager", ports["manager"], server_url, manager_url, ids, tmp_path,
                                   env=trust))
        wait_until("the Manager through nginx", lambda: requests.get(
            manager_url + "/api/openapi.json", timeout=2, verify=str(cert)).ok, procs=procs)
        procs.append(start_worker(manager_url, tmp_path / "worker", tmp_path, env=trust))
        yield {"cert": cert, "server_url": server_url, "manager_url": manager_url, "nginx": nginx, "procs": procs,
               "http_url": f"http://127.0.0.1:{ports['http']}", **ids}
    finally:
        for p in reversed(procs):
            p.stop()
        nginx.stop()


def test_clients_talk_https_through_nginx_to_a_real_server_manager_and_worker(tls_farm, tmp_path, monkeypatch):
    farm, cert = tls_farm, tls_farm["cert"]
    procs = farm["procs"]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    addon = addon_client.Client(farm["server_url"])
    addon.token = addon.login("ann", "ann-secret-pw")["token"]
    assert addon.check_version()["version"]

    # A job pack file of 24 MB goes through in one streamed request.
    big = tmp_path / "scene.blend"
    big.write_bytes(os.urandom(1 << 20) * 24)
    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    assert addon.files_check([(sha, big.stat().st_size)]) == [sha]
    addon.upload_file(sha, str(big))
    assert addon.files_check([(sha, big.stat().st_size)]) == []

    def submit():
        try:
            return addon.submit_job({"name": "over tls", "type": "sleep", "project": "film",
                                     "settings": {"frames": "1-3", "chunk_size": 1, "time_in_seconds": 0.2}})
        except addon_client.ClientError as ex:
            assert "no manager" in str(ex).lower() or "supports" in str(ex), ex
            return None  # the Manager has not announced its worker's task types yet
    job = wait_until("the Manager to announce the worker", submit, timeout=60, procs=procs)

    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(cert)}
    cli = [PY, "-m", "flamenco_cli.main", "--server", farm["server_url"], "--token", farm["ann_token"]]
    out = subprocess.run([*cli, "watch", job["id"], "--interval", "0.3"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr + "".join(p.log()[-2000:] for p in procs)
    assert f"job {job['id']} completed" in out.stdout

    untrusted = {k: v for k, v in env.items() if k not in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")}
    out = subprocess.run([*cli, "jobs"], capture_output=True, text=True, timeout=60, env=untrusted)
    assert out.returncode == 2 and "certificate" in out.stderr and "REQUESTS_CA_BUNDLE" in out.stderr, out.stderr

    # Everything went through nginx, over TLS, to both services.
    log = farm["nginx"].access_log()
    assert "/api/managers/" in log and "POST /task HTTP/1.1 200" in log and "PUT /api/files/" in log


def test_the_web_session_cookie_is_secure_behind_the_tls_proxy(tls_farm):
    s = requests.Session()
    ca = str(tls_farm["cert"])  # per request: requests prefers REQUESTS_CA_BUNDLE to Session.verify
    url = tls_farm["server_url"]
    page = s.get(url + "/login", timeout=30, verify=ca)
    token = page.text.split('name="login_csrf" value="', 1)[1].split('"', 1)[0]
    r = s.post(url + "/login", data={"username": "ann", "password": "ann-secret-pw", "login_csrf": token},
               allow_redirects=False, timeout=30, verify=ca)
    assert r.status_code == 303, r.text
    cookie = next(c for c in r.raw.headers.getlist("Set-Cookie") if c.startswith("flamenco_session="))
    assert "; Secure" in cookie and "HttpOnly" in cookie
    assert r.headers["Location"].startswith(("/", url)), "redirects stay on the proxy's host and scheme"
    assert s.get(url + "/api/me", timeout=30, verify=ca).json()["name"] == "ann"

    r = requests.get(tls_farm["http_url"] + "/jobs", allow_redirects=False, timeout=30)
    assert r.status_code == 301 and r.headers["Location"].startswith("https://")


def test_the_managers_event_stream_flows_through_the_proxy(tls_farm):
    url = tls_farm["manager_url"] + "/imagewatch"
    started = time.monotonic()
    with requests.get(url, stream=True, timeout=(10, 10), verify=str(tls_farm["cert"]),
                      headers={"Authorization": "Bearer manager-admin"}) as r:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        first = next(r.iter_content(chunk_size=None))
    assert first.startswith(b"retry: 3000"), first
    assert time.monotonic() - started < 5, "the first event arrives at once, not when a buffer fills"


def test_the_proxy_timeouts_outlast_what_the_services_hold():
    manager = (DEPLOY / "nginx" / "flamenco-manager.conf").read_text()
    held = max(ManagerConfig().scheduling.long_poll_max, 15)  # long-polls; the image stream's keep-alive
    assert int(config_value(manager, "proxy_read_timeout").rstrip("s")) > held * 2
    for name in ("flamenco-manager", "flamenco-server"):
        conf = (DEPLOY / "nginx" / f"{name}.conf").read_text()
        assert config_value(conf, "client_max_body_size") == "0"
        assert config_value(conf, "proxy_request_buffering") == "off"
        assert config_value(conf, "proxy_buffering") == "off"
        assert config_value(conf, "proxy_set_header X-Forwarded-For") == "$remote_addr"
