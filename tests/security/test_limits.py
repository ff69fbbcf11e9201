"""Length limits (issue 12, 9): no text the services store or log is unbounded, and a refusal reaches
whoever sent it as a clear error (the worker's side: tests/integration/worker/test_worker_upload_mode.py)."""

from __future__ import annotations

import requests

from tests.security.security_helpers import TASK_TYPES, sha

MB = "x" * (1024 * 1024)


def test_the_server_refuses_megabyte_texts_from_users(farm):
    ann, boss = farm.client("ann"), farm.client("boss")
    base = {"name": "job", "type": "sleep", "project": "film", "settings": {"frames": "1"}}
    for change in ({"name": MB}, {"type": MB}, {"project": MB}, {"manager": MB}, {"worker_tag": MB},
                   {"metadata": {"note": MB}}, {"settings": {"frames": "1", "time_in_seconds": 1, "x": MB}},
                   {"depends_on": [farm.ids["film_job"]] * 1000}):
        r = ann.post("/api/jobs", json={**base, **change})
        assert r.status_code == 400, (list(change), r.status_code)
        assert len(r.text) < 2000, "the refusal does not echo the megabyte"
    r = ann.post("/api/jobs", json={"name": "r", "type": "blender-render", "project": "film",
                                    "settings": {"filepath": "/s/" + MB + ".blend", "frames": "1",
                                                 "render_output": "/s/o/####"}})
    assert r.status_code == 400 and "filepath" in r.json()["message"] and len(r.text) < 2000
    r = ann.post(f"/api/jobs/{farm.ids['film_job']}/status", json={"status": "pause", "reason": MB})
    assert r.status_code == 400
    for path, body in (("/api/users", {"name": MB}), ("/api/projects", {"name": "p", "description": MB}),
                       ("/api/users", {"name": "zed", "password": MB}), ("/api/managers", {"name": MB})):
        r = boss.post(path, json=body)
        assert r.status_code == 400, (path, r.status_code)
    assert ann.post("/api/auth/tokens", json={"label": MB}).status_code == 400
    r = requests.post(farm.url + "/api/auth/login", json={"username": MB, "password": "x"}, timeout=30)
    assert r.status_code == 400


def test_the_server_refuses_megabyte_texts_from_managers(farm):
    m1, mid = farm.manager("m1"), farm.managers["m1"][0]
    r = m1.post(f"/api/managers/{mid}/workers", json={"workers": [{"_id": "w1", "nickname": MB, "status": "awake"}]})
    assert r.status_code == 400 and "nickname" in r.json()["message"]
    r = m1.post(f"/api/managers/{mid}/update", json={"_meta": {"version": 2}, "manager_url": "http://m",
                                                      "worker_task_types": ["x" * 101] + TASK_TYPES})
    assert r.status_code == 400
    r = m1.post(f"/api/managers/{mid}/update", json={"_meta": {"version": 2}, "manager_url": "http://m",
                                                      "worker_task_types": TASK_TYPES, "variables": {"v": MB}})
    assert r.status_code == 400
    r = m1.post(f"/api/managers/{mid}/workers", json={"workers": [
        {"_id": "w1", "nickname": "node", "status": "awake", "current_task": "t" * 90, "last_seen": "2" * 40}]})
    assert r.status_code == 204, "what fits the document but not a column is cut, not a 500"


def test_a_task_update_is_cut_to_what_the_server_keeps(farm):
    m1 = farm.manager("m1")
    task = farm.ids["film_task"]
    r = m1.post(farm.mpath("m1", "task-update-batch"), json={"updates": [{
        "_id": "u-long", "task_id": task, "received_on_manager": "2024-01-01T00:00:00Z", "worker": "w" * 5000,
        "task_status": "active", "activity": "a" * 9000, "log": ("l" * 100_000 + "\n") * 3,
        "metrics": {"big": "m" * 100_000}}]})
    assert r.status_code == 200, r.text
    doc = farm.client("ann").get(f"/api/tasks/{task}").json()
    assert len(doc["worker"]) <= 200 and len(doc["activity"]) <= 2000 and len(doc["log_tail"]) <= 8192
    assert doc["metrics"] is None or len(str(doc["metrics"])) < 70_000


def test_a_long_output_path_is_refused_clearly(farm):
    data = b"frame"
    for relpath, words in (("a/" * 2500 + "f.png", "at most 1024"), ("n" * 300 + ".png", "over 255 bytes")):
        r = farm.manager("m1").put(farm.mpath("m1", f"jobs/{farm.ids['film_job']}/outputs/{relpath}"),
                                   params={"task": farm.ids["film_task"]}, data=data,
                                   headers={"X-Flamenco-SHA256": sha(data)})
        assert r.status_code == 400 and r.json()["code"] == "invalid_path" and words in r.json()["message"], r.text
        assert len(r.text) < 500


def test_the_manager_refuses_megabyte_nicknames(manager):
    r = requests.post(manager.url + "/register-worker", json={
        "secret": "s" * 64, "platform": "linux", "supported_task_types": ["sleep"], "nickname": MB}, timeout=30)
    assert r.status_code == 400 and "nickname" in r.json()["message"] and len(r.text) < 500
    r = manager.w1.session.post(manager.url + "/sign-on", json={"nickname": MB}, timeout=30)
    assert r.status_code == 400
    r = requests.post(manager.url + "/register-worker", json={
        "secret": "s" * 64, "platform": "linux", "supported_task_types": [f"t{i}" for i in range(1000)],
        "nickname": "n"}, timeout=30)
    assert r.status_code == 400


def test_the_manager_refuses_output_paths_the_server_refuses(manager):
    data = b"frame"
    r = manager.w1.session.put(f"{manager.url}/jobs/{manager.job_id}/outputs/{'n' * 300}.png",
                               params={"task": manager.task_id}, data=data,
                               headers={"X-Flamenco-SHA256": sha(data)}, timeout=10)
    assert r.status_code == 400, r.text
