"""The Manager API of docs/protocol.md over HTTP."""

from __future__ import annotations

import gzip
import hashlib

from shared.documents import ScheduledTasks, TaskUpdateResponse
from shared.protocol import (IF_UPDATED_SINCE, LAST_UPDATED, LONG_POLL_HEADER, MORE_HEADER, NEWS_HEADER,
                             NEWS_KINDS_HEADER, SHA256_HEADER)
from tests.integration.server.server_it_helpers import Client, sleep_job


def P(studio, rest: str) -> str:
    return f"/api/managers/{studio.manager_id}/{rest}"


def update(uid, task_id, status=None, **kw):
    doc = {"_id": uid, "task_id": task_id, "received_on_manager": "2024-05-01T10:00:00Z", "worker": "w1", **kw}
    if status:
        doc["task_status"] = status
    return doc


def test_manager_auth(studio):
    r = studio.anon.get(P(studio, "depsgraph"))
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = studio.ann.get(P(studio, "depsgraph"))  # a user token is not a manager token
    assert r.status_code == 401
    r = studio.manager.get("/api/managers/someone-else/depsgraph")
    assert r.status_code == 401
    r = studio.manager.post(P(studio, "startup"), json={"_meta": {"version": 1}, "manager_url": "x"})
    assert r.status_code == 400 and "_meta.version" in r.json()["message"]


def test_depsgraph_and_update_batches(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    r = studio.manager.get(P(studio, "depsgraph"))
    assert r.status_code == 200
    stamp = r.headers[LAST_UPDATED]
    tasks = ScheduledTasks.from_dict(r.json()).depsgraph
    assert len(tasks) == 4 and {t.status for t in tasks} == {"claimed-by-manager"}
    assert tasks[0].job == job["id"] and tasks[0].job_files_mode == "shared"
    r = studio.manager.get(P(studio, "depsgraph"), headers={IF_UPDATED_SINCE: stamp})
    assert r.status_code == 304 and r.headers[LAST_UPDATED]
    assert studio.manager.get(P(studio, "depsgraph"), headers={IF_UPDATED_SINCE: "yesterday"}).status_code == 400

    ids = [t.id for t in tasks]
    batch = {"updates": [update("u1", ids[0], "active", activity="rendering", task_progress_percentage=40,
                                log="2024-05-01T10:00:00Z: started"),
                         update("u2", ids[1], "completed", task_progress_percentage=100)]}
    r = studio.manager.post(P(studio, "task-update-batch"), json=batch)
    answer = TaskUpdateResponse.from_dict(r.json())
    assert answer.handled_update_ids == ["u1", "u2"] and answer.modified_count == 2
    assert answer.cancel_task_ids == [] and answer.upload_task_file_queue == []
    again = studio.manager.post(P(studio, "task-update-batch"), json=batch).json()
    assert again["handled_update_ids"] == ["u1", "u2"] and again["modified_count"] == 0

    got = studio.ann.get(f"/api/jobs/{job['id']}").json()
    assert got["status"] == "active" and got["task_counts"] == {"active": 1, "completed": 1,
                                                                 "claimed-by-manager": 2}
    assert got["progress"] == 35.0
    t0 = studio.ann.get(f"/api/tasks/{ids[0]}").json()
    assert t0["activity"] == "rendering" and t0["log_tail"].endswith("started") and t0["worker"] == "w1"

    r = studio.manager.get(P(studio, "depsgraph"), headers={IF_UPDATED_SINCE: stamp})
    assert r.status_code == 304, "what the Manager reported itself is not sent back to it"
    assert studio.ann.post(f"/api/tasks/{ids[1]}/requeue", json={}).json() == {"requeued": 1}
    r = studio.manager.get(P(studio, "depsgraph"), headers={IF_UPDATED_SINCE: stamp})
    assert [(t["_id"], t["status"]) for t in r.json()["depsgraph"]] == [(ids[1], "claimed-by-manager")], \
        "a change made on the Server reaches the incremental depsgraph"

    studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "cancel"})
    answer = studio.manager.post(P(studio, "task-update-batch"), json={"updates": []}).json()
    assert sorted(answer["cancel_task_ids"]) == sorted(ids)
    studio.manager.post(P(studio, "task-update-batch"), json={"updates": [
        update(f"u{3 + i}", tid, "canceled") for i, tid in enumerate(ids)]})
    assert studio.ann.get(f"/api/jobs/{job['id']}").json()["status"] == "canceled"


def test_worker_report_and_workers_list(studio):
    r = studio.manager.post(P(studio, "workers"), json={"workers": [
        {"_id": "w1", "nickname": "node1", "status": "awake", "platform": "linux",
         "supported_task_types": ["sleep"], "current_task": "t1", "current_job": "j1",
         "last_seen": "2024-05-01T10:00:00Z", "resources": {"cpu_count": 8, "mem_total_mb": 16000}},
        {"_id": "w2", "nickname": "node2", "status": "asleep"}], "complete": True})
    assert r.status_code == 204
    workers = studio.ann.get("/api/workers").json()["workers"]
    assert [(w["nickname"], w["status"], w["manager_name"]) for w in workers] == [("node1", "awake", "m1"),
                                                                                 ("node2", "asleep", "m1")]
    assert workers[0]["resources"]["cpu_count"] == 8 and workers[0]["current_task"] == "t1"
    studio.manager.post(P(studio, "workers"), json={"workers": [{"_id": "w2", "nickname": "node2", "status": "awake"}],
                                                    "complete": True})
    assert [w["nickname"] for w in studio.ann.get("/api/workers").json()["workers"]] == ["node2"]
    assert studio.bob.get("/api/workers").json()["workers"] == []
    (m,) = studio.ann.get("/api/managers").json()["managers"]
    assert m["link_health"] == "online" and m["idle_workers"] == 1 and m["url"] == "http://m1.local:8083"
    assert "sleep" in m["worker_task_types"] and m["projects"] == [{"id": m["projects"][0]["id"], "name": "film"}]


def test_task_log_request_and_upload(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    tid = studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"][0]["_id"]
    assert studio.ann.get(f"/api/tasks/{tid}/log").status_code == 404
    assert studio.ann.post(f"/api/tasks/{tid}/log-request").status_code == 202
    answer = studio.manager.post(P(studio, "task-update-batch"), json={"updates": []}).json()
    assert answer["upload_task_file_queue"] == [{"job": job["id"], "task": tid}]
    log = "2024-05-01T10:00:00Z: line one\n2024-05-01T10:00:01Z: line two\n"
    r = studio.manager.post(P(studio, f"tasks/{tid}/log"), data=gzip.compress(log.encode()),
                            headers={"Content-Type": "application/gzip"})
    assert r.status_code == 204
    assert studio.ann.get(f"/api/tasks/{tid}/log").text == log
    answer = studio.manager.post(P(studio, "task-update-batch"), json={"updates": []}).json()
    assert answer["upload_task_file_queue"] == []
    r = studio.manager.post(P(studio, f"tasks/{tid}/log"), data=b"plain text")
    assert r.status_code == 400
    assert studio.manager.post(P(studio, "tasks/nope/log"), data=gzip.compress(b"x")).status_code == 404


def test_manager_sees_only_its_own_jobs(studio, server):
    from backend.server import admin
    with server.db.connection_context():
        m2, token = admin.create_manager(server.db, "m2")
    other = Client(studio.url, token)
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    tid = studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"][0]["_id"]
    base = f"/api/managers/{m2.id}"
    assert other.get(f"{base}/depsgraph").json()["depsgraph"] == []
    r = other.post(f"{base}/task-update-batch", json={"updates": [update("z1", tid, "failed")]}).json()
    assert r["handled_update_ids"] == ["z1"] and r["modified_count"] == 0
    assert studio.ann.get(f"/api/tasks/{tid}").json()["status"] == "claimed-by-manager"
    assert other.get(f"{base}/jobs/{job['id']}/files").status_code == 404
    assert other.post(f"{base}/tasks/{tid}/log", data=gzip.compress(b"x")).status_code == 404


def test_upload_mode_files_and_outputs(studio):
    blend = b"BLENDER-v300 fake scene" * 100
    tex = b"\x89PNG texture"
    files = {"scene.blend": blend, "textures/wood.png": tex}
    manifest = {rel: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)} for rel, data in files.items()}
    check = studio.ann.post("/api/files/check", json={"files": list(manifest.values())}).json()
    assert sorted(check["missing"]) == sorted(m["sha256"] for m in manifest.values())
    for rel, data in files.items():
        r = studio.ann.put(f"/api/files/{manifest[rel]['sha256']}", data=data)
        assert r.status_code == 201 and r.json()["size"] == len(data)
    assert studio.ann.put(f"/api/files/{manifest['scene.blend']['sha256']}", data=blend).status_code == 200
    assert studio.ann.post("/api/files/check", json={"files": list(manifest.values())}).json() == {"missing": []}
    wrong = hashlib.sha256(b"other").hexdigest()
    r = studio.ann.put(f"/api/files/{wrong}", data=b"not other")
    assert r.status_code == 400 and r.json()["code"] == "hash_mismatch"
    checked = studio.ann.post("/api/files/check", json={"files": [{"sha256": wrong, "size": 5}]}).json()
    assert checked["missing"] == [wrong]
    assert studio.ann.put("/api/files/not-a-hash", data=b"x").status_code == 400

    for bad in ("../escape.blend", "/abs/scene.blend", "C:/scene.blend", "a\\b.blend"):
        body = {"name": "r", "type": "blender-render", "project": "film",
                "files": {bad: manifest["scene.blend"]},
                "settings": {"filepath": bad, "frames": "1-2", "render_output": "frames/######"}}
        r = studio.ann.post("/api/jobs", json=body)
        assert r.status_code == 400 and r.json()["code"] == "invalid_path", bad
    missing = {"sha256": hashlib.sha256(b"never sent").hexdigest(), "size": 10}
    r = studio.ann.post("/api/jobs", json={"name": "r", "type": "sleep", "project": "film",
                                           "settings": {"frames": "1"}, "files": {"x.bin": missing}})
    assert r.status_code == 400 and r.json()["code"] == "file_missing"

    job = studio.ann.post("/api/jobs", json={
        "name": "upload", "type": "blender-render", "project": "film", "files": manifest,
        "settings": {"filepath": "scene.blend", "frames": "1-2", "chunk_size": 1,
                     "render_output": "frames/######", "format": "PNG"}}).json()
    assert job["files_mode"] == "upload" and job["tasks_total"] == 3
    assert studio.ann.get(f"/api/jobs/{job['id']}/files").json()["files"] == manifest
    tasks = studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"]
    assert tasks[0]["job_files_mode"] == "upload"
    assert tasks[0]["commands"][0]["settings"]["filepath"] == "{job_files}/scene.blend"
    interm = tasks[0]["io"]["outputs"][0]
    assert tasks[0]["commands"][0]["settings"]["render_output"] == f"{{job_output}}/{interm}/######"
    assert tasks[2]["io"] == {"inputs": [interm], "outputs": [interm, "frames"]}

    assert studio.manager.get(P(studio, f"jobs/{job['id']}/files")).json() == {"files": manifest}
    got = studio.manager.get(P(studio, f"files/{manifest['textures/wood.png']['sha256']}"))
    assert got.status_code == 200 and got.content == tex
    assert studio.manager.get(P(studio, f"files/{wrong}")).status_code == 404

    frame = b"\x89PNG frame one"
    sha = hashlib.sha256(frame).hexdigest()
    path = P(studio, f"jobs/{job['id']}/outputs/frames/000001.png?task={tasks[0]['_id']}")
    for _ in range(2):
        r = studio.manager.put(path, data=frame, headers={SHA256_HEADER: sha})
        assert r.status_code == 204, r.text
    r = studio.manager.put(P(studio, f"jobs/{job['id']}/outputs/frames/000002.png?task={tasks[0]['_id']}"),
                           data=b"x", headers={SHA256_HEADER: sha})
    assert r.status_code == 400 and r.json()["code"] == "hash_mismatch"
    r = studio.manager.put(P(studio, f"jobs/{job['id']}/outputs/../../etc/passwd"), data=frame,
                           headers={SHA256_HEADER: sha})
    assert r.status_code in (400, 404)
    outputs = studio.ann.get(f"/api/jobs/{job['id']}/outputs").json()["outputs"]
    assert [(o["relpath"], o["size"], o["task"]) for o in outputs] == [("frames/000001.png", len(frame),
                                                                        tasks[0]["_id"])]
    dl = studio.ann.get(outputs[0]["url"])
    assert dl.status_code == 200 and dl.content == frame and "000001.png" in dl.headers["Content-Disposition"]
    assert studio.ann.get(f"/api/files/{sha}").content == frame
    assert studio.bob.get(f"/api/files/{sha}").status_code == 404
    assert studio.ann.get(f"/api/jobs/{job['id']}/outputs/frames/nope.png").status_code == 404

    studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "cancel"})
    studio.manager.post(P(studio, "task-update-batch"), json={"updates": [
        update(f"c{i}", t["_id"], "canceled") for i, t in enumerate(tasks)]})
    assert studio.ann.delete(f"/api/jobs/{job['id']}").status_code == 204
    store = studio.server.ctx.store
    assert not store.has(sha) and not store.has(manifest["scene.blend"]["sha256"])


def test_outputs_are_registered_by_checksum_and_read_by_dependent_jobs(studio, server):
    from backend.server import admin
    blend = b"BLENDER-v300 baked" * 10
    sha = hashlib.sha256(blend).hexdigest()
    assert studio.ann.put(f"/api/files/{sha}", data=blend).status_code == 201
    files = {"scene.blend": {"sha256": sha, "size": len(blend)}}
    bake = studio.ann.post("/api/jobs", json={"name": "bake", "type": "sleep", "project": "film", "files": files,
                                            "settings": {"frames": "1"}}).json()
    tid = studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"][0]["_id"]
    cache = b"bphys cache frame" * 20
    cache_sha = hashlib.sha256(cache).hexdigest()
    reg = {"task": tid, "files": {"scene.blend": {"sha256": sha, "size": len(blend)},
                                  "blendcache_scene/x_000001_00.bphys": {"sha256": cache_sha, "size": len(cache)}}}
    # The .blend is a file of the job: registered by checksum; the cache's bytes are asked for.
    assert studio.manager.post(P(studio, f"jobs/{bake['id']}/outputs"), json=reg).json() == {"missing": [cache_sha]}
    r = studio.manager.put(P(studio, f"jobs/{bake['id']}/outputs/blendcache_scene/x_000001_00.bphys?task={tid}"),
                         data=cache, headers={SHA256_HEADER: cache_sha})
    assert r.status_code == 204
    assert studio.manager.post(P(studio, f"jobs/{bake['id']}/outputs"), json=reg).json() == {"missing": []}
    listed = studio.manager.get(P(studio, f"jobs/{bake['id']}/outputs")).json()["files"]
    assert listed == reg["files"]
    # A staging folder removed: every output under it goes, others stay.
    staged = {"task": tid, "files": {".flamenco-bake-scene/baked/a": {"sha256": cache_sha, "size": len(cache)},
                                     ".flamenco-bake-scene/baked/b": {"sha256": cache_sha, "size": len(cache)}}}
    assert studio.manager.post(P(studio, f"jobs/{bake['id']}/outputs"), json=staged).json() == {"missing": []}
    studio.manager.post(P(studio, f"jobs/{bake['id']}/outputs"), json={"task": tid, "removed": [".flamenco-bake-scene"]})
    assert studio.manager.get(P(studio, f"jobs/{bake['id']}/outputs")).json()["files"] == listed
    # Bad input changes nothing.
    for bad, status in (({"task": tid, "files": {"../x": {"sha256": sha, "size": 1}}}, 400),
                        ({"task": tid, "files": {"x": {"sha256": "nope", "size": 1}}}, 400),
                        ({"task": tid, "removed": ["/abs"]}, 400), ({"removed": ["x"]}, 400),
                        ({"task": "not-a-task-of-this-job", "files": {}}, 403)):
        r = studio.manager.post(P(studio, f"jobs/{bake['id']}/outputs"), json=bad)
        assert r.status_code == status, bad
    assert studio.manager.get(P(studio, f"jobs/{bake['id']}/outputs")).json()["files"] == listed

    # Another Manager of the project runs a job that depends on the bake: it may read the bake's
    # outputs (at the Server, as they were made elsewhere) but register none; a third may do neither.
    from backend.server.models import Project
    with server.db.connection_context():
        m2, t2 = admin.create_manager(server.db, "m2")
        admin.link_manager(server.db, m2.id, Project.get(Project.name == "film").id)
        m3, t3 = admin.create_manager(server.db, "m3")
    second, third = Client(studio.url, t2), Client(studio.url, t3)
    b2 = f"/api/managers/{m2.id}"
    assert second.post(f"{b2}/startup", json={"_meta": {"version": 2}, "manager_url": "http://m2",
                                               "worker_task_types": ["sleep"], "nr_of_workers": 1}).status_code == 204
    assert second.get(f"{b2}/jobs/{bake['id']}/outputs").status_code == 404
    assert second.get(f"{b2}/files/{cache_sha}").status_code == 404
    render = studio.ann.post("/api/jobs", json={"name": "render", "type": "sleep", "project": "film", "manager": "m2",
                                              "files": files, "settings": {"frames": "1"},
                                              "depends_on": [bake["id"]]}).json()
    assert render["manager"] == m2.id, render
    assert second.get(f"{b2}/jobs/{bake['id']}/outputs").json()["files"] == listed
    assert second.get(f"{b2}/files/{cache_sha}").content == cache
    assert second.post(f"{b2}/jobs/{bake['id']}/outputs", json=reg).status_code == 404
    b3 = f"/api/managers/{m3.id}"
    assert third.get(f"{b3}/jobs/{bake['id']}/outputs").status_code == 404
    assert third.get(f"{b3}/files/{cache_sha}").status_code == 404


def held(studio, cursor, news, seconds=10, **kw):
    """A depsgraph request the Server may hold, in a thread; join it and read `.result`."""
    import threading
    headers = {LONG_POLL_HEADER: str(seconds), NEWS_HEADER: news}
    if cursor:
        headers[IF_UPDATED_SINCE] = cursor
    out = threading.Thread(target=lambda: setattr(out, "result", studio.manager.get(
        P(studio, "depsgraph"), headers=headers, **kw)), daemon=True)
    out.start()
    return out


def wait_held(studio, n=1):
    import time
    deadline = time.monotonic() + 10
    while studio.server.ctx.news.held() != n:
        assert time.monotonic() < deadline, "the request was not held"
        time.sleep(0.01)


def test_depsgraph_pages_over_http(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job(settings={"frames": "1-5", "chunk_size": 1,
                                                             "time_in_seconds": 0})).json()
    seen, cursor, more = [], None, True
    while more:
        r = studio.manager.get(P(studio, "depsgraph") + "?limit=2", headers={IF_UPDATED_SINCE: cursor} if cursor else {})
        assert r.status_code == 200
        seen += [t["_id"] for t in r.json()["depsgraph"]]
        cursor, more = r.headers[LAST_UPDATED], r.headers.get(MORE_HEADER) == "true"
    tasks = studio.ann.get(f"/api/jobs/{job['id']}/tasks").json()["tasks"]
    assert sorted(seen) == sorted(t["id"] for t in tasks) and len(set(seen)) == 5, "each task once"
    assert {t["status"] for t in tasks} == {"claimed-by-manager"}
    assert studio.manager.get(P(studio, "depsgraph"), headers={IF_UPDATED_SINCE: cursor}).status_code == 304
    for bad in ("?limit=0", "?limit=x", "?limit=100000"):
        assert studio.manager.get(P(studio, "depsgraph") + bad).status_code == 400
    r = studio.manager.get(P(studio, "depsgraph"), headers={LONG_POLL_HEADER: "soon"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_header"


def test_a_held_depsgraph_answers_when_a_job_arrives(studio):
    first = studio.manager.get(P(studio, "depsgraph"))
    assert first.headers[NEWS_KINDS_HEADER] == "*", "no token yet: look at everything"
    cursor, news = first.headers[LAST_UPDATED], first.headers[NEWS_HEADER]
    waiting = held(studio, cursor, news)
    wait_held(studio)
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    waiting.join(10)
    r = waiting.result
    assert r.status_code == 200 and {t["job"] for t in r.json()["depsgraph"]} == {job["id"]}
    assert r.headers[NEWS_KINDS_HEADER] == "tasks" and r.headers[NEWS_HEADER] != news
    assert r.headers[LONG_POLL_HEADER] == "10"


def test_a_held_depsgraph_brings_other_news_and_ends_at_its_time(studio):
    job = studio.ann.post("/api/jobs", json=sleep_job()).json()
    r = studio.manager.get(P(studio, "depsgraph"))
    cursor, news = r.headers[LAST_UPDATED], r.headers[NEWS_HEADER]
    tid = r.json()["depsgraph"][0]["_id"]

    waiting = held(studio, cursor, news)
    wait_held(studio)
    assert studio.ann.post(f"/api/tasks/{tid}/log-request").status_code == 202
    waiting.join(10)
    r = waiting.result
    assert r.status_code == 304 and r.headers[NEWS_KINDS_HEADER] == "log"
    news = r.headers[NEWS_HEADER]

    waiting = held(studio, cursor, news)
    wait_held(studio)
    studio.ann.post(f"/api/jobs/{job['id']}/status", json={"status": "cancel"})
    waiting.join(10)
    r = waiting.result
    assert r.status_code == 304 and "cancel" in r.headers[NEWS_KINDS_HEADER].split(",")
    news = r.headers[NEWS_HEADER]

    waiting = held(studio, cursor, news, seconds=0.3)
    waiting.join(10)
    r = waiting.result
    assert r.status_code == 304 and r.headers[NEWS_KINDS_HEADER] == "" and r.headers[NEWS_HEADER] == news
    assert studio.server.ctx.news.held() == 0


def test_a_manager_holds_one_request_and_the_server_answers_when_it_stops(studio):
    r = studio.manager.get(P(studio, "depsgraph"))
    cursor, news = r.headers[LAST_UPDATED], r.headers[NEWS_HEADER]
    older = held(studio, cursor, news)
    wait_held(studio)
    newer = held(studio, cursor, news)
    older.join(10)
    assert older.result.status_code == 304, "a second request of the same Manager lets the first go"
    wait_held(studio)
    studio.server.ctx.news.close()  # what stopping the Server does first
    newer.join(10)
    assert newer.result.status_code == 304
    r = studio.manager.get(P(studio, "depsgraph"), headers={IF_UPDATED_SINCE: cursor, NEWS_HEADER: news,
                                                         LONG_POLL_HEADER: "10"})
    assert r.status_code == 304, "a stopping Server holds nothing"


def test_what_tasks_need_reaches_the_manager_and_workers_show_every_task_they_run(studio):
    job = studio.ann.post("/api/jobs", json={
        "name": "gpu shot", "type": "blender-render", "project": "film",
        "settings": {"filepath": "/shared/a.blend", "frames": "1-2", "render_output": "/render/a/######",
                     "gpu": True}}).json()
    assert "id" in job, job
    docs = {t["name"]: t for t in studio.manager.get(P(studio, "depsgraph")).json()["depsgraph"]}
    assert docs["blender-render-1"]["needs"] == docs["blender-render-2"]["needs"] == "gpu"
    assert "needs" not in docs["move-to-final"], "its task type's default"
    assert studio.ann.get(f"/api/tasks/{docs['blender-render-1']['_id']}").json()["needs"] == "gpu"

    running = [{"id": docs["blender-render-1"]["_id"], "job": job["id"], "name": "blender-render-1", "needs": "gpu"},
               {"id": docs["blender-render-2"]["_id"], "job": job["id"], "name": "blender-render-2", "needs": "gpu"},
               {"id": "local-1", "job": "local-job", "name": "a Manager-local test task", "needs": "light"}]
    r = studio.manager.post(P(studio, "task-update-batch"), json={"updates": [
        update("s1", running[0]["id"], "active"), update("s2", running[1]["id"], "active")]})
    assert r.status_code == 200, r.text
    r = studio.manager.post(P(studio, "workers"), json={"workers": [
        {"_id": "w1", "nickname": "node1", "status": "awake", "current_task": running[1]["id"],
         "current_job": job["id"], "running_tasks": running}], "complete": True})
    assert r.status_code == 204
    (worker,) = studio.ann.get("/api/workers").json()["workers"]
    assert worker["running_tasks"] == [{**r, "job_name": "gpu shot"} for r in running[:2]] + [
        {**running[2], "job_name": None}], "the Server's tasks by name; a task only the Manager has as reported"
    assert worker["current_task"] == running[1]["id"] and worker["current_task_name"] == "blender-render-2"

    # A task that ended leaves the page at once, though the Manager's report still names it.
    r = studio.manager.post(P(studio, "task-update-batch"), json={"updates": [
        update("s3", running[1]["id"], "completed")]})
    assert r.status_code == 200, r.text
    (worker,) = studio.ann.get("/api/workers").json()["workers"]
    assert [t["id"] for t in worker["running_tasks"]] == [running[0]["id"], "local-1"]
    assert worker["current_task"] == "local-1", "the report's current task ended: the latest one running"
