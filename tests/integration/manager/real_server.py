"""The real Server (backend/server) on cheroot in this process, with a user, a project and
a linked manager, for the Manager's upstream tests. Skips when the Server is not there."""

from __future__ import annotations

import socket

import pytest
import requests

from shared.serving import ServiceThread


class RealServer:
    def __init__(self, data_dir):
        try:
            from backend.server import admin
            from backend.server.app import make_app
            from backend.server.config import ServerConfig
            from backend.server.database import connect
        except ImportError as ex:  # the Server is built by another team
            pytest.skip(f"the Server is not available: {ex}")
        self.cfg = ServerConfig.from_dict({}, data_dir=data_dir, database=None)
        self.db = connect(self.cfg.data_dir, None)
        with self.db.connection_context():
            self.project = admin.create_project(self.db, "proj")
            self.user, self.user_token = admin.create_user(self.db, "artist", "artist", None, [self.project.id])
            manager, self.manager_token = admin.create_manager(self.db, "mgr")
            admin.link_manager(self.db, manager.id, self.project.id)
            self.manager_id = manager.id
        self.app = make_app(self.cfg, self.db)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.service = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.user_token}"

    def start(self) -> "RealServer":
        self.service = ServiceThread(self.app, "127.0.0.1", self.port, threads=16, name="real-server")
        self.service.server.reuse_port = True
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service:
            self.service.stop()
            self.service = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def submit_sleep(self, frames="1-3", seconds=0, **extra) -> dict:
        r = self.session.post(self.url + "/api/jobs", json={
            "name": "sleepy", "type": "sleep", "project": self.project.id,
            "settings": {"frames": frames, "chunk_size": 1, "time_in_seconds": seconds}, **extra}, timeout=10)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def job(self, job_id) -> dict:
        return self.session.get(self.url + f"/api/jobs/{job_id}", timeout=10).json()

    def tasks(self, job_id) -> list[dict]:
        return self.session.get(self.url + f"/api/jobs/{job_id}/tasks", timeout=10).json()["tasks"]

    def set_job_status(self, job_id, status) -> requests.Response:
        return self.session.post(self.url + f"/api/jobs/{job_id}/status", json={"status": status}, timeout=10)
