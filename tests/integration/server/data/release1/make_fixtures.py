"""Make the first-release database fixtures that test_migrations.py upgrades.

The first release of the Server is commit 0c2f2a7 (the first where
backend/server/models.py existed). This script runs THAT code, from
`git archive`, as a real Server on SQLite and on PostgreSQL, drives it over
HTTP the way a Manager and an artist would (jobs submitted, tasks claimed,
run, completed, failed, a job canceled, a full task log uploaded), writes
down what its API then answers (`expected.json`), and dumps the database:

    <kind>/dump.sql         SQLite: Python's iterdump(); PostgreSQL: pg_dump --inserts, unqualified
    <kind>/expected.json    jobs, tasks, job logs and task logs as the first release answered them
    <kind>/files/           the Server's files directory (the uploaded task log)

Run it from the repository root; it needs git and, for PostgreSQL, pg_dump:

    .venv/bin/python tests/integration/server/data/release1/make_fixtures.py \
        --postgres "$(bash scripts/postgres-for-tests)"

The checked-in files are what the tests use; this script only shows how they were made.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
FIRST_RELEASE = "0c2f2a7"
PG_SCHEMA = "flamenco_release1"


def populate(database: str, data_dir: Path) -> dict:
    """Inside the first release's code: a small farm's history, and what the API said about it."""
    import requests

    from backend.server import admin
    from backend.server.app import make_app
    from backend.server.config import ServerConfig
    from backend.server.database import connect
    from shared.serving import ServiceThread

    data_dir.mkdir(parents=True, exist_ok=True)
    db = connect(data_dir, database)
    with db.connection_context():
        admin.create_project(db, "film")
        _, boss = admin.create_user(db, "boss", "admin")
        _, ann = admin.create_user(db, "ann", "artist", password="ann-secret-pw", projects=["film"])
        manager, mtoken = admin.create_manager(db, "m1")
        admin.link_manager(db, "m1", "film")
    app = make_app(ServerConfig.from_dict({}, data_dir=data_dir, database=database), db)
    with ServiceThread(app, threads=4) as service:
        def call(token, method, path, ok=(200, 201, 204), **kw):
            r = requests.request(method, service.url + path, headers={"Authorization": f"Bearer {token}",
                                                                      **kw.pop("headers", {})}, timeout=30, **kw)
            assert r.status_code in ok, (method, path, r.status_code, r.text)
            return r

        mp = f"/api/managers/{manager.id}"
        call(mtoken, "POST", f"{mp}/startup", json={
            "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": 2,
            "worker_task_types": ["sleep", "blender-render", "file-management", "exec-command"], "variables": {}})

        def submit(name, frames, chunk):
            return call(ann, "POST", "/api/jobs", json={
                "name": name, "type": "sleep", "project": "film",
                "settings": {"frames": frames, "chunk_size": chunk, "time_in_seconds": 1}}).json()["id"]

        done, running, canceled = submit("done", "1-4", 1), submit("running", "1-6", 2), submit("canceled", "1-2", 1)
        tasks = {t["_id"]: t for t in call(mtoken, "GET", f"{mp}/depsgraph").json()["depsgraph"]}
        of = {jid: sorted(t for t, doc in tasks.items() if doc["job"] == jid) for jid in (done, running, canceled)}
        updates, n = [], 0

        def update(tid, status=None, worker="w1", **kw):
            nonlocal n
            n += 1
            updates.append({"_id": f"u{n}", "task_id": tid, "received_on_manager": "2026-11-28T12:00:00Z",
                            "worker": worker, **({"task_status": status} if status else {}), **kw})

        for i, tid in enumerate(of[done]):
            update(tid, "active", activity="sleeping")
            update(tid, "completed", task_progress_percentage=100,
                   log_tail=f"frame {i + 1}: slept 1 s\nTask {tid} done\n")
        first, second, third = of[running]
        update(first, "active")
        update(first, "completed", task_progress_percentage=100, log_tail="slept twice\n")
        update(second, "active", task_progress_percentage=50, log_tail="halfway\n", activity="sleeping 2/4")
        update(third, "active", worker="w2")
        update(third, "failed", worker="w2", log_tail="Error: something broke\n",
               failed_by_workers=[{"id": "w2", "identifier": "w2 (render-02)"}])
        call(mtoken, "POST", f"{mp}/task-update-batch", json={"updates": updates})
        call(ann, "POST", f"/api/jobs/{canceled}/status", json={"status": "cancel", "reason": "wrong camera"})
        call(boss, "POST", f"/api/jobs/{running}/priority", json={"priority": 70})
        call(mtoken, "POST", f"{mp}/task-update-batch", json={"updates": [
            {"_id": f"c{i}", "task_id": tid, "received_on_manager": "2026-11-28T12:01:00Z",
             "task_status": "canceled"} for i, tid in enumerate(of[canceled])]})
        full_log = "".join(f"line {i} of the full log of {of[done][0]}\n" for i in range(50)).encode()
        call(mtoken, "POST", f"{mp}/tasks/{of[done][0]}/log", data=gzip.compress(full_log),
             headers={"Content-Type": "application/gzip"})

        expected = {"jobs": {}, "task_logs": {of[done][0]: full_log.decode()}}
        for jid in (done, running, canceled):
            job = call(boss, "GET", f"/api/jobs/{jid}").json()
            task_docs = call(boss, "GET", f"/api/jobs/{jid}/tasks").json()["tasks"]
            expected["jobs"][jid] = {
                "name": job["name"], "status": job["status"], "priority": job["priority"],
                "tasks": {t["_id"] if "_id" in t else t["id"]: {
                    "status": t["status"],
                    "log_tail": call(boss, "GET", f"/api/tasks/{t.get('_id') or t['id']}").json().get("log_tail", "")}
                    for t in task_docs},
                "log": [{"who": e["who"], "what": e["what"], "reason": e["reason"]}
                        for e in call(boss, "GET", f"/api/jobs/{jid}/log").json()["entries"]],
            }
    db.close()
    return expected


def run_first_release(source: Path, database: str, data_dir: Path) -> dict:
    """Run `populate` in a fresh interpreter that imports the first release, not this checkout."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); from make_fixtures import populate; "
            f"from pathlib import Path; print(json.dumps(populate({database!r}, Path({str(data_dir)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=source, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def save(kind: str, dump: str, expected: dict, files: Path) -> None:
    target = HERE / kind
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / "dump.sql").write_text(dump)
    (target / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    shutil.copytree(files / "task-logs", target / "files" / "task-logs")


def pg_dump_unqualified(url: str) -> str:
    """The schema's dump with its name taken out, to be loaded into any search_path."""
    text = subprocess.run(["pg_dump", "--schema", PG_SCHEMA, "--inserts", "--no-owner", "--no-privileges",
                           "--no-comments", url], check=True, capture_output=True, text=True).stdout
    keep = []
    for line in text.splitlines():
        if line.startswith(("--", "SELECT pg_catalog.set_config('search_path'", f"CREATE SCHEMA {PG_SCHEMA}",
                            "\\restrict", "\\unrestrict")) or not line.strip():
            continue
        keep.append(re.sub(rf"\b{PG_SCHEMA}\.", "", line))
    return "\n".join(keep) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (scripts/postgres-for-tests prints one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        source = tmp_path / "release1"
        source.mkdir()
        archive = subprocess.run(["git", "archive", FIRST_RELEASE], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)

        data = tmp_path / "sqlite-data"
        expected = run_first_release(source, f"sqlite:///{data}/server.sqlite", data)
        with sqlite3.connect(data / "server.sqlite") as conn:
            dump = "PRAGMA foreign_keys=OFF;\n" + "\n".join(conn.iterdump()) + "\n"  # as sqlite3 .dump
        save("sqlite", dump, expected, data / "files")

        if args.postgres:
            import psycopg2
            admin = psycopg2.connect(args.postgres)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute(f'DROP SCHEMA IF EXISTS "{PG_SCHEMA}" CASCADE; CREATE SCHEMA "{PG_SCHEMA}"')
            sep = "&" if "?" in args.postgres else "?"
            url = f"{args.postgres}{sep}options={quote('-c search_path=' + PG_SCHEMA)}"
            data = tmp_path / "pg-data"
            expected = run_first_release(source, url, data)
            save("postgresql", pg_dump_unqualified(args.postgres), expected, data / "files")
            with admin.cursor() as cur:
                cur.execute(f'DROP SCHEMA "{PG_SCHEMA}" CASCADE')
            admin.close()
    print(f"fixtures written under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
