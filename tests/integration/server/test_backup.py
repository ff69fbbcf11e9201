"""`flamenco-server backup` / `restore` on SQLite while the Server runs, and the pg_dump recipe of
docs/operations-server.md for PostgreSQL; a restored Server finds every job."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import uuid

import pytest
from tests.conftest import missing

from backend.db import open_database
from backend.server import admin, models
from backend.server.app import make_app
from backend.server.config import ServerConfig
from tests.integration.server.server_it_helpers import Client, sleep_job
from shared.serving import ServiceThread


def server_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backend.server.cli", *args], capture_output=True, text=True,
                          timeout=120)


@contextlib.contextmanager
def serving(db, data_dir, close: bool = True):
    """A Server on the database; the database closed afterwards, whatever happens."""
    app = make_app(ServerConfig.from_dict({}, data_dir=data_dir), db)
    try:
        with ServiceThread(app, threads=8) as service:
            yield service
    finally:
        if close:
            db.close()


def submit(client: Client, name: str) -> str:
    r = client.post("/api/jobs", json=sleep_job(name=name))
    assert r.status_code == 201, r.text
    return r.json()["id"]


def seed(db, data_dir) -> str:
    """An artist in project 'film' and its Manager 'm1', started; the artist's token."""
    models.bind(db)
    with db.connection_context():
        admin.create_project(db, "film")
        _, token = admin.create_user(db, "ann", "artist", projects=["film"])
        manager, mtoken = admin.create_manager(db, "m1")
        admin.link_manager(db, "m1", "film")
    with serving(db, data_dir, close=False) as service:
        r = Client(service.url, mtoken).post(f"/api/managers/{manager.id}/startup", json={
            "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": 1,
            "worker_task_types": ["sleep"], "variables": {}})
        assert r.status_code == 204, r.text
    return token


def test_a_backup_taken_while_jobs_arrive_restores_to_a_working_server(tmp_path):
    data, restored, backup = tmp_path / "live", tmp_path / "restored", tmp_path / "server-backup.sqlite"
    data.mkdir()
    db = open_database(f"sqlite:///{data}/server.sqlite")
    token = seed(db, data)
    during: list[str] = []
    with serving(db, data) as service:
        ann = Client(service.url, token)
        before = [submit(ann, f"before-{i}") for i in range(5)]
        stop = threading.Event()

        def submit_more():
            while not stop.is_set():
                during.append(submit(ann, f"during-{len(during)}"))

        writer = threading.Thread(target=submit_more)
        writer.start()
        try:
            out = server_cli("backup", "--data-dir", str(data), "--to", str(backup))
        finally:
            stop.set()
            writer.join(30)
        assert out.returncode == 0, out.stderr
        assert "backed up the database" in out.stdout and "files/" in out.stdout
        assert during, "jobs were being submitted while the backup ran"
        after = submit(ann, "after")

    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",), "one self-contained file"

    out = server_cli("restore", "--data-dir", str(restored), "--from", str(backup))
    assert out.returncode == 0, out.stderr
    shutil.copytree(data / "files", restored / "files")
    out = server_cli("restore", "--data-dir", str(restored), "--from", str(backup))
    assert out.returncode == 2 and "give --force" in out.stderr, "a restore never overwrites by surprise"

    with serving(open_database(f"sqlite:///{restored}/server.sqlite"), restored) as service:
        ann = Client(service.url, token)
        names = all_jobs(ann)
        assert set(before) <= set(names), "every job committed before the backup is in it"
        assert after not in names, "and nothing committed after it"
        got_during = [j for j in during if j in names]
        assert got_during == during[:len(got_during)], "a consistent snapshot: a prefix of the jobs in flight"
        for jid in before:
            assert len(ann.get(f"/api/jobs/{jid}/tasks").json()["tasks"]) == 4
        submit(ann, "on the restored server")


def test_backup_and_restore_refuse_what_they_cannot_do(tmp_path, postgres_url):
    out = server_cli("backup", "--database", postgres_url, "--to", str(tmp_path / "x.sqlite"))
    assert out.returncode == 2 and "pg_dump" in out.stderr
    out = server_cli("backup", "--data-dir", str(tmp_path / "none"), "--to", str(tmp_path / "x.sqlite"))
    assert out.returncode == 2 and "there is no database" in out.stderr
    not_ours = tmp_path / "other.sqlite"
    with sqlite3.connect(not_ours) as conn:
        conn.execute("CREATE TABLE t (x)")
    out = server_cli("restore", "--data-dir", str(tmp_path / "r"), "--from", str(not_ours))
    assert out.returncode == 2 and "not this service's database" in out.stderr
    assert not (tmp_path / "r" / "server.sqlite").exists()


def all_jobs(client: Client) -> set[str]:
    found: set[str] = set()
    while True:
        page = client.get("/api/jobs", params={"limit": 500, "offset": len(found)}).json()["jobs"]
        found.update(j["id"] for j in page)
        if len(page) < 500:
            return found


@pytest.fixture
def scratch_databases(postgres_url):
    """Two empty PostgreSQL databases (the recipe works on whole databases), dropped afterwards."""
    import psycopg2
    base, _, _ = postgres_url.rpartition("/")
    names = [f"flamenco_backup_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    conn = psycopg2.connect(postgres_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'CREATE DATABASE "{name}"')
    yield [f"{base}/{name}" for name in names]
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def test_the_pg_dump_recipe_backs_up_and_restores_a_postgresql_server(tmp_path, scratch_databases):
    for tool in ("pg_dump", "pg_restore"):
        if not shutil.which(tool):
            missing(tool)
    live_url, restored_url = scratch_databases
    dump = tmp_path / "server.dump"
    db = open_database(live_url)
    token = seed(db, tmp_path / "data")
    with serving(db, tmp_path / "data") as service:
        ann = Client(service.url, token)
        jobs = [submit(ann, f"job-{i}") for i in range(3)]
        # The recipe (docs/operations-server.md, "Backups"), while the Server serves:
        subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", live_url], check=True, timeout=120)
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored_url}", str(dump)],
                   check=True, timeout=120)
    with serving(open_database(restored_url), tmp_path / "data") as service:
        ann = Client(service.url, token)
        assert all_jobs(ann) == set(jobs)
        submit(ann, "after the restore")
