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
