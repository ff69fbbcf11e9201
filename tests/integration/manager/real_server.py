"""The real Server (backend/server) on cheroot in this process, with a user, a project and
a linked manager, for the Manager's upstream tests. Skips when the Server is not there.

`stop()` then `start()` is a Server restart: the old cheroot server and its database
handle are gone, a new app is built on the same SQLite file and listens on the same port.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import sqlite3

import pytest
import requests

from shared.serving import ServiceThread

SELECT_INTERVAL = 0.02
"""cheroot's select() timeout; its stop() waits for one, 0.5 s by default, in every teardown."""


class RealServer:
    def __init__(self, data_dir):
        try:
            from backend.server import admin
            from backend.server.app import make_app
            from backend.server.config import ServerConfig
            from backend.server.database import connect
        except ImportError as ex:  # the Server is built by another team
            pytest.skip(f"the Server is not available: {ex}")
        self._connect, self._make_app = connect, make_app
        self.cfg = ServerConfig.from_dict({}, data_dir=data_dir, database=None)
        self.db = connect(self.cfg.data_dir, None)
        self.db_path = self.cfg.data_dir / "server.sqlite"
        with self.db.connection_context():
            self.project = admin.create_project(self.db, "proj")
            self.user, self.user_token = admin.create_user(self.db, "artist", "artist", None, [self.project.id])
            manager, self.manager_token = admin.create_manager(self.db, "mgr")
            admin.link_manager(self.db, manager.id, self.project.id)
            self.manager_id = manager.id
        # cheroot sets SO_REUSEADDR only for an explicit port: pick it now, so a
        # restart can listen on it again while old connections are in TIME_WAIT.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.service = None
        self.app = None
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request the Server got, in order."""
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.user_token}"

    def start(self) -> "RealServer":
        if self.service is None:
            if self.db is None:
                self.db = self._connect(self.cfg.data_dir, None)
            app = self._make_app(self.cfg, self.db)

            def counting(environ, start_response):
                self.requests.append((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
                return app(environ, start_response)

            counting.config = app.config  # what ServiceThread.stop reads (it ends held requests)
            self.app = app
            self.service = ServiceThread(counting, "127.0.0.1", self.port, threads=16, name="real-server")
            self.service.server.expiration_interval = SELECT_INTERVAL
            self.service.start()
        return self

    def stop(self) -> None:
        if self.service:
            self.service.stop()
            self.service = None
            self.db.close()
            self.db = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- as a user, over HTTP ---------------------------------------------------

    def call(self, method, path, **kw) -> requests.Response:
        kw.setdefault("timeout", 10)
        return self.session.request(method, self.url + path, **kw)

    def put_file(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        r = self.call("PUT", f"/api/files/{sha}", data=data)
        assert r.status_code in (200, 201), r.text
        return sha

    def submit(self, job_type, settings, **extra) -> dict:
        r = self.call("POST", "/api/jobs", json={"name": f"{job_type} job", "type": job_type,
                                                 "project": self.project.id, "settings": settings, **extra})
        assert r.status_code in (200, 201), r.text
        return r.json()

    def submit_sleep(self, frames="1-3", seconds=0, **extra) -> dict:
        return self.submit("sleep", {"frames": frames, "chunk_size": 1, "time_in_seconds": seconds}, **extra)

    def job(self, job_id) -> dict:
        return self.call("GET", f"/api/jobs/{job_id}").json()

    def tasks(self, job_id) -> list[dict]:
        return self.call("GET", f"/api/jobs/{job_id}/tasks").json()["tasks"]

    def task(self, task_id) -> dict:
        return self.call("GET", f"/api/tasks/{task_id}").json()

    def set_job_status(self, job_id, status) -> requests.Response:
        return self.call("POST", f"/api/jobs/{job_id}/status", json={"status": status})

    def manager(self) -> dict:
        return next(m for m in self.call("GET", "/api/managers").json()["managers"] if m["id"] == self.manager_id)

    # --- its own records --------------------------------------------------------

    def applied_batches(self) -> list[int]:
        """How many update ids each task-update batch applied, oldest first: a batch stamps
        the ids it applied with one time, and an id it only acknowledged gets no new row."""
        from backend.server.models import AppliedUpdate
        table = AppliedUpdate._meta.table_name
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            return [n for _, n in conn.execute(
                f"SELECT applied, COUNT(*) FROM {table} GROUP BY applied ORDER BY applied")]

    @contextlib.contextmanager
    def write_locked(self):
        """Another writer holds the Server's database (a backup, a long job submission):
        the Server's writes wait for it, up to its busy timeout."""
        conn = sqlite3.connect(self.db_path, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        finally:
            conn.close()
