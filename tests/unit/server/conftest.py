"""Fixtures for the Server's unit tests: a real database (SQLite and PostgreSQL), a context on it, and
that context seeded with an admin, an artist and a manager."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from backend.server import admin, manager_sync
from backend.server.app import make_context
from tests.unit.server.server_testdb import DB_KINDS, make_config, notification, server_database


@pytest.fixture(params=DB_KINDS)
def db(request, tmp_path):
    with server_database(request.param, tmp_path, request) as database:
        yield database


@pytest.fixture
def ctx(db, tmp_path):
    context = make_context(make_config(tmp_path), db)
    with db.connection_context():
        yield context


@pytest.fixture
def seeded_server(ctx):
    """An admin, an artist in project 'film', a manager 'm1' linked to it that supports every task type."""
    db = ctx.db
    project = admin.create_project(db, "film")
    boss, boss_token = admin.create_user(db, "boss", "admin")
    artist, artist_token = admin.create_user(db, "ann", "artist", projects=["film"])
    manager, manager_token = admin.create_manager(db, "m1")
    admin.link_manager(db, "m1", "film")
    manager_sync.announce(ctx, manager, notification(), startup=True)
    manager = type(manager).get_by_id(manager.id)
    return SimpleNamespace(ctx=ctx, project=project, admin=boss, admin_token=boss_token, artist=artist,
                           artist_token=artist_token, manager=manager, manager_token=manager_token)


@pytest.fixture(scope="module")
def jt(request):
    """The job type a test module describes in its CASE (a compile_helpers.JobTypeCase)."""
    return request.module.CASE.job_type()
