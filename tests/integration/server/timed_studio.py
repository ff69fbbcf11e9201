"""A real Server whose clock the test sets (retention and render-time reports are about dates), with a
small studio in it: projects film (ann) and ads (bob), admin boss, Manager m1 linked to both; task runs
reported by m1 with the times the test chooses."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import itertools
from types import SimpleNamespace

from backend.db import open_database
from backend.server import admin
from backend.server.app import context_of, make_app
from backend.server.database import Clock
from shared.serving import ServiceThread
from tests.integration.server.server_it_helpers import Client
from tests.unit.server.server_testdb import make_config, postgres_schema

TASK_TYPES = ["sleep", "blender-render", "file-management", "video-encoding", "debug"]
_ids = itertools.count()


class FakeTime:
    """The Server clock's source: naive UTC, moved by the test."""

    def __init__(self, start: dt.datetime):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, when: dt.datetime) -> None:
        self.now = when


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@contextlib.contextmanager
def _database(kind: str, tmp_path, request):
    """(database, its URL): SQLite in tmp_path, or a PostgreSQL schema of its own."""
    with contextlib.ExitStack() as stack:
        url = (f"sqlite:///{tmp_path}/server.sqlite" if kind == "sqlite"
               else stack.enter_context(postgres_schema(request.getfixturevalue("postgres_url"))))
        db = open_database(url)
        stack.callback(db.close)
        yield db, url


@contextlib.contextmanager
def timed_studio(kind: str, tmp_path, request, start: dt.datetime, **config):
    with _database(kind, tmp_path, request) as (db, url):
        time = FakeTime(start)
        app = make_app(make_config(tmp_path, **config), db, clock=Clock(time))
        with ServiceThread(app, threads=8) as service:
            with db.connection_context():
                for project in ("film", "ads"):
                    admin.create_project(db, project)
                _, boss = admin.create_user(db, "boss", "admin")
                _, ann = admin.create_user(db, "ann", "artist", projects=["film"])
                _, bob = admin.create_user(db, "bob", "artist", projects=["ads"])
                manager, mtoken = admin.create_manager(db, "m1")
                admin.link_manager(db, "m1", "film")
                admin.link_manager(db, "m1", "ads")
            m = Client(service.url, mtoken)
            r = m.post(f"/api/managers/{manager.id}/startup", json={
                "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": 2,
                "worker_task_types": TASK_TYPES})
            assert r.status_code == 204, r.text
            yield SimpleNamespace(url=service.url, app=app, ctx=context_of(app), db=db, database_url=url, kind=kind,
                                  time=time,
                                  data_dir=tmp_path / "data", admin=Client(service.url, boss),
                                  ann=Client(service.url, ann), bob=Client(service.url, bob), manager=m,
                                  manager_id=manager.id)


def mpath(studio, rest: str) -> str:
    return f"/api/managers/{studio.manager_id}/{rest}"


def submit(studio, who, project: str, frames: str = "1-2", **extra) -> tuple[dict, list[str]]:
    """A sleep job (one task per frame) and its task ids, as the Manager got them."""
    r = who.post("/api/jobs", json={"name": f"{project} job", "type": "sleep", "project": project,
                                    "settings": {"frames": frames, "chunk_size": 1, "time_in_seconds": 0}, **extra})
    assert r.status_code == 201, r.text
    job = r.json()
    tasks = studio.manager.get(mpath(studio, "depsgraph")).json()["depsgraph"]
    return job, sorted(t["_id"] for t in tasks if t["job"] == job["id"])


def report(studio, task_id: str, status: str, at: dt.datetime, worker: str) -> None:
    doc = {"_id": f"u{next(_ids)}", "task_id": task_id, "received_on_manager": at.isoformat() + "Z",
           "worker": worker, "task_status": status}
    r = studio.manager.post(mpath(studio, "task-update-batch"), json={"updates": [doc]})
    assert r.status_code == 200, r.text


def run(studio, task_id: str, worker: str, start: dt.datetime, end: dt.datetime | None,
        status: str = "completed") -> None:
    """One run of the task on `worker` from `start` to `end` (None: still running)."""
    report(studio, task_id, "active", start, worker)
    if end is not None:
        report(studio, task_id, status, end, worker)


def upload_output_and_log(studio, job_id: str, task_id: str, data: bytes) -> str:
    """An output of the task and its full log, as the Manager sends them; the output's SHA-256."""
    sha = hashlib.sha256(data).hexdigest()
    r = studio.manager.put(mpath(studio, f"jobs/{job_id}/outputs/frames/0001.png"), params={"task": task_id},
                           data=data, headers={"X-Flamenco-SHA256": sha})
    assert r.status_code == 204, r.text
    r = studio.manager.post(mpath(studio, f"tasks/{task_id}/log"), data=gzip.compress(b"the whole log\n"),
                            headers={"Content-Type": "application/gzip"})
    assert r.status_code == 204, r.text
    return sha
