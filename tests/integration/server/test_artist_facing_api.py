"""What the add-on and the CLI need from the Server (issues 10 and 14), over real HTTP:
jobs accepted before a worker can run them, with the reason they wait; a requeue that
would change nothing refused; "my jobs"; the workers' tags; job types for artists."""

from __future__ import annotations

import html

from tests.integration.server.server_it_helpers import sleep_job
from tests.integration.server.test_pages import page_data, sign_in


def announce(studio, task_types, workers=(), status="awake"):
    """m1 tells the Server what its workers run, then which workers it has (with their tags)."""
    r = studio.manager.post(f"/api/managers/{studio.manager_id}/update", json={
        "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": len(workers),
        "worker_task_types": list(task_types)})
    assert r.status_code == 204, r.text
    r = studio.manager.post(f"/api/managers/{studio.manager_id}/workers", json={"complete": True, "workers": [
        {"_id": f"w{i}", "nickname": f"node{i}", "status": status, "supported_task_types": list(task_types),
         "tags": list(tags)} for i, tags in enumerate(workers)]})
    assert r.status_code == 204, r.text


def reason(studio, job_id) -> str:
    return studio.ann.get(f"/api/jobs/{job_id}").json()["status_reason"]


# --- issue 10: accepted before a worker exists --------------------------------------------

def test_a_job_no_worker_can_run_yet_is_accepted_and_says_why(studio):
    announce(studio, [])  # the Manager runs, no worker signed on yet
    r = studio.ann.post("/api/jobs", json=sleep_job())
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["status"] == "queued" and job["manager_name"] == "m1"
    assert job["status_reason"] == "waiting for a worker that runs sleep"
    listed = studio.ann.get("/api/jobs").json()["jobs"][0]
    assert listed["id"] == job["id"] and listed["status_reason"] == job["status_reason"]

    announce(studio, ["sleep"], workers=[[]])  # a worker signs on
    assert reason(studio, job["id"]) == ""


def test_at_night_every_worker_is_off_and_the_job_says_so(studio):
    announce(studio, ["sleep"], workers=[["gpu"], []], status="offline")
    job = studio.ann.post("/api/jobs", json=sleep_job(worker_tag="gpu")).json()
    assert job["status_reason"] == "waiting for a worker that runs sleep; no worker has tag gpu"
    announce(studio, ["sleep"], workers=[["gpu"], []], status="awake")  # morning: they sign on
    assert reason(studio, job["id"]) == ""


def test_a_worker_tag_no_worker_has_is_accepted_and_says_why(studio):
    announce(studio, ["sleep"], workers=[["cpu"]])
    job = studio.ann.post("/api/jobs", json=sleep_job(worker_tag="gpu")).json()
    assert job["status_reason"] == "no worker has tag gpu"
    announce(studio, ["sleep"], workers=[["cpu"], ["gpu", "fast"]])
    assert reason(studio, job["id"]) == ""


def test_both_reasons_and_a_manager_never_seen(studio, server):
    announce(studio, [])
    job = studio.admin.post("/api/jobs", json=sleep_job(type="exec-command", settings={"cmd": "ls"},
                                                       worker_tag="gpu")).json()
    assert job["status_reason"] == "waiting for a worker that runs debug; no worker has tag gpu"

    from backend.server import admin
    with server.db.connection_context():
        admin.create_project(server.db, "shorts")
        admin.create_manager(server.db, "m-new")
        admin.link_manager(server.db, "m-new", "shorts")
    r = studio.admin.post("/api/jobs", json=sleep_job(project="shorts"))
    assert r.status_code == 201, r.text
    assert r.json()["status_reason"] == "waiting for Manager m-new, which has not contacted the Server yet"


def test_the_job_page_shows_why_the_job_waits(studio):
    announce(studio, [])
    job = studio.ann.post("/api/jobs", json=sleep_job(name="waiting shot")).json()
    page = sign_in(studio).get(studio.url + job["web_url"]).text
    assert html.escape("waiting for a worker that runs sleep") in page
    assert page_data(page)["job"]["status_reason"] == "waiting for a worker that runs sleep"


def test_no_linked_manager_is_still_refused(studio):
    r = studio.admin.post("/api/jobs", json=sleep_job(project="ads"))
    assert r.status_code == 400 and r.json()["code"] == "no_suitable_manager"


# --- issue 14, point 3: a requeue that changes nothing is an error -----------------------

def test_requeue_of_a_job_with_nothing_to_requeue_is_409_and_changes_nothing(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    log_before = studio.ann.get(f"/api/jobs/{job['id']}/log").json()["entries"]
    for word in ("requeue", "requeued", "requeue-failed"):
        r = studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": word})
        assert r.status_code == 409, (word, r.text)
        assert r.json()["code"] == "nothing_to_requeue"
        assert "would change nothing" in r.json()["message"]
    after = studio.ann.get(f"/api/jobs/{job['id']}").json()
    assert after["status"] == "queued" and after["updated"] == job["updated"]
    assert studio.ann.get(f"/api/jobs/{job['id']}/log").json()["entries"] == log_before

    # A job with something to requeue still can be.
    assert studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "cancel"}).status_code == 200
    r = studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "requeue"})
    assert r.status_code == 200 and r.json()["status"] == "queued"


def test_the_job_page_offers_requeue_only_where_it_moves_tasks(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    data = page_data(sign_in(studio).get(studio.url + job["web_url"]).text)
    assert data["requeue_moves"]["queued"] == {"requeue-failed": ["canceled", "failed"]}
    assert data["requeue_moves"]["completed"]["requeue"] == ["canceled", "completed", "failed", "paused",
                                                             "soft-failed"]


# --- issue 14, point 9: my jobs -------------------------------------------------------------

def test_my_jobs_and_a_users_jobs(studio, server):
    from backend.server import admin
    with server.db.connection_context():
        admin.add_member(server.db, "film", "bob")
    mine = studio.ann.post("/api/jobs", json=sleep_job(name="ann's")).json()
    bobs = studio.bob.post("/api/jobs", json=sleep_job(name="bob's")).json()
    everyone = [j["id"] for j in studio.ann.get("/api/jobs").json()["jobs"]]
    assert {mine["id"], bobs["id"]} <= set(everyone)
    for query in ("mine=1", "mine=true", "user=ann"):
        page = studio.ann.get(f"/api/jobs?{query}").json()
        assert [j["id"] for j in page["jobs"]] == [mine["id"]] and page["total"] == 1, query
    assert [j["id"] for j in studio.ann.get("/api/jobs?user=bob").json()["jobs"]] == [bobs["id"]]
    assert studio.ann.get("/api/jobs?mine=0").json()["total"] == len(everyone)
    r = studio.ann.get("/api/jobs?mine=perhaps")
    assert r.status_code == 400 and r.json()["code"] == "invalid_query"
    r = studio.ann.get("/api/jobs?user=nobody")
    assert r.status_code == 400 and r.json()["code"] == "unknown_user"
    params = {p["name"] for p in studio.anon.get("/api/openapi.json").json()["paths"]["/api/jobs"]["get"]["parameters"]}
    assert {"mine", "user"} <= params


# --- issue 14, point 6: the tags the workers have --------------------------------------------

def test_worker_tags_for_signed_in_users(studio):
    announce(studio, ["sleep", "blender-render"], workers=[["gpu"], ["gpu", "big-ram"], []])
    got = studio.ann.get("/api/worker-tags").json()
    assert got == {"tags": ["big-ram", "gpu"], "task_types": ["blender-render", "sleep"]}
    assert studio.ann.get("/api/worker-tags?project=film").json() == got
    assert studio.bob.get("/api/worker-tags").json() == {"tags": [], "task_types": []}, "m1 serves film only"
    assert studio.bob.get("/api/worker-tags?project=film").status_code == 404
    assert studio.admin.get("/api/worker-tags?project=ads").json() == {"tags": [], "task_types": []}
    assert studio.anon.get("/api/worker-tags").status_code == 401
    doc = studio.anon.get("/api/openapi.json").json()
    assert "/api/worker-tags" in doc["paths"] and "WorkerOffers" in doc["components"]["schemas"]


# --- issue 14, point 12: job types for artists -------------------------------------------------

def test_job_types_have_a_label_and_say_whether_artists_see_them(studio):
    types = {t["name"]: t for t in studio.ann.get("/api/job-types").json()["job_types"]}
    assert types["blender-render"]["label"] == "Blender render" and types["blender-render"]["artist_visible"]
    assert not types["sleep"]["artist_visible"] and not types["exec-command"]["artist_visible"]
    assert all(isinstance(t["label"], str) and t["label"] for t in types.values())
    schema = studio.anon.get("/api/openapi.json").json()["components"]["schemas"]
    assert "artist_visible" in schema["JobType"]["required"]
    assert schema["Setting"]["properties"]["type"]["enum"] == ["string", "integer", "number", "boolean", "frames",
                                                               "path", "choice", "list"]
