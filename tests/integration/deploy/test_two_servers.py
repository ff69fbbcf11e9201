"""Two Server processes on one PostgreSQL database and one shared data directory, behind nginx
(deploy/nginx/flamenco-server.conf with both in its upstream), a real Manager linked through nginx
and a real worker running a sleep job.

A job is submitted through Server A, which is killed with SIGKILL while the job runs; the job
completes through Server B with nothing lost: every task completed once, the job's log whole, the
Manager's queue of updates drained, and what A stored (an uploaded file, a web sign-in) served by B.
The Manager is not told anything: it only knows nginx's URL.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal

import pytest
import requests

from tests.integration.deploy.deploy_helpers import (Nginx, Proc, free_port, make_certificate, seed_server,
                                                     site_config, start_manager, start_server, start_worker,
                                                     wait_until)
from tests.unit.server.server_testdb import postgres_schema

MANAGER_CONFIG = """
[upstream]
fetch_interval = 1.0
backoff_initial = 0.2
backoff_max = 1.0
request_timeout = 5.0
"""


@pytest.fixture
def shared_database(postgres_url):
    """An empty schema of the test database for the two Servers, dropped afterwards."""
    with postgres_schema(postgres_url) as url:
        yield url


def served_by(log: str, what: str, port: int) -> bool:
    """Whether nginx's log (format `upstreams`) has a request containing `what` answered by that port."""
    return any(what in line and line.endswith(f"upstream=127.0.0.1:{port}") for line in log.splitlines())


def test_a_job_submitted_through_a_server_killed_mid_job_completes_through_the_other(tmp_path, shared_database):
    cert, key = make_certificate(tmp_path)
    ports = {n: free_port() for n in ("a", "b", "https", "http", "manager")}
    shared = tmp_path / "shared-data"  # as an NFS mount would be: both Servers' --data-dir
    ids = seed_server(shared, database=shared_database)
    nginx = Nginx(tmp_path / "nginx", {"flamenco-server": site_config(
        "flamenco-server", ports["https"], cert, key, [ports["a"], ports["b"]], 8080, redirect_port=ports["http"])})
    proxy = f"https://localhost:{ports['https']}"
    a_url = f"http://127.0.0.1:{ports['a']}"
    trust = {"REQUESTS_CA_BUNDLE": str(cert)}
    procs: list[Proc] = []
    try:
        a = start_server("server-a", shared, ports["a"], tmp_path, shared_database)
        b = start_server("server-b", shared, ports["b"], tmp_path, shared_database)
        procs += [a, b]
        for url in (a_url, f"http://127.0.0.1:{ports['b']}"):
            wait_until(f"{url}", lambda u=url: requests.get(u + "/api/version", timeout=2).ok, procs=procs)
        nginx.start(ports["https"])
        manager_url = f"http://127.0.0.1:{ports['manager']}"
        procs.append(start_manager(tmp_path / "manager", ports["manager"], proxy, manager_url, ids, tmp_path,
                                   env=trust, config=MANAGER_CONFIG))
        wait_until("the Manager", lambda: requests.get(manager_url, timeout=2).ok, procs=procs)
        procs.append(start_worker(manager_url, tmp_path / "worker", tmp_path))

        ann = requests.Session()
        ann.headers["Authorization"] = f"Bearer {ids['ann_token']}"
        blob = os.urandom(300_000)
        sha = hashlib.sha256(blob).hexdigest()
        assert ann.put(f"{a_url}/api/files/{sha}", data=blob, timeout=30).status_code == 201
        browser = requests.Session()
        page = browser.get(a_url + "/login", timeout=30).text
        token = re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)
        assert browser.post(a_url + "/login", data={"username": "ann", "password": "ann-secret-pw",
                                                    "login_csrf": token}, allow_redirects=False,
                            timeout=30).status_code == 303

        def submit():
            r = ann.post(a_url + "/api/jobs", timeout=30, json={
                "name": "survives", "type": "sleep", "project": "film",
                "settings": {"frames": "1-12", "chunk_size": 1, "time_in_seconds": 0.5}})
            return r.json() if r.status_code == 201 else None
        job = wait_until("the Manager to announce the worker's task types", submit, timeout=60, procs=procs)

        def completed_tasks():
            tasks = ann.get(f"{a_url}/api/jobs/{job['id']}/tasks", timeout=10).json()["tasks"]
            return sum(t["status"] == "completed" for t in tasks)
        wait_until("a few tasks done", lambda: completed_tasks() >= 3, timeout=60, procs=procs)
        assert served_by(nginx.access_log(), "/api/managers/", ports["a"]), "A served the Manager too"
        a.kill(signal.SIGKILL)
        procs.remove(a)
        killed_at = len(nginx.access_log())

        def job_doc():
            return requests.get(f"{proxy}/api/jobs/{job['id']}", headers=ann.headers, timeout=10, verify=str(cert)).json()
        done = wait_until("the job to complete through B", lambda: job_doc()["status"] == "completed" and job_doc(),
                          timeout=120, procs=procs)
        assert done["tasks_total"] == 12

        via = dict(headers=ann.headers, timeout=10, verify=str(cert))
        tasks = requests.get(f"{proxy}/api/jobs/{job['id']}/tasks", **via).json()["tasks"]
        assert [t["status"] for t in tasks] == ["completed"] * 12
        assert all(t["started"] and t["finished"] for t in tasks), "every run's times arrived"
        log = [e["what"] for e in requests.get(f"{proxy}/api/jobs/{job['id']}/log", **via).json()["entries"]]
        assert log[0].startswith("submitted sleep job with 12 tasks") and log[-1] == "status active -> completed"
        wait_until("the Manager's queue to drain", lambda: requests.get(
            manager_url + "/api/admin/status", headers={"Authorization": "Bearer manager-admin"},
            timeout=5).json()["upstream"]["queue_length"] == 0, timeout=30, procs=procs)

        after = nginx.access_log()[killed_at:]
        assert served_by(after, "/task-update-batch", ports["b"])
        assert not served_by(after, "/api/", ports["a"]), "nothing was answered by the dead Server"
        # What A stored lives in the shared database and directory: B serves it.
        r = requests.post(f"{proxy}/api/files/check", json={"files": [{"sha256": sha, "size": len(blob)}]}, **via)
        assert r.status_code == 200 and r.json()["missing"] == [], "B has A's upload, row and bytes"
        cookie = browser.cookies.get("flamenco_session")
        r = requests.get(f"{proxy}/api/me", headers={"Cookie": f"flamenco_session={cookie}"}, timeout=10,
                         verify=str(cert))
        assert r.status_code == 200 and r.json()["name"] == "ann", "A's web session works on B"
    finally:
        for p in reversed(procs):
            p.stop()
        nginx.stop()
