"""Fixtures of the security suite: a Server with two projects (security_helpers.Farm), a Manager with an
admin token and two workers, one of which holds a task. The auth matrices record their counts here and
the terminal summary prints them."""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import peewee
import pytest
import requests

from security_helpers import build_farm, start_server

MATRIX_COUNTS: dict[str, dict[str, int]] = {}


@pytest.fixture
def farm(tmp_path):
    service, app, db = start_server(tmp_path)
    try:
        yield build_farm(service, app, db)
    finally:
        service.stop()
        db.close()


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


class ManagerWorker:
    """A worker speaking the Flamenco 2 protocol with HTTP Basic credentials."""

    def __init__(self, url: str, nickname: str):
        self.url, self.secret = url, secrets.token_hex(32)
        self.session = requests.Session()
        r = self.session.post(url + "/register-worker", json={
            "secret": self.secret, "platform": "linux", "supported_task_types": ["sleep", "blender-render"],
            "nickname": nickname}, timeout=10)
        assert r.status_code == 200, r.text
        self.id = r.json()["_id"]
        self.session.auth = (self.id, self.secret)
        assert self.session.post(url + "/sign-on", json={"supported_task_types": ["sleep", "blender-render"],
                                                         "nickname": nickname}, timeout=10).status_code == 204


def start_manager(path, **config):
    """A real Manager (make_app on cheroot, SQLite in `path`), as tests/integration/manager does."""
    from backend.db import SQLITE_PRAGMAS
    from backend.manager import config as config_mod
    from backend.manager.app import ManagerCore, make_app
    from shared.serving import ServiceThread

    cfg = config_mod.ManagerConfig(data_dir=path / "manager", manager_url="http://manager.test")
    for key, value in config.items():
        setattr(cfg, key, value)
    cfg.validate()
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db = peewee.SqliteDatabase(str(cfg.data_dir / "manager.sqlite"), pragmas=dict(SQLITE_PRAGMAS),
                               check_same_thread=False, timeout=10)
    core = ManagerCore(cfg, db)
    service = ServiceThread(make_app(cfg, db, core), "127.0.0.1", 0, threads=16, name="security-manager").start()
    return SimpleNamespace(url=service.url, core=core, service=service, config=cfg,
                           stop=lambda: (core.stop_loops(), service.stop()))


@pytest.fixture
def manager_factory(tmp_path):
    started = []

    def start(sub="m", **config):
        path = tmp_path / sub
        path.mkdir()
        m = start_manager(path, **config)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


@pytest.fixture
def manager(manager_factory):
    """A Manager with an admin token; workers w1 (holding task 'job1-000000' of job 'job1') and w2."""
    token = secrets.token_hex(16)
    m = manager_factory(admin_token=token)
    m.admin = requests.Session()
    m.admin.headers["Authorization"] = f"Bearer {token}"
    m.admin_token = token
    task = {"_id": "job1-000000", "job": "job1", "name": "task one", "status": "queued", "task_type": "sleep",
            "priority": 50, "job_priority": 50, "parents": [], "job_files_mode": "upload",
            "commands": [{"name": "sleep", "settings": {"time_in_seconds": 0}}]}
    r = m.admin.post(m.url + "/api/admin/local-tasks", json={"tasks": [task]}, timeout=10)
    assert r.status_code == 200, r.text
    m.w1, m.w2 = ManagerWorker(m.url, "w1"), ManagerWorker(m.url, "w2")
    got = m.w1.session.post(m.url + "/task", timeout=10)
    assert got.status_code == 200 and got.json()["_id"] == "job1-000000", got.text
    m.task_id, m.job_id = "job1-000000", "job1"
    return m


def pytest_terminal_summary(terminalreporter):
    if MATRIX_COUNTS:
        terminalreporter.section("auth matrix")
        for service, counts in sorted(MATRIX_COUNTS.items()):
            terminalreporter.write_line(f"{service}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
