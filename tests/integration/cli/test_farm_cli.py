"""The `flamenco` CLI against a real `flamenco farm`: Server, Manager and a worker as processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.conftest import ROOT


def flamenco(*args: str, farm: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flamenco_cli.main", "--farm", str(farm), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


REGISTRATION_SECRET = "farm-registration-psk-42"


@pytest.fixture(scope="module")
def cli_farm(tmp_path_factory):
    data = tmp_path_factory.mktemp("farm")
    proc = subprocess.Popen([sys.executable, "-m", "flamenco_cli.main", "farm", "--data-dir", str(data),
                             "--port", "0", "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "FLAMENCO_REGISTRATION_SECRET": REGISTRATION_SECRET})
    deadline = time.monotonic() + 60
    while not (data / "farm.json").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "farm.json never appeared"
        time.sleep(0.2)
    info = json.loads((data / "farm.json").read_text())
    # Wait until the worker signed on, so jobs start without delay.
    auth = {"Authorization": f"Bearer {info['admin_token']}"}
    while time.monotonic() < deadline:
        workers = requests.get(info["server_url"] + "/api/workers", headers=auth, timeout=5).json()
        workers = workers.get("workers", workers) if isinstance(workers, dict) else workers
        if any(w.get("status") == "awake" for w in workers):
            break
        time.sleep(0.2)
    yield data, info, proc
    # SIGTERM: the farm stops its Server, Manager and worker; SIGKILL would leave them running.
    children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        if child.is_running():
            child.kill()


def test_farm_json_has_the_documented_keys(cli_farm):
    data, info, _ = cli_farm
    assert set(info) >= {"server_url", "manager_url", "admin_token", "registration_secret"}
    assert info["registration_secret"] == REGISTRATION_SECRET
    assert requests.get(info["server_url"] + "/api/version", timeout=5).ok


def test_no_secret_on_any_command_line(cli_farm):
    """`ps` shows every user the command lines: the farm passes its children their secrets by environment."""
    data, info, proc = cli_farm
    state = json.loads((data / "farm-state.json").read_text())
    secrets = {"manager token": state["manager_token"], "registration secret": REGISTRATION_SECRET,
               "server admin token": info["admin_token"]}
    children = psutil.Process(proc.pid).children(recursive=True)
    assert {"backend.manager.cli", "worker.cli", "backend.server.cli"} <= {
        part for c in children for part in c.cmdline()}, "the farm's processes"
    for child in children:
        line = " ".join(child.cmdline())
        for name, value in secrets.items():
            assert value not in line, f"the {name} is on the command line of {line}"
    manager = next(c for c in children if "backend.manager.cli" in c.cmdline())
    assert manager.environ()["FLAMENCO_MANAGER_TOKEN"] == state["manager_token"]
    assert "manager_admin_token" not in state, "no admin token the admin did not ask for"
    admin = requests.get(info["manager_url"] + "/api/admin/status", timeout=5)
    assert admin.status_code == 403 and "set-admin-password" in admin.json()["message"]


def test_submit_and_watch_until_completed(cli_farm):
    data, info, _ = cli_farm
    result = flamenco("submit", "sleep", "-s", "frames=1-4", "-s", "chunk_size=2", "-s", "time_in_seconds=0",
                      "--name", "cli sleep", "--watch", farm=data)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[2]
    assert f"job {job_id} completed" in result.stdout
    assert "100%" in result.stderr  # the progress bar reached the end

    shown = flamenco("job", job_id, "--json", farm=data)
    doc = json.loads(shown.stdout)
    assert doc["job"]["status"] == "completed"
    assert sorted(t["name"] for t in doc["tasks"]) == ["sleep-1-2", "sleep-3-4"]
    assert all(t["status"] == "completed" for t in doc["tasks"])

    listed = flamenco("jobs", farm=data)
    assert job_id in listed.stdout and "completed" in listed.stdout


def test_cancel_a_running_job(cli_farm):
    data, info, _ = cli_farm
    result = flamenco("submit", "sleep", "-s", "frames=1-2", "-s", "chunk_size=1", "-s", "time_in_seconds=30",
                      farm=data)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.split()[2]
    auth = {"Authorization": f"Bearer {info['admin_token']}"}
    deadline = time.monotonic() + 30
    while requests.get(f"{info['server_url']}/api/jobs/{job_id}", headers=auth, timeout=5).json()["status"] != "active":
        assert time.monotonic() < deadline, "the job never became active"
        time.sleep(0.2)
    assert flamenco("cancel", job_id, farm=data).returncode == 0
    watched = flamenco("watch", job_id, "--interval", "0.2", farm=data, timeout=60)
    assert watched.returncode == 1
    assert f"job {job_id} canceled" in watched.stdout


def test_bad_input_is_a_clear_error(cli_farm):
    data, _, _ = cli_farm
    result = flamenco("submit", "sleep", "-s", "frames=5-1", farm=data)
    assert result.returncode == 2
    assert "frames" in result.stderr
    result = flamenco("submit", "no-such-type", farm=data)
    assert result.returncode == 2 and "unknown job type" in result.stderr
    result = flamenco("submit", "sleep", "-s", "colour=red", farm=data)
    assert result.returncode == 2 and "unknown setting 'colour'" in result.stderr
    result = flamenco("job", "nope", farm=data)
    assert result.returncode == 2


def test_wrong_token_is_reported(cli_farm):
    data, info, _ = cli_farm
    result = subprocess.run([sys.executable, "-m", "flamenco_cli.main", "--server", info["server_url"],
                             "--token", "wrong", "jobs"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert "refused the token" in result.stderr


def test_outputs_of_an_upload_mode_job_are_listed_and_downloaded(cli_farm, tmp_path):
    data, info, _ = cli_farm
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {info['admin_token']}"
    text = b"made from an uploaded file\n"
    sha = hashlib.sha256(text).hexdigest()
    assert s.put(f"{info['server_url']}/api/files/{sha}", data=text, timeout=10).status_code in (200, 201)
    r = s.post(info["server_url"] + "/api/jobs", timeout=10, json={
        "name": "copy", "type": "exec-command", "files": {"in/a.txt": {"sha256": sha, "size": len(text)}},
        "settings": {"cmd": "sh -c 'mkdir -p {job_output}/out && cp {job_files}/in/a.txt {job_output}/out/copy.txt'"}})
    assert r.status_code == 201, r.text
    job = r.json()
    result = flamenco("watch", job["id"], farm=data, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = flamenco("outputs", job["id"], farm=data)
    assert listed.returncode == 0 and "out/copy.txt" in listed.stdout and str(len(text)) in listed.stdout
    got = flamenco("outputs", job["id"], "--dest", str(tmp_path / "dl"), farm=data)
    assert got.returncode == 0 and "1 of 1 output(s) downloaded" in got.stdout, got.stdout + got.stderr
    assert (tmp_path / "dl" / "out" / "copy.txt").read_bytes() == text
    again = flamenco("outputs", job["id"], "--dest", str(tmp_path / "dl"), farm=data)
    assert "0 of 1 output(s) downloaded" in again.stdout


def test_ctrl_c_stops_everything(cli_farm):
    data, info, proc = cli_farm
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 3
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive
    with pytest.raises(requests.ConnectionError):
        requests.get(info["server_url"] + "/api/version", timeout=2)
    worker_log = (data / "logs" / "worker-1.log").read_text()
    assert "signed off" in worker_log.lower() or "sign-off" in worker_log.lower()
