"""Helpers: a real Manager (make_app on cheroot, port 0) with a SQLite file in tmp_path,
and workers that speak the protocol over real HTTP."""

from __future__ import annotations

import dataclasses
import secrets
import socket

import peewee
import requests

from backend.db import SQLITE_PRAGMAS
from backend.manager import config as config_mod
from backend.manager.app import ManagerCore, make_app
from shared.serving import ServiceThread


ADMIN_TOKEN = "test-admin-token-0123456789"
"""The admin token of the test Managers' config: tools use the admin API with a bearer token."""
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def admin_request(method, url, **kw) -> requests.Response:
    """An admin API call as a tool makes it: the bearer token, and JSON for anything that changes something."""
    kw.setdefault("timeout", 10)
    headers = {**ADMIN, **kw.pop("headers", {})}
    if method.upper() not in ("GET", "HEAD") and "json" not in kw and "data" not in kw:
        kw["json"] = {}
    return requests.request(method, url, headers=headers, **kw)


def make_config(tmp_path, **kw) -> config_mod.ManagerConfig:
    cfg = config_mod.ManagerConfig(data_dir=tmp_path / "manager", manager_url="http://manager.test",
                                   admin_token=ADMIN_TOKEN)
    for section in ("timeouts", "failures", "scheduling", "upstream", "logs", "latest_image", "files"):
        if section in kw:
            setattr(cfg, section, dataclasses.replace(getattr(cfg, section), **kw.pop(section)))
    for k, v in kw.items():
        setattr(cfg, k, v)
    cfg.validate()
    return cfg


class RunningManager:
    def __init__(self, cfg, threads=32, client=None, busy_timeout_ms=None):
        self.config = cfg
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        pragmas = dict(SQLITE_PRAGMAS)
        if busy_timeout_ms is not None:
            pragmas["busy_timeout"] = busy_timeout_ms
        self.db = peewee.SqliteDatabase(str(cfg.data_dir / "flamenco-manager.sqlite"), pragmas=pragmas,
                                        check_same_thread=False, timeout=(busy_timeout_ms or 10000) / 1000)
        self.core = ManagerCore(cfg, self.db, client=client)
        self.app = make_app(cfg, self.db, self.core)
        self.service = ServiceThread(self.app, "127.0.0.1", 0, threads=threads, name="test-manager").start()
        self.url = self.service.url

    def stop(self):
        self.core.stop_loops()
        self.service.stop()

    def add_tasks(self, *docs) -> dict:
        r = self.admin("POST", "/api/admin/local-tasks", json={"tasks": list(docs)})
        assert r.status_code == 200, r.text
        return r.json()

    def admin(self, method, path, **kw):
        return admin_request(method, self.url + path, **kw)


class Worker:
    """A worker speaking the Flamenco 2 protocol with `requests`, like the original does."""

    def __init__(self, url, task_types=("sleep", "blender-render"), platform="linux", nickname=None):
        self.url = url
        self.session = requests.Session()
        self.secret = secrets.token_hex(32)
        self.task_types = list(task_types)
        self.platform = platform
        self.nickname = nickname or f"w-{secrets.token_hex(3)}"
        self.id = None

    def register(self, headers=None):
        r = self.session.post(self.url + "/register-worker", json={
            "secret": self.secret, "platform": self.platform, "supported_task_types": self.task_types,
            "nickname": self.nickname}, headers=headers or {}, timeout=10)
        assert r.status_code == 200, r.text
        self.id = r.json()["_id"]
        self.session.auth = (self.id, self.secret)
        return self

    def post(self, path, **kw):
        kw.setdefault("timeout", 40)
        return self.session.post(self.url + path, **kw)

    def get(self, path, **kw):
        kw.setdefault("timeout", 10)
        return self.session.get(self.url + path, **kw)

    def sign_on(self, **extra):
        r = self.post("/sign-on", json={"supported_task_types": self.task_types, "nickname": self.nickname, **extra})
        assert r.status_code == 204, r.text
        return self

    def fetch(self, long_poll=None):
        headers = {"X-Flamenco-Long-Poll": str(long_poll)} if long_poll is not None else {}
        return self.post("/task", headers=headers)

    def update(self, task_id, **fields):
        return self.post(f"/tasks/{task_id}/update", json=fields)


def task_doc(task_id, job="job1", task_type="sleep", priority=50, job_priority=50, parents=(), **extra):
    doc = {"_id": task_id, "job": job, "name": f"task {task_id}", "status": "queued", "task_type": task_type,
           "priority": priority, "job_priority": job_priority, "parents": list(parents),
           "commands": [{"name": "echo", "settings": {"message": "hello"}},
                        {"name": "sleep", "settings": {"time_in_seconds": 0}}]}
    doc.update(extra)
    return doc



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
