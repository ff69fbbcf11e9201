"""What the pages of issue 13 call on the Server, over real HTTP on SQLite and PostgreSQL: tasks canceled and
requeued one by one or several at once, every run of a task, jobs acted on in bulk, searched, sorted and
archived, worker actions recorded for their Manager, the farm overview, the live-update stream, and who may
do what (an artist reaches no admin action, by token or by cookie)."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
import re
import threading
import time

import pytest
import requests

from backend.server import admin
from tests.integration.server.server_it_helpers import Client, sleep_job

_ids = itertools.count()


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def report(studio, *updates, **extra) -> dict:
    """A task-update-batch from the Manager: (task id, status or None, progress%)."""
    docs = [{"_id": f"u{next(_ids)}", "task_id": tid, "received_on_manager": now_iso(), "worker": "w1",
             "task_progress_percentage": pct, **({"task_status": st} if st else {})} for tid, st, pct in updates]
    r = studio.manager.post(f"/api/managers/{studio.manager_id}/task-update-batch", json={"updates": docs, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def claim(studio) -> list[str]:
    r = studio.manager.get(f"/api/managers/{studio.manager_id}/depsgraph")
    assert r.status_code == 200, r.text
    return sorted(t["_id"] for t in r.json()["depsgraph"])


def submit(client, frames="1-4", name="shot", project="film") -> dict:
    r = client.post("/api/jobs", json=sleep_job(name=name, project=project,
                                                settings={"frames": frames, "chunk_size": 1}))
    assert r.status_code == 201, r.text
    return r.json()


def workers_reported(studio, *workers) -> None:
    r = studio.manager.post(f"/api/managers/{studio.manager_id}/workers", json={"complete": True, "workers": [
        {"_id": wid, "nickname": f"node-{wid}", "status": "awake", "platform": "linux"} for wid in workers]})
    assert r.status_code == 204, r.text


def test_a_task_canceled_on_its_own_stays_canceled_and_the_job_settles(studio):
    job = submit(studio.ann, "1-3")
    t1, t2, t3 = claim(studio)
    report(studio, (t1, "active", 10))
    r = studio.ann.post(f"/api/tasks/{t1}/cancel", json={"reason": "bad frame"})
    assert r.status_code == 200 and r.json() == {"canceled": 1}
    assert studio.ann.get(f"/api/tasks/{t1}").json()["status"] == "cancel-requested"
    answer = report(studio)
    assert answer["cancel_task_ids"] == [t1], "its Manager is told to stop it"
    report(studio, (t1, "canceled", 10))
    task = studio.ann.get(f"/api/tasks/{t1}").json()
    assert task["status"] == "canceled" and task["canceled_by"] == "user ann", "not back to the queue"
    assert studio.ann.get(f"/api/jobs/{job['id']}").json()["status"] == "active", "the job goes on"
    report(studio, (t2, "active", 0), (t2, "completed", 100), (t3, "active", 0), (t3, "completed", 100))
    done = studio.ann.get(f"/api/jobs/{job['id']}").json()
    assert done["status"] == "canceled" and "1 task canceled" in done["status_reason"]
    assert studio.ann.post(f"/api/tasks/{t2}/cancel").json()["code"] == "invalid_transition"

    r = studio.ann.post(f"/api/jobs/{job['id']}/tasks/actions", json={"action": "requeue", "tasks": [t1, t2]})
    assert r.status_code == 200 and r.json() == {"requeued": 2}
    again = studio.ann.get(f"/api/jobs/{job['id']}").json()
    assert again["status"] == "queued" and again["task_counts"] == {"completed": 1, "queued": 2}
    assert studio.ann.get(f"/api/tasks/{t1}").json()["canceled_by"] is None


def test_several_tasks_canceled_at_once_and_what_cannot_be(studio):
    job = submit(studio.ann, "1-4")
    tasks = claim(studio)
    path = f"/api/jobs/{job['id']}/tasks/actions"
    r = studio.ann.post(path, json={"action": "cancel", "tasks": tasks[:2]})
    assert r.json() == {"canceled": 2}
    assert sorted(report(studio)["cancel_task_ids"]) == tasks[:2]
    assert studio.ann.post(path, json={"action": "explode", "tasks": tasks}).status_code == 400
    assert studio.ann.post(path, json={"action": "cancel", "tasks": []}).status_code == 400
    assert studio.ann.post(path, json={"action": "requeue", "tasks": tasks[2:]}).json()["code"] == \
        "nothing_to_requeue", "waiting tasks need no requeue"
    assert studio.bob.post(path, json={"action": "cancel", "tasks": tasks}).status_code == 404, "not bob's project"


def test_every_run_of_a_task_is_kept(studio):
    job = submit(studio.ann, "1")
    (tid,) = claim(studio)
    report(studio, (tid, "active", 20))
    report(studio, (tid, "soft-failed", 20))
    r = studio.manager.post(f"/api/managers/{studio.manager_id}/task-update-batch", json={"updates": [
        {"_id": f"u{next(_ids)}", "task_id": tid, "received_on_manager": now_iso(), "worker": "w2",
         "task_status": "active", "task_progress_percentage": 0},
        {"_id": f"u{next(_ids)}", "task_id": tid, "received_on_manager": now_iso(), "worker": "w2",
         "task_status": "completed", "task_progress_percentage": 100, "log_tail": "all done"}]})
    assert r.status_code == 200
    runs = studio.ann.get(f"/api/jobs/{job['id']}/runs").json()
    assert [(x["worker"], x["status"]) for x in runs["runs"]] == [("w1", "soft-failed"), ("w2", "completed")]
    assert runs["runs"][0]["task_name"] == studio.ann.get(f"/api/tasks/{tid}").json()["name"]
    task = studio.ann.get(f"/api/tasks/{tid}").json()
    assert [x["status"] for x in task["runs"]] == ["soft-failed", "completed"] and task["runs"][1]["log_tail"] == "all done"
    assert task["job_name"] == job["name"] and task["commands"], "the task page shows its commands"


def test_jobs_in_bulk_searched_and_sorted(studio):
    a = submit(studio.ann, name="forest shot", frames="1")
    b = submit(studio.ann, name="city shot", frames="1")
    c = submit(studio.admin, name="forest pan", frames="1")
    r = studio.ann.post("/api/jobs/actions", json={"action": "priority", "priority": 80, "jobs": [a["id"], b["id"]]})
    assert r.status_code == 200 and all(x["ok"] for x in r.json()["results"].values())
    assert r.json()["results"][a["id"]]["job"]["priority"] == 80
    names = lambda resp: [j["name"] for j in resp.json()["jobs"]]  # noqa: E731
    assert names(studio.ann.get("/api/jobs", params={"q": "FOREST"})) == ["forest pan", "forest shot"]
    assert names(studio.ann.get("/api/jobs", params={"q": "boss"})) == ["forest pan"], "by submitter too"
    assert names(studio.ann.get("/api/jobs", params={"sort": "name"})) == ["city shot", "forest pan", "forest shot"]
    assert names(studio.ann.get("/api/jobs", params={"sort": "-priority"}))[-1] == "forest pan"
    assert studio.ann.get("/api/jobs", params={"sort": "colour"}).status_code == 400

    r = studio.ann.post("/api/jobs/actions", json={"action": "cancel", "jobs": [a["id"], b["id"], "nope"]})
    results = r.json()["results"]
    assert results[a["id"]]["job"]["status"] == "canceled" and results["nope"] == {
        "ok": False, "code": "not_found", "message": "no job 'nope'", "status": 404}
    r = studio.ann.post("/api/jobs/actions", json={"action": "delete", "jobs": [a["id"], c["id"]]})
    assert r.json()["results"][a["id"]]["ok"] and r.json()["results"][c["id"]]["code"] == "job_not_finished"
    assert studio.ann.get(f"/api/jobs/{a['id']}").status_code == 404
    assert studio.ann.post("/api/jobs/actions", json={"action": "archive", "jobs": [b["id"]]}).status_code == 403


def test_archiving_keeps_a_record_and_removes_the_job(studio):
    job = submit(studio.ann, "1-2")
    t1, t2 = claim(studio)
    report(studio, (t1, "active", 0), (t1, "completed", 100), (t2, "active", 0), (t2, "completed", 100))
    assert studio.ann.post(f"/api/jobs/{job['id']}/archive").status_code == 403, "archiving is for admins"
    r = studio.admin.post(f"/api/jobs/{job['id']}/archive")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "shot" and r.json()["status"] == "completed" and r.json()["size"] > 0
    assert studio.ann.get(f"/api/jobs/{job['id']}").status_code == 404, "its rows are gone"
    assert studio.ann.get(f"/api/tasks/{t1}").status_code == 404
    listed = studio.ann.get("/api/archives").json()
    assert [a["id"] for a in listed["archives"]] == [job["id"]]
    assert studio.bob.get("/api/archives").json()["archives"] == [], "another project's archive"
    assert studio.bob.get(f"/api/archives/{job['id']}").status_code == 404
    got = studio.ann.get(f"/api/archives/{job['id']}")
    assert got.status_code == 200 and "attachment" in got.headers["Content-Disposition"]
    record = json.loads(gzip.decompress(got.content))
    assert record["job"]["id"] == job["id"] and [t["id"] for t in record["tasks"]] == [t1, t2]
    assert [r["status"] for r in record["tasks"][0]["runs"]] == ["completed"]
    assert any("submitted" in e["what"] for e in record["log"])
    other = submit(studio.ann, "1")
    assert studio.admin.post(f"/api/jobs/{other['id']}/archive").json()["code"] == "job_not_finished"


def test_worker_actions_are_recorded_for_the_manager_and_confirmed_by_it(studio):
    workers_reported(studio, "w1", "w2")
    base = f"/api/workers/{studio.manager_id}"
    r = studio.admin.post(f"{base}/w1/actions", json={"action": "sleep", "lazy": True})
    assert r.status_code == 202 and r.json()["status"] == "requested"
    sleep_id = r.json()["id"]
    tags_id = studio.admin.post(f"{base}/w2/actions", json={"action": "set-tags", "tags": ["gpu", " fast "]}).json()["id"]
    assert studio.admin.post(f"{base}/w1/actions", json={"action": "fly"}).status_code == 400
    assert studio.admin.post(f"{base}/w1/actions", json={"action": "sleep", "lazy": "yes"}).status_code == 400
    assert studio.admin.post(f"{base}/nobody/actions", json={"action": "wake"}).status_code == 404
    schedule = {"schedule_active": True, "days_of_week": "mo tu", "time_start": "22:00", "time_end": "06:00"}
    assert studio.admin.post(f"{base}/w1/actions", json={"action": "sleep-schedule", "schedule": {
        **schedule, "time_start": "25:00"}}).status_code == 400

    listed = {w["id"]: w for w in studio.admin.get("/api/workers").json()["workers"]}
    assert [a["status"] for a in listed["w1"]["actions"]] == ["requested"] and listed["w1"]["may_act"]
    answer = report(studio)
    assert [(a["id"], a["action"]) for a in answer["worker_actions"]] == [(sleep_id, "sleep"), (tags_id, "set-tags")]
    assert answer["worker_actions"][0]["lazy"] is True and answer["worker_actions"][1]["tags"] == ["fast", "gpu"]
    assert report(studio)["worker_actions"], "sent again until confirmed"
    answer = report(studio, worker_actions_done=[{"id": sleep_id, "ok": True},
                                                 {"id": tags_id, "ok": False, "message": "unknown worker"}],
                    queue_length=7)
    assert answer["worker_actions"] == []
    listed = {w["id"]: w for w in studio.admin.get("/api/workers").json()["workers"]}
    assert listed["w1"]["actions"][0]["status"] == "done"
    assert listed["w2"]["actions"][0]["status"] == "failed" and listed["w2"]["actions"][0]["message"] == "unknown worker"
    assert studio.admin.get("/api/managers").json()["managers"][0]["queue_length"] == 7


def test_worker_actions_wake_the_managers_held_request(studio):
    """The news hook: a worker action is published for its Manager once recorded (changes.py)."""
    workers_reported(studio, "w1")
    feed = studio.server.ctx.feed
    seq = feed.seq
    woke = {}

    def wait():
        deadline = time.monotonic() + 5
        current = seq
        while time.monotonic() < deadline:
            current = feed.wait(current, 5)
            if f"manager:{studio.manager_id}" in feed.changed_since(seq):
                woke["at"] = time.monotonic()
                return

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    asked = time.monotonic()
    studio.admin.post(f"/api/workers/{studio.manager_id}/w1/actions", json={"action": "wake"})
    t.join(6)
    assert woke and woke["at"] - asked < 1.0


def test_manager_admins_run_the_workers_of_their_projects_managers(studio):
    db = studio.server.db
    with db.connection_context():
        _, carl = admin.create_user(db, "carl", "artist", projects=["ads"])
        admin.add_member(db, "film", "ann", role="manager-admin")
        admin.add_member(db, "ads", "carl", role="manager-admin")
    workers_reported(studio, "w1")
    path = f"/api/workers/{studio.manager_id}/w1/actions"
    assert studio.ann.post(path, json={"action": "wake"}).status_code == 202, "m1 is linked to film"
    carl = Client(studio.url, carl)
    assert carl.post(path, json={"action": "wake"}).status_code in (403, 404), "m1 is not linked to ads"
    assert studio.bob.post(path, json={"action": "wake"}).status_code in (403, 404)


ADMIN_ONLY = [("GET", "/api/farm", None), ("POST", "/api/jobs/{job}/archive", None),
              ("POST", "/api/jobs/actions", {"action": "archive", "jobs": ["{job}"]}),
              ("POST", "/api/workers/{manager}/w1/actions", {"action": "shutdown"}),
              ("POST", "/api/workers/{manager}/w1/actions", {"action": "forget"}),
              ("POST", "/api/workers/{manager}/w1/actions", {"action": "set-tags", "tags": ["x"]})]


def test_an_artist_reaches_no_admin_action_by_token_or_cookie(studio):
    workers_reported(studio, "w1")
    job = submit(studio.ann, "1")
    for t in claim(studio):
        report(studio, (t, "active", 0), (t, "completed", 100))
    cookie = requests.Session()
    page = cookie.get(studio.url + "/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
    cookie.post(studio.url + "/login", data={"username": "ann", "password": "ann-secret-pw", "login_csrf": token})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', cookie.get(studio.url + "/").text).group(1)
    for method, path, body in ADMIN_ONLY:
        path = path.format(job=job["id"], manager=studio.manager_id)
        body = json.loads(json.dumps(body).replace("{job}", job["id"])) if body else None
        by_token = studio.ann.request(method, path, json=body)
        by_cookie = cookie.request(method, studio.url + path, json=body, headers={"X-Flamenco-CSRF": csrf})
        for r in (by_token, by_cookie):
            assert r.status_code == 403, (method, path, r.status_code, r.text)
    assert studio.ann.get(f"/api/jobs/{job['id']}").json()["status"] == "completed", "nothing changed"
    assert all(not w["may_act"] for w in studio.ann.get("/api/workers").json()["workers"])
    assert studio.admin.get("/api/workers").json()["workers"][0]["actions"] == []
    for page_path in ("/farm", "/workers", "/managers"):
        r = cookie.get(studio.url + page_path)
        assert r.status_code == 403 and "Admins only" in r.text, page_path
    assert 'href="/workers"' not in cookie.get(studio.url + "/").text


def read_events(url, headers, seconds, out):
    """Collect the event stream's events for `seconds` (on a thread)."""
    try:
        with requests.get(url, headers=headers, stream=True, timeout=seconds) as r:
            out.append(("status", r.status_code, time.monotonic()))
            event = None
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    out.append((event, json.loads(line[6:]), time.monotonic()))
    except requests.ConnectionError:  # the read timed out: nothing more came
        pass


def test_the_event_stream_says_what_changed_and_only_to_who_may_see_it(studio):
    job = submit(studio.ann, "1")
    topics = f"jobs,job:{job['id']},workers"
    ann_events, bob_events = [], []
    url = studio.url + "/api/events?topics="
    threads = [threading.Thread(target=read_events, args=(url + topics, {"Authorization": f"Bearer {studio.ann.token}"}, 3, ann_events)),
               threading.Thread(target=read_events, args=(url + "jobs,workers", {"Authorization": f"Bearer {studio.bob.token}"}, 3, bob_events))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    changed_at = time.monotonic()
    studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "pause"})
    for t in threads:
        t.join(10)
    kinds = [e[0] for e in ann_events]
    assert kinds[:2] == ["status", "hello"], ann_events
    change = next(e for e in ann_events if e[0] == "change")
    assert set(change[1]["topics"]) == {"jobs", f"job:{job['id']}"} and change[2] - changed_at < 1.0
    assert [e[0] for e in bob_events] == ["status", "hello"], "bob's project did not change"
    assert studio.bob.get(f"/api/events?topics=job:{job['id']}").status_code == 404
    assert studio.ann.get("/api/events?topics=secrets").status_code == 400
    assert studio.anon.get("/api/events?topics=jobs").status_code == 401


def test_the_farm_overview(studio):
    workers_reported(studio, "w1", "w2")
    job = submit(studio.ann, "1-2")
    t1, t2 = claim(studio)
    report(studio, (t1, "active", 0), (t1, "completed", 100), queue_length=3)
    farm = studio.admin.get("/api/farm").json()
    assert farm["workers_by_status"] == {"awake": 2}
    assert [j["id"] for j in farm["jobs_running"]] == [job["id"]]
    assert len(farm["tasks_per_minute"]) == 60 and farm["tasks_per_minute"][-1] == 1
    assert farm["managers"][0]["queue_length"] == 3 and farm["managers"][0]["link_health"] == "online"
