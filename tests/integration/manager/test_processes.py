"""Real processes: `flamenco-server serve` and `flamenco-manager serve` started from their CLIs,
a worker speaking the protocol, a job from submission to completed. Also the Manager's
restart: held tasks and the upstream queue survive it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.integration.manager.manager_helpers import Worker, free_port

BIN = Path(sys.executable).parent


def _cli(name, *args, **kw):
    exe = BIN / name
    if not exe.exists():
        pytest.skip(f"{name} is not installed in this environment")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60, **kw)


def _wait_http(url, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


class Proc:
    def __init__(self, args, log_path, env=None):
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.log.close()


@pytest.fixture
def process_farm(tmp_path):
    """Server and Manager as processes started from their CLIs, with a project, an artist and the
    Manager's account; `start_manager` starts the Manager again after a stop."""
    if not (BIN / "flamenco-server").exists():
        pytest.skip("flamenco-server is not installed")
    sdir = tmp_path / "server"
    proj = json.loads(_cli("flamenco-server", "create-project", "--data-dir", str(sdir), "--json", "proj").stdout)
    user = json.loads(_cli("flamenco-server", "create-user", "--data-dir", str(sdir), "--json", "artist",
                           "--project", "proj").stdout)
    mgr = json.loads(_cli("flamenco-server", "create-manager", "--data-dir", str(sdir), "--json", "mgr",
                          "--project", "proj").stdout)
    sport, mport = free_port(), free_port()
    procs = []
    server = Proc([str(BIN / "flamenco-server"), "serve", "--data-dir", str(sdir), "--listen",
                   f"127.0.0.1:{sport}"], tmp_path / "server.log")
    procs.append(server)
    server_url = f"http://127.0.0.1:{sport}"
    _wait_http(server_url + "/api/version")
    mdir = tmp_path / "manager"

    def start_manager():
        m = Proc([str(BIN / "flamenco-manager"), "serve", "--data-dir", str(mdir), "--listen",
                  f"127.0.0.1:{mport}", "--server", server_url, "--manager-id", mgr["id"], "--threads", "24"],
                 tmp_path / "manager.log",
                 env={"FLAMENCO_MANAGER_TOKEN": mgr["token"], "FLAMENCO_REGISTRATION_SECRET": "psk"})
        procs.append(m)
        _wait_http(f"http://127.0.0.1:{mport}/")
        return m

    farm = {"server_url": server_url, "manager_url": f"http://127.0.0.1:{mport}", "project": proj,
            "user": user, "start_manager": start_manager, "env_token": mgr["token"]}
    try:
        farm["manager"] = start_manager()  # its secrets go by environment, never on its command line
        yield farm
    finally:
        for p in reversed(procs):
            p.stop()


def test_job_runs_through_real_processes_and_survives_a_manager_restart(process_farm):
    from backend.manager.worker_auth import make_hs256_jwt
    murl, surl = process_farm["manager_url"], process_farm["server_url"]
    user = requests.Session()
    user.headers["Authorization"] = f"Bearer {process_farm['user']['token']}"
    w = Worker(murl, task_types=["sleep"])
    w.register(headers={"Authorization": "Bearer " + make_hs256_jwt({"exp": time.time() + 900}, "psk")})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the Manager's update notification carries the task types
        r = user.post(surl + "/api/jobs", json={"name": "j", "type": "sleep", "project": "proj",
                                                "settings": {"frames": "1-4", "chunk_size": 1,
                                                             "time_in_seconds": 0}}, timeout=10)
        if r.status_code != 409 and r.status_code != 400:
            break
        time.sleep(0.3)
    assert r.status_code in (200, 201), r.text
    job_id = r.json()["id"]

    r = w.fetch(long_poll=10)
    assert r.status_code == 200
    first = r.json()["_id"]
    assert w.update(first, task_status="completed", task_progress_percentage=100).status_code == 204

    # Restart the Manager: the tasks it holds and what it still has to send stay in its database.
    process_farm["manager"].stop()
    process_farm["manager"] = process_farm["start_manager"]()
    done = {first}
    while len(done) < 4:
        r = w.fetch(long_poll=5)
        assert r.status_code == 200, r.text
        tid = r.json()["_id"]
        assert w.update(tid, task_status="completed", task_progress_percentage=100).status_code == 204
        done.add(tid)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if user.get(surl + f"/api/jobs/{job_id}", timeout=5).json()["status"] == "completed":
            break
        time.sleep(0.3)
    assert user.get(surl + f"/api/jobs/{job_id}", timeout=5).json()["status"] == "completed"
    workers = user.get(surl + "/api/workers", timeout=5)
    assert workers.status_code == 200
    assert [x["status"] for x in workers.json()["workers"] if x["id"] == w.id] == ["awake"]
