"""Real headless Chromium (Debian's, driven by Playwright) against a real Server on a cheroot port.

Playwright's own browser downloads are not used: the tests launch the system
Chromium (`FLAMENCO_CHROMIUM` or /usr/bin/chromium). Without it, or without the
playwright package, they skip (and fail under CI=true).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from backend.db import open_database
from backend.server import admin
from backend.server.app import make_app
from shared.serving import ServiceThread
from tests.browser.browser_helpers import CHROMIUM_ARGS, PASSWORDS, chromium_executable
from tests.conftest import missing
from tests.integration.server.server_it_helpers import Client
from tests.unit.server.server_testdb import make_config


@pytest.fixture(scope="session")
def browser():
    exe = chromium_executable()
    if exe is None:
        missing("chromium")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("playwright (pip install -e '.[test]')")
    expect.set_options(timeout=10_000)  # a page refreshes every 0.5-3 s; the default 5 s is tight on a busy CI
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser_studio(tmp_path):
    """A Server on SQLite with a studio whose people all sign in with PASSWORDS: admin 'boss', artist 'ann'
    in 'film', artist 'bob' in 'ads', manager 'm1' on both (started); each has a Client."""
    db = open_database(f"sqlite:///{tmp_path}/server.sqlite")
    app = make_app(make_config(tmp_path), db)
    with db.connection_context():
        admin.create_project(db, "film")
        admin.create_project(db, "ads")
        _, boss = admin.create_user(db, "boss", "admin", password=PASSWORDS["boss"])
        _, ann = admin.create_user(db, "ann", "artist", password=PASSWORDS["ann"], projects=["film"])
        _, bob = admin.create_user(db, "bob", "artist", password=PASSWORDS["bob"], projects=["ads"])
        manager, mtoken = admin.create_manager(db, "m1")
        admin.link_manager(db, "m1", "film")
        admin.link_manager(db, "m1", "ads")
    with ServiceThread(app, threads=16) as service:
        m = Client(service.url, mtoken)
        r = m.post(f"/api/managers/{manager.id}/startup", json={
            "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": 2,
            "worker_task_types": ["sleep", "blender-render", "file-management", "video-encoding", "debug"],
            "variables": {}})
        assert r.status_code == 204, r.text
        yield SimpleNamespace(url=service.url, app=app, db=db, manager=m, manager_id=manager.id,
                              ann=Client(service.url, ann), boss=Client(service.url, boss),
                              bob=Client(service.url, bob))
    db.close()


@pytest.fixture
def page(browser, browser_studio):
    context = browser.new_context(base_url=browser_studio.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield tab
    context.close()
    unexpected = [e for e in errors if "401" not in e and "404" not in e and "403" not in e]
    assert not unexpected, f"errors in the page: {unexpected}"


FARM_MANAGER_CONFIG = """
[timeouts]
worker_timeout = 8.0
task_timeout = 60.0
check_interval = 1.0

[failures]
blocklist_threshold = 1

[upstream]
push_interval = 0.2
cancel_poll_interval = 0.3
worker_report_interval = 2.0
"""
FARM_WORKER_CONFIG = """
asleep_poll_seconds = 0.5
may_i_run_interval_seconds = 0.5
no_task_retry_seconds = 0.5
"""


@pytest.fixture(scope="module")
def admin_farm(browser, tmp_path_factory):
    """A real farm (Server, Manager and two workers, each a process) with fast timings; an admin 'admin'
    and an artist 'ann' (both with FARM_PASSWORDS) on the Server, the Manager's admin password set and an
    admin token minted for the test's checks (`manager`: a requests session on its admin API); images put
    in `watch_dir` become the Manager's latest image."""
    import json

    import requests

    from flamenco_cli.farm import Farm
    from tests.browser.browser_helpers import FARM_PASSWORDS, wait_until

    data = tmp_path_factory.mktemp("admin-farm")
    (data / "worker.toml").write_text(FARM_WORKER_CONFIG)
    watch = data / "watch"
    watch.mkdir()
    farm = Farm(data / "farm", port=0, workers=2, worker_args=["--config", str(data / "worker.toml")],
                manager_extra_config=FARM_MANAGER_CONFIG + f"\n[latest_image]\nwatch_dir = {json.dumps(str(watch))}\n")
    try:
        info = farm.start()
        farm._run_server_cli("set-password", "admin", "--password", FARM_PASSWORDS["admin"])
        info["admin_token"] = farm._run_server_cli("new-token", "admin")["token"]  # a password change ends tokens
        farm._run_server_cli("create-user", "ann", "--project", "default", "--password", FARM_PASSWORDS["ann"])
        farm.manager_cli("set-admin-password", "--password-stdin", stdin=FARM_PASSWORDS["manager"] + "\n")
        token = json.loads(farm.manager_cli("create-admin-token", "--label", "browser tests", "--json"))["token"]
        server = requests.Session()
        server.headers["Authorization"] = f"Bearer {info['admin_token']}"
        manager = requests.Session()
        manager.headers["Authorization"] = f"Bearer {token}"
        wait_until(lambda: sum(w["status"] == "awake" for w in
                               server.get(info["server_url"] + "/api/workers").json()["workers"]) == 2,
                   60, "the workers did not come up")
        yield SimpleNamespace(farm=farm, info=info, url=info["server_url"], manager_url=info["manager_url"],
                              server=server, manager=manager, watch_dir=watch)
    finally:
        farm.stop(timeout=10)


@pytest.fixture
def farm_context(browser, admin_farm):
    """A browser context on the farm's Server whose pages must log no errors; yields (context, errors)."""
    context = browser.new_context(base_url=admin_farm.url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(20_000)
    errors: list[str] = []

    def watch(tab):
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    context.on("page", watch)
    yield context
    context.close()
    unexpected = [e for e in errors if "401" not in e and "404" not in e and "403" not in e and "409" not in e]
    assert not unexpected, f"errors in the page: {unexpected}"


@pytest.fixture
def buffering_proxy():
    """start(upstream_url) -> the URL of an HTTP proxy that sends nothing of a response before all of it
    arrived, as some reverse proxies do: an event stream then never gets through."""
    import http.server
    import threading

    import requests

    servers = []

    def start(upstream: str) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}  # Host kept
                try:
                    r = requests.request(self.command, upstream + self.path, headers=headers, data=body,
                                         allow_redirects=False, timeout=30)
                    data = r.content  # the whole response first: buffering
                except requests.RequestException:
                    self.send_error(504)
                    return
                self.send_response(r.status_code)
                for k, v in r.raw.headers.items():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = forward

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
