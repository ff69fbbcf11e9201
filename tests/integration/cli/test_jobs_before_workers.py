"""Issue 10, point 2, on a real farm: a job submitted before any worker can run it is accepted
and waits, saying why in the API and the `flamenco` CLI (submit, jobs, job, watch); it runs
as soon as such a worker signs on, and the reason is gone.

Server and Manager are processes (`flamenco_cli.farm.Farm`, what `flamenco farm` runs), the
worker a `flamenco-worker` process started later; the Manager tells the Server about the
worker's task types and tags the way it always does (update notification, worker report).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from flamenco_cli.farm import Farm
from tests.conftest import ROOT


def flamenco(farm_dir, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flamenco_cli.main", "--farm", str(farm_dir), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture
def farm_without_workers(tmp_path):
    farm = Farm(tmp_path / "farm", port=0, workers=0, worker_args=["--tags", "gpu", "--long-poll", "2"])
    try:
        info = farm.start()
        auth = {"Authorization": f"Bearer {info['admin_token']}"}
        deadline = time.monotonic() + 30
        while True:  # the Manager's startup notification reached the Server
            managers = requests.get(info["server_url"] + "/api/managers", headers=auth, timeout=5).json()["managers"]
            if managers and managers[0]["link_health"] == "online":
                break
            assert time.monotonic() < deadline, managers
            time.sleep(0.2)
        yield farm, info, auth
    finally:
        farm.stop()


def test_jobs_wait_for_a_worker_then_run_when_one_signs_on(farm_without_workers):
    farm, info, auth = farm_without_workers
    first = flamenco(farm.data_dir, "submit", "sleep", "-s", "frames=1-2", "-s", "time_in_seconds=0",
                     "--name", "before any worker")
    assert first.returncode == 0, first.stderr
    assert "(queued: waiting for a worker that runs sleep)" in first.stdout, first.stdout
    job_id = first.stdout.split()[2]
    tagged = flamenco(farm.data_dir, "submit", "sleep", "-s", "frames=1", "-s", "time_in_seconds=0",
                      "--worker-tag", "gpu", "--name", "for a gpu")
    assert tagged.returncode == 0, tagged.stderr
    assert "waiting for a worker that runs sleep; no worker has tag gpu" in tagged.stdout
    tagged_id = tagged.stdout.split()[2]

    listed = flamenco(farm.data_dir, "jobs").stdout
    assert "(waiting for a worker that runs sleep)" in listed and "no worker has tag gpu" in listed
    shown = flamenco(farm.data_dir, "job", job_id).stdout
    assert "reason: waiting for a worker that runs sleep" in shown
    doc = requests.get(f"{info['server_url']}/api/jobs/{job_id}", headers=auth, timeout=5).json()
    assert doc["status"] == "queued" and doc["status_reason"] == "waiting for a worker that runs sleep"

    farm.start_worker(0)  # a worker with the tag 'gpu' signs on
    for jid in (job_id, tagged_id):
        watched = flamenco(farm.data_dir, "watch", jid, "--interval", "0.3")
        assert watched.returncode == 0, watched.stdout + watched.stderr
        assert f"job {jid} completed" in watched.stdout
    done = flamenco(farm.data_dir, "job", tagged_id, "--json")
    assert json.loads(done.stdout)["job"]["status_reason"] == ""
