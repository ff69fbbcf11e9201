"""The user API over HTTP: auth, jobs, tasks, visibility, errors that write nothing."""

from __future__ import annotations

from tests.integration.server.server_it_helpers import Client, sleep_job


def count_jobs(studio) -> int:
    return studio.admin.get("/api/jobs").json()["total"]


def test_version_login_me_projects(studio):
    assert studio.anon.get("/api/version").json()["api_version"] == 1
    r = studio.anon.get("/api/me")
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert studio.anon.get("/api/me", headers={"Authorization": "Bearer nope.nope"}).status_code == 401
    bad = studio.anon.post("/api/auth/login", json={"username": "ann", "password": "wrong-password"})
    assert bad.status_code == 401 and set(bad.json()) == {"code", "message"}
    ok = studio.anon.post("/api/auth/login", json={"username": "ann", "password": "ann-secret-pw"})
    assert ok.status_code == 200
    token = ok.json()["token"]
    assert ok.json()["user"]["name"] == "ann"
    me = studio.anon.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["name"] == "ann" and me["role"] == "artist" and [p["name"] for p in me["projects"]] == ["film"]
    projects = studio.ann.get("/api/projects").json()["projects"]
    assert [(p["name"], [m["name"] for m in p["managers"]]) for p in projects] == [("film", ["m1"])]
    assert len(studio.admin.get("/api/projects").json()["projects"]) == 2


def test_job_types_schema(studio):
    types = {t["name"]: t for t in studio.ann.get("/api/job-types").json()["job_types"]}
    assert set(types) >= {"sleep", "exec-command", "blender-render", "video-encode"}
    keys = {s["key"]: s for s in types["blender-render"]["settings"]}
    assert {"filepath", "frames", "chunk_size", "format", "render_output", "blender_cmd", "fps",
            "create_video"} <= set(keys)
    assert keys["render_output"]["required"] is True and keys["chunk_size"]["default"] == 1
    assert "PNG" in keys["format"]["choices"]


def test_submit_get_list_tasks(studio):
    r = studio.ann.post("/api/jobs", json=sleep_job(priority=70, metadata={"blend": "a.blend"}))
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["priority"] == 70 and job["tasks_total"] == 4
    assert job["manager_name"] == "m1" and job["project_name"] == "film" and job["user_name"] == "ann"
    assert job["task_counts"] == {"queued": 4} and job["progress"] == 0
    got = studio.ann.get(f"/api/jobs/{job['id']}").json()
    assert got["id"] == job["id"] and got["settings"]["time_in_seconds"] == 0.1

    tasks = studio.ann.get(f"/api/jobs/{job['id']}/tasks").json()
    assert tasks["total"] == 4 and [t["name"] for t in tasks["tasks"]] == ["sleep-1", "sleep-2", "sleep-3", "sleep-4"]
    page = studio.ann.get(f"/api/jobs/{job['id']}/tasks?limit=2&offset=2").json()["tasks"]
    assert [t["name"] for t in page] == ["sleep-3", "sleep-4"]
    task = studio.ann.get(f"/api/tasks/{tasks['tasks'][0]['id']}").json()
    assert task["commands"][0]["name"] == "echo" and task["log_tail"] == "" and task["log_requested"] is False

    second = studio.ann.post("/api/jobs", json=sleep_job(name="second")).json()
    listed = studio.ann.get("/api/jobs").json()
    assert [j["id"] for j in listed["jobs"]] == [second["id"], job["id"]], "newest first"
    assert studio.ann.get("/api/jobs?limit=1&offset=1").json()["jobs"][0]["id"] == job["id"]
    assert studio.ann.get("/api/jobs?status=completed").json()["total"] == 0
    assert studio.ann.get("/api/jobs?status=queued,active&project=film").json()["total"] == 2
    bad = studio.ann.get("/api/jobs?status=nonsense")
    assert bad.status_code == 400 and "nonsense" in bad.json()["message"]
    assert studio.ann.get("/api/jobs?limit=0").status_code == 400


def test_artists_only_see_their_projects(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    assert studio.bob.get(f"/api/jobs/{job['id']}").status_code == 404
    assert studio.bob.get("/api/jobs").json()["total"] == 0
    assert studio.bob.post(f"/api/jobs/{job['id']}/status", json={"status": "cancel"}).status_code == 404
    tid = studio.ann.get(f"/api/jobs/{job['id']}/tasks").json()["tasks"][0]["id"]
    assert studio.bob.get(f"/api/tasks/{tid}").status_code == 404
    assert studio.admin.get(f"/api/jobs/{job['id']}").status_code == 200
    r = studio.bob.post("/api/jobs", json=sleep_job())
    assert r.status_code == 400 and "not a member" in r.json()["message"]
    assert studio.bob.get("/api/managers").json()["managers"] == []
    assert [m["name"] for m in studio.ann.get("/api/managers").json()["managers"]] == ["m1"]


BAD_SUBMISSIONS = [
    ({"name": "x", "type": "sleep", "settings": {}, "project": "film"}, 400, "setting 'frames': is required"),
    ({"name": "x", "type": "sleep", "settings": {"frames": "9-1"}, "project": "film"}, 400, "setting 'frames'"),
    ({"name": "x", "type": "nope", "settings": {}, "project": "film"}, 400, "unknown job type 'nope'"),
    ({"name": "x", "type": "sleep", "settings": {"frames": "1"}, "project": "nope"}, 400, "no project 'nope'"),
    ({"name": "x", "type": "sleep", "settings": {"frames": "1"}, "project": "film", "priority": 0}, 400,
     "'priority'"),
    ({"name": "x", "type": "sleep", "settings": {"frames": "1"}, "project": "film", "colour": 1}, 400,
     "unknown field(s) colour"),
    ({"name": "x", "type": "sleep", "settings": {"frames": "1"}, "project": "film", "manager": "m9"}, 400,
     "no manager 'm9'"),
    ({"name": "x", "type": "sleep", "settings": {"frames": "1"}, "project": "film", "depends_on": ["zz"]}, 400,
     "no job 'zz'"),
    ({"name": "x", "type": "blender-render", "project": "film", "settings": {
        "filepath": "/a.blend", "frames": "1-3", "render_output": "/r/x/####", "create_video": True}}, 400,
     "setting 'fps'"),
]


def test_bad_submissions_write_nothing(studio):
    before = count_jobs(studio)
    for body, status, words in BAD_SUBMISSIONS:
        r = studio.ann.post("/api/jobs", json=body)
        assert r.status_code == status, (body, r.text)
        assert set(r.json()) == {"code", "message"} and words in r.json()["message"], (body, r.text)
    assert count_jobs(studio) == before


def test_bad_bodies(studio):
    r = studio.ann.post("/api/jobs", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = studio.ann.post("/api/jobs", json=[1, 2])
    assert r.status_code == 400
    r = studio.ann.get("/api/no-such-route")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = studio.ann.request("PATCH", "/api/jobs")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_manager_choice(studio, server):
    from backend.server import admin
    with server.db.connection_context():
        m2, token = admin.create_manager(server.db, "m2")
        admin.link_manager(server.db, "m2", "film")
    c2 = Client(studio.url, token)
    # m2 only renders: a sleep job still goes to m1
    c2.post(f"/api/managers/{m2.id}/startup", json={"_meta": {"version": 2}, "manager_url": "http://m2",
                                                    "nr_of_workers": 5, "worker_task_types": ["blender-render"]})
    assert studio.ann.post("/api/jobs", json=sleep_job()).json()["manager_name"] == "m1"
    # both sleep; m2 reports more idle workers
    c2.post(f"/api/managers/{m2.id}/update", json={"_meta": {"version": 2}, "manager_url": "http://m2",
                                                   "nr_of_workers": 5, "worker_task_types": ["sleep"]})
    c2.post(f"/api/managers/{m2.id}/workers", json={"workers": [
        {"_id": f"w{i}", "nickname": f"node{i}", "status": "awake"} for i in range(3)], "complete": True})
    assert studio.ann.post("/api/jobs", json=sleep_job()).json()["manager_name"] == "m2"
    assert studio.ann.post("/api/jobs", json=sleep_job(manager="m1")).json()["manager_name"] == "m1"
    # Issue 10: no worker of m2 runs 'debug' yet; the job is accepted and says what it waits for.
    r = studio.admin.post("/api/jobs", json=sleep_job(type="exec-command", settings={"cmd": "ls"}, manager="m2"))
    assert r.status_code == 201 and r.json()["status_reason"] == "waiting for a worker that runs debug"
    r = studio.admin.post("/api/jobs", json=sleep_job(project="ads"))
    assert r.status_code == 400 and "no manager linked" in r.json()["message"]


def test_status_priority_requeue_log_delete(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    jid = job["id"]
    r = studio.ann.post(f"/api/jobs/{jid}/priority", json={"priority": 90, "reason": "deadline"})
    assert r.status_code == 200 and r.json()["priority"] == 90
    r = studio.ann.post(f"/api/jobs/{jid}/status", json={"status": "pause", "reason": "lunch"})
    assert r.json()["status"] == "paused"
    r = studio.ann.post(f"/api/jobs/{jid}/status", json={"status": "resume"})
    assert r.json()["status"] == "queued"
    r = studio.ann.delete(f"/api/jobs/{jid}")
    assert r.status_code == 409 and r.json()["code"] == "job_not_finished"
    r = studio.ann.post(f"/api/jobs/{jid}/status", json={"status": "cancel", "reason": "wrong shot"})
    assert r.json()["status"] == "canceled"
    r = studio.ann.post(f"/api/jobs/{jid}/status", json={"status": "pause"})
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    assert studio.ann.post(f"/api/jobs/{jid}/status", json={"status": "explode"}).status_code == 400

    tid = studio.ann.get(f"/api/jobs/{jid}/tasks").json()["tasks"][1]["id"]
    r = studio.ann.post(f"/api/tasks/{tid}/requeue", json={"reason": "try again"})
    assert r.json() == {"requeued": 1}
    assert studio.ann.get(f"/api/jobs/{jid}").json()["status"] == "queued"

    entries = studio.ann.get(f"/api/jobs/{jid}/log").json()["entries"]
    whats = [(e["who"], e["what"], e["reason"]) for e in entries]
    assert whats[0][0] == "user ann" and whats[0][1].startswith("submitted sleep job with 4 tasks")
    assert ("user ann", "priority 50 -> 90", "deadline") in whats
    assert ("user ann", "status queued -> pause-requested", "lunch") in whats
    assert ("user ann", "status queued -> cancel-requested", "wrong shot") in whats
    assert any(w[1].startswith("requeued task sleep-2") and w[2] == "try again" for w in whats)
    assert all(e["created"].endswith("Z") for e in entries)

    studio.ann.post(f"/api/jobs/{jid}/status", json={"status": "cancel"})
    assert studio.ann.delete(f"/api/jobs/{jid}").status_code == 204
    assert studio.ann.get(f"/api/jobs/{jid}").status_code == 404
    assert studio.ann.get(f"/api/tasks/{tid}").status_code == 404


def test_dependent_job_over_http(studio):
    bake = studio.ann.post("/api/jobs", json=sleep_job(name="bake")).json()
    render = studio.ann.post("/api/jobs", json=sleep_job(name="render", depends_on=[bake["id"]])).json()
    assert render["depends_on"] == [bake["id"]] and render["blocked"] is True
    studio.ann.post(f"/api/jobs/{bake['id']}/status", json={"status": "fail"})
    render = studio.ann.get(f"/api/jobs/{render['id']}").json()
    assert render["status"] == "failed" and "bake" in render["status_reason"] and "failed" in render["status_reason"]
