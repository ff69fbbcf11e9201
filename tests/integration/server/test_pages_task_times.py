"""When each task's latest run started and finished (the job page's timeline); adding those columns
to an older database is migration step 2 (test_migrations.py)."""

from __future__ import annotations

import datetime as dt
import time

from shared.timefmt import parse_iso_utc as parse_iso
from tests.integration.server.server_it_helpers import sleep_job


def P(studio, rest: str) -> str:
    return f"/api/managers/{studio.manager_id}/{rest}"


def report(studio, uid, task_id, status, at=None, **kw):
    at = at or dt.datetime.now(dt.timezone.utc)
    doc = {"_id": uid, "task_id": task_id, "received_on_manager": at.isoformat().replace("+00:00", "Z"),
           "worker": "w1", "task_status": status, **kw}
    r = studio.manager.post(P(studio, "task-update-batch"), json={"updates": [doc]})
    assert r.status_code == 200, r.text


def times(studio, task_id):
    t = studio.ann.get(f"/api/tasks/{task_id}").json()
    return (parse_iso(t["started"]) if t["started"] else None, parse_iso(t["finished"]) if t["finished"] else None)


def test_tasks_carry_the_start_and_end_of_their_latest_run(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    ids = sorted(t["_id"] for t in studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"])
    listed = studio.ann.get(f"/api/jobs/{job['id']}/tasks").json()["tasks"]
    assert {(t["started"], t["finished"]) for t in listed} == {(None, None)}

    utc = dt.timezone.utc
    created = parse_iso(job["created"]).replace(tzinfo=utc)
    time.sleep(0.4)
    report(studio, "a1", ids[0], "active", created + dt.timedelta(seconds=0.1), task_progress_percentage=10)
    started, finished = times(studio, ids[0])
    assert finished is None
    assert started == (created + dt.timedelta(seconds=0.1)).replace(tzinfo=None), \
        "the time the Manager received it, not when the batch arrived"
    report(studio, "a2", ids[0], "active", task_progress_percentage=50)
    assert times(studio, ids[0])[0] == started, "progress on a running task keeps its start"
    report(studio, "a3", ids[0], "completed", created + dt.timedelta(seconds=0.3))
    assert times(studio, ids[0]) == (started, (created + dt.timedelta(seconds=0.3)).replace(tzinfo=None))

    now = dt.datetime.now(utc)
    report(studio, "d1", ids[3], "active", now - dt.timedelta(days=1))
    assert times(studio, ids[3])[0] >= created.replace(tzinfo=None), "a Manager clock behind: not before creation"
    report(studio, "b1", ids[1], "active", now + dt.timedelta(hours=1))
    started1, _ = times(studio, ids[1])
    assert started1 <= dt.datetime.now(utc).replace(tzinfo=None), "a Manager clock ahead is capped at now"
    report(studio, "b2", ids[1], "failed", dt.datetime(2000, 1, 1, tzinfo=utc))
    assert times(studio, ids[1]) == (started1, started1), "and an end before the start is the start"

    report(studio, "c1", ids[2], "completed", now - dt.timedelta(seconds=1))
    started2, finished2 = times(studio, ids[2])
    assert started2 is None and finished2 is not None, "finished without being seen running"

    doc = studio.ann.get(f"/api/jobs/{job['id']}/tasks").json()["tasks"][0]
    assert doc["started"].endswith("Z") and doc["finished"].endswith("Z")
    report(studio, "d2", ids[3], "canceled")  # the failure failed the job; the last running task stops
    assert studio.ann.get(f"/api/jobs/{job['id']}").json()["status"] == "failed"
    r = studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "requeue"})
    assert r.status_code == 200, r.text
    assert times(studio, ids[1]) == (None, None), "a requeue clears the run"
    report(studio, "b3", ids[1], "active")
    assert times(studio, ids[1])[0] > started1, "a new run, a new start"


def test_a_start_overtaken_by_a_cancel_still_counts(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    ids = sorted(t["_id"] for t in studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"])
    assert studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "cancel"}).status_code == 200
    report(studio, "x1", ids[0], "active")  # the worker started it before it heard of the cancel
    task = studio.ann.get(f"/api/tasks/{ids[0]}").json()
    assert task["status"] == "cancel-requested" and task["started"] and not task["finished"]
    report(studio, "x2", ids[0], "completed")
    started, finished = times(studio, ids[0])
    assert started <= finished
    report(studio, "x3", ids[1], "canceled")
    assert times(studio, ids[1])[0] is None, "never ran"
