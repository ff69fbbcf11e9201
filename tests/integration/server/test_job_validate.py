"""POST /api/jobs/validate: every check of a submission, before any file is uploaded, storing nothing."""

from __future__ import annotations

import hashlib

from tests.integration.server.server_it_helpers import sleep_job


def still(**settings):
    return {"name": "poster", "type": "blender-render-still", "project": "film",
            "settings": {"filepath": "scene.blend", "frame": 7, "render_output": "stills/poster-####", **settings}}


def job_count(studio) -> int:
    return studio.ann.get("/api/jobs").json()["total"]


def test_a_job_is_checked_before_its_files_are_packed(studio):
    studio.manager.post(f"/api/managers/{studio.manager_id}/update", json={
        "_meta": {"version": 2}, "manager_url": "http://m1.local:8083", "nr_of_workers": 2,
        "worker_task_types": ["blender-render", "exr-merge", "file-management", "video-encoding", "sleep"]})
    before = job_count(studio)
    r = studio.ann.post("/api/jobs/validate", json={**still(), "files_mode": "upload"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["valid"] is True and got["files_mode"] == "upload" and got["manager"] == "m1"
    assert got["tasks"] == 5 and got["task_types"] == ["blender-render", "exr-merge"]
    assert got["settings"]["strategy"] == "tiles" and got["missing_files"] == []
    # The same settings on shared storage need shared paths, and say so naming the setting.
    r = studio.ann.post("/api/jobs/validate", json=still())
    assert r.status_code == 400 and r.json()["code"] == "invalid_setting"
    assert r.json()["message"].startswith("setting 'render_output': must be an absolute path")
    # A path that leaves the job is refused in upload mode, before anything is uploaded.
    r = studio.ann.post("/api/jobs/validate", json={**still(render_output="{render}/x-####"), "files_mode": "upload"})
    assert r.status_code == 400 and r.json()["message"].startswith("setting 'render_output': ")
    r = studio.ann.post("/api/jobs/validate", json={**still(), "files_mode": "nas"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_field"
    assert job_count(studio) == before, "validating stores nothing"


def test_files_not_uploaded_yet_are_listed(studio):
    blend = b"BLENDER-v300 not uploaded"
    entry = {"sha256": hashlib.sha256(blend).hexdigest(), "size": len(blend)}
    body = {"name": "r", "type": "blender-render", "project": "film", "files": {"shots/scene.blend": entry},
            "settings": {"filepath": "shots/scene.blend", "frames": "1-3", "render_output": "frames/######",
                         "create_video": True, "fps": 24, "format": "PNG"}}
    got = studio.ann.post("/api/jobs/validate", json=body).json()
    assert got["missing_files"] == ["shots/scene.blend"] and got["tasks"] == 5
    assert got["task_types"] == ["blender-render", "file-management", "video-encoding"]
    r = studio.ann.post("/api/jobs", json=body)
    assert r.status_code == 400 and r.json()["code"] == "file_missing"
    # A .blend that is not in the manifest is named.
    body["settings"]["filepath"] = "other.blend"
    r = studio.ann.post("/api/jobs/validate", json=body)
    assert r.status_code == 400 and "'other.blend' is not one of the job's uploaded files" in r.json()["message"]
    # 'files_mode' is only for checking.
    r = studio.ann.post("/api/jobs", json={**sleep_job(), "files_mode": "shared"})
    assert r.status_code == 400 and r.json()["code"] == "unknown_field"


def test_validating_needs_a_user_and_a_visible_project(studio):
    assert studio.anon.post("/api/jobs/validate", json=sleep_job()).status_code == 401
    r = studio.bob.post("/api/jobs/validate", json=sleep_job())
    assert r.status_code == 400 and r.json()["code"] in ("not_a_member", "unknown_project")
