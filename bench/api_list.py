"""List-jobs latency over HTTP with 10,000 jobs and 1,000,000 tasks in the database.

Target: p99 of `GET /api/jobs` <= 50 ms. The database is filled with bulk
inserts (the rows the Server would have written: task counts and progress on
each job row), then a real cheroot server answers requests from one client.
Prints p50/p95/p99 for a few list queries, as an admin and as an artist.

    .venv/bin/python bench/api_list.py [--jobs 10000] [--tasks-per-job 100] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.db import open_database  # noqa: E402
from backend.server import admin  # noqa: E402
from backend.server.app import make_app  # noqa: E402
from backend.server.config import ServerConfig  # noqa: E402
from backend.server.database import write  # noqa: E402
from backend.server.models import Job, Task, bulk_insert, stamp_value, task_id, utcnow  # noqa: E402
from shared.serving import ServiceThread  # noqa: E402

TARGET_MS = 50.0
STATUSES = ["completed"] * 6 + ["queued", "active", "paused", "failed"]


def fill(db, jobs: int, per_job: int, projects: list, manager, user) -> None:
    now = utcnow()
    stamp = stamp_value(now)
    command = json.dumps([{"name": "blender_render", "settings": {
        "blender_cmd": "{blender}", "filepath": "/shared/p/shot.blend", "render_output": "/r/p/shot/######",
        "format": "PNG", "frames": "1"}}], separators=(",", ":"))
    rnd = random.Random(1)
    job_cols = ("id", "name", "job_type", "status", "status_reason", "priority", "settings", "metadata", "project",
                "manager", "user", "created", "updated", "start_paused", "files_mode", "blocked", "task_counts",
                "tasks_total", "progress_points")
    t0 = time.perf_counter()
    with db.connection_context():
        for start in range(0, jobs, 500):
            with write(db):
                job_rows, task_rows = [], []
                for n in range(start, min(jobs, start + 500)):
                    jid = f"{n:012x}{rnd.getrandbits(80):020x}"
                    status = rnd.choice(STATUSES)
                    task_status = {"active": "queued", "failed": "failed"}.get(status, status)
                    done = per_job if status == "completed" else rnd.randrange(per_job)
                    counts = {"completed": done, task_status: per_job - done} if done < per_job else {"completed": done}
                    job_rows.append((jid, f"shot {n}", "blender-render", status, "", 50, json.dumps(
                        {"frames": f"1-{per_job}", "chunk_size": 1}), "{}", projects[n % len(projects)].id,
                        manager.id, user.id, stamp, stamp, False, "shared", False, json.dumps(counts), per_job,
                        100 * done))
                    for i in range(per_job):
                        st = "completed" if i < done else task_status
                        task_rows.append((task_id(jid, i), jid, f"blender-render-{i}", "blender-render", st, 50, 50,
                                          command, "[]", "[]", "", "", 0.0, 0, 0.0, "", stamp, stamp))
                bulk_insert(Job, job_cols, job_rows)
                bulk_insert(Task, ("id", "job", "name", "task_type", "status", "priority", "job_priority",
                                   "commands", "parents", "failed_by_workers", "activity", "log_tail", "progress",
                                   "current_command_idx", "command_progress", "needs", "created", "updated"), task_rows)
            print(f"\r  filled {min(jobs, start + 500)} jobs", end="", flush=True)
        db.execute_sql("ANALYZE")
    print(f"\r  filled {jobs} jobs / {jobs * per_job} tasks in {time.perf_counter() - t0:.1f} s")


def measure(session: requests.Session, url: str, token: str, n: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    session.get(url, headers=headers).raise_for_status()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(url, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return times


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--tasks-per-job", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database", help="a database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="flamenco-bench-") as tmp:
        db = open_database(args.database or f"sqlite:///{tmp}/server.sqlite")
        app = make_app(ServerConfig(data_dir=Path(tmp)), db)
        with db.connection_context():
            projects = [admin.create_project(db, f"project-{i}") for i in range(10)]
            boss, boss_token = admin.create_user(db, "boss", "admin")
            _, artist_token = admin.create_user(db, "artist", "artist", projects=["project-3", "project-7"])
            manager, _ = admin.create_manager(db, "m1")
        fill(db, args.jobs, args.tasks_per_job, projects, manager, boss)
        with db.connection_context():
            middle = Job.select(Job.id).order_by(Job.id).offset(args.jobs // 2).limit(1).scalar()
        results = []
        with ServiceThread(app, threads=4) as svc, requests.Session() as session:
            for label, path, token in [
                ("admin, newest 50", "/api/jobs", boss_token),
                ("admin, status=active,queued", "/api/jobs?status=active,queued", boss_token),
                ("admin, page 101 (offset 5000)", "/api/jobs?offset=5000", boss_token),
                ("admin, keyset page (before=)", f"/api/jobs?before={middle}", boss_token),
                ("artist (2 of 10 projects)", "/api/jobs", artist_token),
                ("artist, project + status", "/api/jobs?project=project-3&status=completed", artist_token),
            ]:
                times = measure(session, svc.url + path, token, args.requests)
                results.append((label, times))
        db.close()
    print(f"api_list: GET /api/jobs with {args.jobs} jobs / {args.jobs * args.tasks_per_job} tasks, "
          f"{args.requests} requests each (target p99 <= {TARGET_MS:.0f} ms)")
    worst = 0.0
    for label, times in results:
        p99 = pct(times, 99)
        worst = max(worst, p99)
        print(f"  {label:<32} p50 {statistics.median(times):6.1f} ms   p95 {pct(times, 95):6.1f} ms   "
              f"p99 {p99:6.1f} ms")
    print(f"  worst p99 {worst:.1f} ms -> {'OK' if worst <= TARGET_MS else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
