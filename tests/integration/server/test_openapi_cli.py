"""The OpenAPI document covers every route; the CLI creates what scripts need, and serves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from backend.server.cli import main as cli_main
from backend.routes import openapi_path

ROOT = Path(__file__).resolve().parents[3]
PAGE_ROUTES = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout"), ("GET", "/"), ("GET", "/jobs/<job_id>"),
               ("GET", "/tasks/<task_id>"), ("GET", "/workers"), ("GET", "/managers"), ("GET", "/farm"),
               ("GET", "/archive"), ("GET", "/favicon.ico"), ("GET", "/static/<path:path>")}


def test_every_route_is_in_the_openapi_document(studio, server):
    doc = studio.anon.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    missing = []
    pages = set(server.app.config["flamenco.routes"].pages)
    assert pages == PAGE_ROUTES, "the web pages, which are HTML and not in the document"
    for route in server.app.routes:
        if (route.method, route.rule) in pages:
            assert not route.rule.startswith("/api/")
            continue
        path = openapi_path(route.rule)
        if route.method.lower() not in doc["paths"].get(path, {}):
            missing.append(f"{route.method} {route.rule}")
    assert not missing, f"routes missing from /api/openapi.json: {missing}"
    assert len(server.app.routes) >= 40
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (method, path)
            for answer in op["responses"].values():
                ref = answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                if ref:
                    assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
    fixed = ["POST /api/jobs", "GET /api/jobs", "GET /api/jobs/{job_id}", "POST /api/jobs/{job_id}/status",
             "POST /api/jobs/{job_id}/priority", "GET /api/jobs/{job_id}/tasks", "GET /api/tasks/{task_id}",
             "POST /api/tasks/{task_id}/requeue", "DELETE /api/jobs/{job_id}", "GET /api/job-types",
             "POST /api/files/check", "PUT /api/files/{sha256}", "GET /api/files/{sha256}",
             "GET /api/jobs/{job_id}/outputs", "GET /api/jobs/{job_id}/log", "GET /api/workers",
             "GET /api/managers", "GET /api/openapi.json", "POST /api/auth/login", "GET /api/version",
             "GET /api/me", "GET /api/projects"]
    for entry in fixed:
        method, path = entry.split(" ")
        assert method.lower() in doc["paths"][path], entry


def run_cli(capsys, *argv) -> dict:
    assert cli_main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_creates_users_projects_managers(tmp_path, capsys):
    d = ["--data-dir", str(tmp_path / "data")]
    project = run_cli(capsys, "create-project", "film", *d, "--json")
    assert project["name"] == "film" and len(project["id"]) == 32
    user = run_cli(capsys, "create-user", "ann", "--project", "film", "--password", "secret-pw-1", *d, "--json")
    assert user["role"] == "artist" and user["projects"] == ["film"] and "." in user["token"]
    boss = run_cli(capsys, "create-user", "boss", "--admin", *d, "--json")
    assert boss["role"] == "admin"
    manager = run_cli(capsys, "create-manager", "m1", *d, "--json")
    assert set(manager) >= {"id", "name", "token"}
    link = run_cli(capsys, "link-manager", "m1", "film", *d, "--json")
    assert link["manager"] == manager["id"] and link["project"] == project["id"]
    assert cli_main(["create-user", "plain", *d]) == 0
    token = capsys.readouterr().out.strip()
    assert "." in token and " " not in token
    assert cli_main(["create-user", "ann", *d]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli_main(["link-manager", "m9", "film", *d]) == 1
    assert "no manager 'm9'" in capsys.readouterr().err
    assert cli_main(["create-user", "x"]) == 2
    assert "--data-dir" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_subprocess(tmp_path, capsys):
    data = tmp_path / "data"
    admin = run_cli(capsys, "create-user", "boss", "--admin", "--data-dir", str(data), "--json")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "backend.server.cli", "serve", "--data-dir", str(data),
                             "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(f"{url}/api/version", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        me = requests.get(f"{url}/api/me", headers={"Authorization": f"Bearer {admin['token']}"}, timeout=5)
        assert me.json()["name"] == "boss"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "listening on" in out


def _serve(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "backend.server.cli", "serve", "--data-dir", str(data),
                             "--listen", f"127.0.0.1:{port}"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(200):
        try:
            if requests.get(f"http://127.0.0.1:{port}/api/version", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the Server did not start: {proc.communicate()[0]}")


def test_a_server_killed_while_storing_a_big_job_stores_the_rest_when_it_starts_again(tmp_path, capsys):
    """The job answers with its first tasks stored; the process dies before the rest is written
    (the storer waits for a first task to start, and no Manager runs here); the next start goes on."""
    data = tmp_path / "data"
    d = ["--data-dir", str(data), "--json"]
    run_cli(capsys, "create-project", "film", *d)
    boss = run_cli(capsys, "create-user", "boss", "--admin", *d)
    run_cli(capsys, "create-manager", "m1", "--project", "film", *d)
    port = free_port()
    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {boss['token']}"}
    proc = _serve(data, port)
    try:
        r = requests.post(f"{url}/api/jobs", headers=auth, timeout=30, json={
            "name": "big", "type": "sleep", "project": "film",
            "settings": {"frames": "1-30000", "chunk_size": 1, "time_in_seconds": 0}})
        assert r.status_code == 201, r.text
        job = r.json()
        proc.kill()  # SIGKILL: no drain
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (job["status"], job["tasks_total"], job["tasks_to_store"]) == ("queued", 30000, 29000)

    proc = _serve(data, port)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            doc = requests.get(f"{url}/api/jobs/{job['id']}", headers=auth, timeout=10).json()
            if doc["tasks_to_store"] == 0:
                break
            time.sleep(0.2)
        assert (doc["tasks_total"], doc["tasks_to_store"], doc["task_counts"]) == (30000, 0, {"queued": 30000})
        tasks = requests.get(f"{url}/api/jobs/{job['id']}/tasks", headers=auth, timeout=10,
                             params={"status": "queued", "limit": 2, "offset": 29998}).json()
        assert tasks["total"] == 30000 and [t["name"] for t in tasks["tasks"]] == ["sleep-29999", "sleep-30000"]
        log = requests.get(f"{url}/api/jobs/{job['id']}/log", headers=auth, timeout=10).json()["entries"]
        assert log[-1]["what"] == "all 30000 tasks stored"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "storing the rest of the tasks of 1 job(s)" in out
