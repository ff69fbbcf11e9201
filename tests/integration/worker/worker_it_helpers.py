"""A real Manager (make_app on cheroot with a SQLite file) for the worker's integration tests,
restartable on the same port, plus a real worker daemon on a thread."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import peewee
import requests

from backend.db import SQLITE_PRAGMAS
from backend.manager import config as manager_config
from backend.manager.app import ManagerCore, make_app
from shared.serving import ServiceThread
from tests.integration.manager.manager_helpers import ADMIN_TOKEN, admin_request
from worker.config import WorkerConfig
from worker.daemon import Worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Manager:
    """An explicit port (not 0) makes cheroot set SO_REUSEADDR, so a restart can bind it again."""

    def __init__(self, data_dir, port=None, **cfg_kw):
        self.data_dir = data_dir
        self.cfg_kw = cfg_kw
        self.port = port or free_port()
        self.service = None

    def start(self) -> "Manager":
        cfg = manager_config.ManagerConfig(data_dir=self.data_dir, manager_url="http://manager.test",
                                           admin_token=ADMIN_TOKEN)
        for section in ("timeouts", "scheduling"):
            if section in self.cfg_kw:
                setattr(cfg, section, dataclasses.replace(getattr(cfg, section), **self.cfg_kw[section]))
        for k, v in self.cfg_kw.items():
            if k not in ("timeouts", "scheduling"):
                setattr(cfg, k, v)
        cfg.validate()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db = peewee.SqliteDatabase(str(self.data_dir / "flamenco-manager.sqlite"), pragmas=SQLITE_PRAGMAS,
                                        check_same_thread=False, timeout=10)
        self.core = ManagerCore(cfg, self.db)
        self.app = make_app(cfg, self.db, self.core)
        deadline = time.monotonic() + 30
        while True:  # the old listening socket of a restarted Manager may linger a moment
            try:
                self.service = ServiceThread(self.app, "127.0.0.1", self.port, threads=24, name="it-manager").start()
                break
            except OSError:
                if not self.port or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.port = self.service.port
        self.url = self.service.url
        return self

    def stop(self) -> None:
        if self.service:
            self.core.stop_loops()
            self.service.stop()
            self.db.close()
            self.service = None

    def add_tasks(self, *docs) -> None:
        r = self.admin("POST", "/api/admin/local-tasks", json={"tasks": list(docs)})
        assert r.status_code == 200, r.text

    def tasks(self) -> dict:
        r = self.admin("GET", "/api/admin/tasks")
        r.raise_for_status()
        return {t["_id"]: t for t in r.json()["tasks"]}

    def task(self, task_id) -> dict:
        return self.tasks()[task_id]

    def workers(self) -> list[dict]:
        r = self.admin("GET", "/api/admin/workers")
        r.raise_for_status()
        data = r.json()
        return data["workers"] if isinstance(data, dict) else data

    def worker_info(self, worker_id) -> dict:
        r = self.admin("GET", f"/api/admin/workers/{worker_id}")
        r.raise_for_status()
        return r.json()

    def admin(self, method, path, **kw):
        return admin_request(method, self.url + path, **kw)

    def task_log(self, job, task_id) -> str:
        r = self.admin("GET", f"/logfile/{job}/{task_id}")
        return r.text if r.status_code == 200 else ""


def task_doc(task_id, commands, job="job1", task_type="sleep", **extra):
    doc = {"_id": task_id, "job": job, "name": f"task {task_id}", "status": "queued", "task_type": task_type,
           "priority": 50, "job_priority": 50, "parents": [], "commands": commands}
    doc.update(extra)
    return doc


def worker_config(tmp_path, manager_url, name="w1", **kw) -> WorkerConfig:
    cfg = WorkerConfig(manager_url=manager_url, data_dir=str(tmp_path / name), nickname=name,
                       long_poll_seconds=5, may_i_run_interval_seconds=0.5, push_act_interval_seconds=0.5,
                       push_log_interval_seconds=0.5, no_task_retry_seconds=0.5, connection_retry_seconds=0.5,
                       asleep_poll_seconds=0.5, register_retry_seconds=0.5, queue_retry_seconds=0.3,
                       abort_grace_seconds=1, error_state_retry_seconds=0.5, http_timeout_seconds=5)
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


class WorkerThread:
    def __init__(self, cfg: WorkerConfig, **kw):
        self.worker = Worker(cfg, **kw)
        self.thread = threading.Thread(target=self._run, name=f"worker-{cfg.nickname}", daemon=True)
        self.exit_code = None

    def _run(self):
        self.exit_code = self.worker.run()

    def start(self) -> "WorkerThread":
        self.thread.start()
        return self

    def stop(self, timeout=20) -> int | None:
        self.worker.request_shutdown("test over")
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        return self.exit_code

    def kinds(self) -> list[str]:
        return [k for k, _ in self.worker.events]


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (requests.RequestException, KeyError) as ex:
            last = ex  # not there yet; an exception must not count as the condition met
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
