"""Admin API actions, OpenAPI coverage, task logs, the latest image and its SSE stream (auth: test_admin_auth.py)."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
import requests

from backend.routes import openapi_path
from tests.integration.manager.manager_helpers import Worker, task_doc


def test_openapi_describes_every_route(manager):
    doc = requests.get(manager.url + "/api/openapi.json", timeout=5).json()
    assert doc["openapi"].startswith("3.")
    missing = []
    pages = set(manager.app.config["flamenco.routes"].pages)
    api_routes = [r for r in manager.app.routes if (r.method, r.rule) not in pages]
    for route in api_routes:
        path = openapi_path(route.rule)
        if route.method.lower() not in doc["paths"].get(path, {}):
            missing.append(f"{route.method} {path}")
    assert not missing, f"routes missing from the OpenAPI document: {missing}"
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, openapi_path(r.rule)) for r in api_routes}
    assert described == served, "and nothing described that is not served"
    assert requests.get(manager.url + "/openapi.json", timeout=5).json() == doc


def test_admin_worker_actions(manager, worker_factory):
    w = worker_factory()
    w.sign_on(resources={"cpu_count": 8, "mem_total_mb": 32000, "mem_free_mb": 20000, "load_avg": 0.5,
                         "disk_free_mb": 100000}, tags=["gpu"])
    manager.add_tasks(task_doc("t1"))
    assert w.fetch().status_code == 200
    assert w.update("t1", activity="rendering", task_progress_percentage=40,
                    resources={"mem_free_mb": 18000}).status_code == 204
    info = manager.admin("GET", f"/api/admin/workers/{w.id}").json()
    assert info["current_task"] == "t1" and info["current_job"] == "job1" and info["tags"] == ["gpu"]
    assert info["resources"]["mem_free_mb"] == 18000 and info["resources"]["cpu_count"] == 8 and info["last_activity"] == "rendering"
    status = manager.admin("GET", "/api/admin/status").json()
    assert status["workers"]["by_status"] == {"awake": 1} and status["tasks"]["by_status"] == {"active": 1}
    assert manager.admin("POST", f"/api/admin/workers/{w.id}/set-status",
                         json={"status": "testing"}).status_code == 400
    assert manager.admin("POST", "/api/admin/workers/nope/set-status",
                         json={"status": "asleep"}).status_code == 404
    r = manager.admin("PUT", f"/api/admin/workers/{w.id}/sleep-schedule",
                      json={"schedule_active": True, "days_of_week": "mo tu", "time_start": "09:00",
                            "time_end": "17:00"})
    assert r.status_code == 200 and r.json()["sleep_schedule"]["schedule_active"] is True
    assert manager.admin("POST", f"/api/admin/workers/{w.id}/ack-timeout").status_code == 409
    assert manager.admin("DELETE", f"/api/admin/workers/{w.id}").status_code == 204
    assert manager.admin("GET", f"/api/admin/workers/{w.id}").status_code == 404
    assert manager.admin("GET", "/api/admin/tasks").json()["tasks"][0]["status"] == "claimed-by-manager"
    assert w.fetch().status_code == 401, "a forgotten worker must register again"


def test_variables_expanded_for_the_workers_platform(manager_factory):
    m = manager_factory()
    m.add_tasks(task_doc("t", commands=[{"name": "blender_render", "settings": {
        "blender_cmd": "{blender} --factory-startup", "filepath": "{job_files}/scene.blend",
        "render_output": "{render}/shot/######", "out": "{job_output}/x", "list": ["{ffmpeg}"]}}]))
    win = Worker(m.url, platform="windows").register()
    settings = win.fetch().json()["commands"][0]["settings"]
    assert settings == {"blender_cmd": "C:/Program Files/Blender Foundation/Blender/blender.exe --factory-startup",
                        "filepath": "{job_files}/scene.blend", "render_output": "R:/shot/######",
                        "out": "{job_output}/x", "list": ["ffmpeg"]}
    stored = m.core.db.m.Task.get_by_id("t").commands[0]["settings"]
    assert stored["blender_cmd"] == "{blender} --factory-startup", "stored unexpanded"


def test_logfile_head_and_tail(manager_factory):
    m = manager_factory(logs={"serve_head_bytes": 100, "serve_tail_bytes": 100})
    m.add_tasks(task_doc("t"))
    w = Worker(m.url).register()
    w.fetch()
    w.update("t", log="\n".join(f"2024-01-01T00:00:00+00:00: line {i:04d}" for i in range(500)))
    short = m.admin("GET", "/logfile/job1/t", headers={"User-Agent": "Mozilla/5.0"}).text
    assert "bytes skipped" in short and "line 0499" in short and len(short) < 400
    full = m.admin("GET", "/logfile/job1/t", headers={"User-Agent": "curl/8.0"}).text
    assert "line 0250" in full
    assert m.admin("GET", "/logfile/job1/nope").status_code == 404


def _make_png(ffmpeg, path):
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:duration=1",
                    "-frames:v", "1", str(path)], check=True)


def test_latest_image_from_output_produced_and_sse(manager, worker_factory, ffmpeg_exe, tmp_path):
    manager.config.latest_image.ffmpeg = ffmpeg_exe
    manager.core.start_loops()
    events = []
    ready = threading.Event()

    def listen():
        with manager.admin("GET", "/imagewatch", stream=True, timeout=20) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            for line in r.iter_lines(decode_unicode=True):
                ready.set()
                if line.startswith("event: image"):
                    events.append(line)
                    return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    assert ready.wait(5)
    frame = tmp_path / "frame_0001.png"
    _make_png(ffmpeg_exe, frame)
    w = worker_factory()
    assert w.post("/output-produced", json={"paths": [str(frame)]}).status_code == 204
    t.join(15)
    assert events, "an SSE 'image' event arrived"
    r = manager.admin("GET", "/latest-image.jpg")
    assert r.status_code == 200 and r.content[:3] == b"\xff\xd8\xff"
    assert manager.admin("GET", "/latest-image").json()["source"] == str(frame)


def test_latest_image_from_watched_directory_exr(manager_factory, ffmpeg_exe, tmp_path):
    watch = tmp_path / "watch"
    (watch / "shot").mkdir(parents=True)
    m = manager_factory(latest_image={"watch_dir": str(watch), "ffmpeg": ffmpeg_exe})
    m.core.start_loops()
    exr = tmp_path / "frame.exr"
    made = subprocess.run([ffmpeg_exe, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:duration=1",
                           "-frames:v", "1", "-pix_fmt", "gbrpf32le", "-c:v", "exr", str(exr)])
    if made.returncode != 0:
        pytest.skip("this FFmpeg cannot write EXR to make the test image")
    (watch / "shot" / "frame.exr").write_bytes(exr.read_bytes())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not m.core.latest_image.out_path.exists():
        time.sleep(0.1)
    assert m.core.latest_image.out_path.read_bytes()[:3] == b"\xff\xd8\xff"
    assert m.core.latest_image.source.endswith("frame.exr")


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(manager_factory):
    """Without a trusted proxy, a client cannot claim to be on loopback (or anywhere)."""
    m = manager_factory(trusted_proxies=["10.9.9.9"])
    w = Worker(m.url).register(headers={"X-Forwarded-For": "10.1.2.3"})
    assert m.core.workers.get(w.id).address == "127.0.0.1"
    trusting = manager_factory(sub="trusting", trusted_proxies=["127.0.0.1"])
    w = Worker(trusting.url).register(headers={"X-Forwarded-For": "10.1.2.3"})
    assert trusting.core.workers.get(w.id).address == "10.1.2.3"
