"""A real Server on a cheroot port per test, over SQLite and PostgreSQL, with a small farm in it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from backend.server import admin
from backend.server.app import context_of, make_app
from shared.serving import ServiceThread
from tests.integration.server.server_it_helpers import Client
from tests.unit.server.server_testdb import DB_KINDS, make_config, server_database


@pytest.fixture(params=DB_KINDS)
def server(request, tmp_path):
    with server_database(request.param, tmp_path, request) as db:
        app = make_app(make_config(tmp_path), db)
        with ServiceThread(app, threads=8) as service:
            yield SimpleNamespace(url=service.url, app=app, ctx=context_of(app), db=db, kind=request.param)


@pytest.fixture
def studio(server):
    """A small studio on the Server, each with a Client: admin 'boss'; artist 'ann' in project 'film';
    artist 'bob' in 'ads'; manager 'm1' on 'film' (started); `anon` has no token."""
    db = server.db
    with db.connection_context():
        admin.create_project(db, "film")
        admin.create_project(db, "ads")
        _, boss = admin.create_user(db, "boss", "admin")
        _, ann = admin.create_user(db, "ann", "artist", password="ann-secret-pw", projects=["film"])
        _, bob = admin.create_user(db, "bob", "artist", projects=["ads"])
        manager, mtoken = admin.create_manager(db, "m1")
        admin.link_manager(db, "m1", "film")
    m = Client(server.url, mtoken)
    r = m.post(f"/api/managers/{manager.id}/startup", json={
        "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": 2,
        "worker_task_types": ["sleep", "blender-render", "file-management", "video-encoding", "debug"],
        "variables": {"blender": {"values": [{"value": "/usr/bin/blender", "platform": "linux"}]}}})
    assert r.status_code == 204, r.text
    return SimpleNamespace(server=server, url=server.url, admin=Client(server.url, boss), ann=Client(server.url, ann),
                           bob=Client(server.url, bob), manager=m, manager_id=manager.id, anon=Client(server.url))
