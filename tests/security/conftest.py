"""Fixtures of the security suite: a Server with two projects (security_helpers.Farm), a Manager with an
admin token and two workers, one of which holds a task. The auth matrices record their counts here and
the terminal summary prints them."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.integration.manager.conftest import manager_factory  # noqa: F401 (a fixture)
from tests.integration.manager.manager_helpers import Worker
from tests.security.security_helpers import METRICS_TOKEN, MATRIX_COUNTS, build_farm, start_server
from tests.unit.server.server_testdb import DB_KINDS, server_database


@pytest.fixture(params=DB_KINDS)
def farm(request, tmp_path):
    """The Server's world (security_helpers.Farm), on SQLite and on PostgreSQL (where one is available)."""
    with server_database(request.param, tmp_path, request) as db:
        service, app, db = start_server(tmp_path, db)
        try:
            yield build_farm(service, app, db, request.param)
        finally:
            service.stop()


@pytest.fixture
def server_factory(tmp_path):
    """(service, app, db) of a Server with config overrides; stopped at the end."""
    started = []

    def start(sub="s", **config):
        path = tmp_path / sub
        path.mkdir()
        service, app, db = start_server(path, **config)
        started.append((service, db))
        return service, app, db

    yield start
    for service, db in started:
        service.stop()
        db.close()


@pytest.fixture
def manager(manager_factory):
    """A Manager with an admin token and a metrics token; workers w1 (holding task 'job1-000000' of job 'job1') and w2."""
    token = secrets.token_hex(16)
    m = manager_factory(admin_token=token, metrics_token=METRICS_TOKEN)
    m.admin_token = token
    task = {"_id": "job1-000000", "job": "job1", "name": "task one", "status": "queued", "task_type": "sleep",
            "priority": 50, "job_priority": 50, "parents": [], "job_files_mode": "upload",
            "commands": [{"name": "sleep", "settings": {"time_in_seconds": 0}}]}
    r = requests.post(m.url + "/api/admin/local-tasks", json={"tasks": [task]}, timeout=10,
                      headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    m.w1 = Worker(m.url, nickname="w1").register().sign_on()
    m.w2 = Worker(m.url, nickname="w2").register().sign_on()
    got = m.w1.session.post(m.url + "/task", timeout=10)
    assert got.status_code == 200 and got.json()["_id"] == "job1-000000", got.text
    m.task_id, m.job_id = "job1-000000", "job1"
    return m


def pytest_terminal_summary(terminalreporter):
    if MATRIX_COUNTS:
        terminalreporter.section("auth matrix")
        for service, counts in sorted(MATRIX_COUNTS.items()):
            terminalreporter.write_line(f"{service}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
