"""Fixtures for the Server's unit tests: a real database (SQLite and PostgreSQL) and a small farm."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_testdb import DB_KINDS, make_config, notification, server_database  # noqa: E402

from backend.server import admin, manager_sync  # noqa: E402
from backend.server.app import make_context  # noqa: E402


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
def farm(ctx):
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
