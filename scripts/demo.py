"""Demo of the Server alone (until the whole farm runs): fresh data dir, real CLI, real HTTP.

1. `flamenco-server create-project/create-user/create-manager --json` set up a farm,
2. `flamenco-server serve` runs on a free port,
3. the manager announces itself (as a Manager would), an artist submits a `sleep`
   job over the API, and the job and its tasks are printed,
4. acting as the Manager, the demo takes the tasks (depsgraph) and reports them
   done (task-update-batch), then prints the finished job and its log.

Exits 0 when all of that worked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def cli(data: Path, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "backend.server.cli", *args, "--data-dir", str(data), "--json"],
                         env=ENV, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the Server exited with {proc.returncode}")
        try:
            if requests.get(f"{url}/api/version", timeout=1).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("the Server did not start in time")


def show_job(job: dict) -> None:
    print(f"  job {job['id']}  '{job['name']}'  type={job['type']}  status={job['status']}  "
          f"progress={job['progress']}%  manager={job['manager_name']}  tasks={job['task_counts']}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="flamenco-demo-") as tmp:
        data = Path(tmp) / "server"
        print(f"== data dir {data}")
        project = cli(data, "create-project", "demo-film")
        admin = cli(data, "create-user", "admin", "--admin")
        artist = cli(data, "create-user", "ann", "--project", "demo-film")
        manager = cli(data, "create-manager", "manager-1", "--project", "demo-film")
        print(f"   project {project['name']} ({project['id']}), admin {admin['name']}, artist {artist['name']}, "
              f"manager {manager['name']} ({manager['id']})")

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "backend.server.cli", "serve", "--data-dir", str(data),
                                   "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING"], env=ENV)
        try:
            wait_for(url, server)
            print(f"== Server {requests.get(f'{url}/api/version').json()} at {url}")
            as_artist = {"Authorization": f"Bearer {artist['token']}"}
            as_manager = {"Authorization": f"Bearer {manager['token']}"}
            mpath = f"{url}/api/managers/{manager['id']}"

            r = requests.post(f"{mpath}/startup", headers=as_manager, json={
                "_meta": {"version": 2}, "manager_url": "http://manager-1.local:8083", "nr_of_workers": 1,
                "worker_task_types": ["sleep", "blender-render", "file-management", "video-encoding"]})
            r.raise_for_status()

            r = requests.post(f"{url}/api/jobs", headers=as_artist, json={
                "name": "demo sleep", "type": "sleep", "project": "demo-film",
                "settings": {"frames": "1-6", "chunk_size": 2, "time_in_seconds": 0.5}})
            if r.status_code != 201:
                raise SystemExit(f"submission failed: {r.status_code} {r.text}")
            job = r.json()
            print("== submitted")
            show_job(job)
            tasks = requests.get(f"{url}/api/jobs/{job['id']}/tasks", headers=as_artist).json()["tasks"]
            for t in tasks:
                print(f"    task {t['id']}  {t['name']:<10} {t['task_type']:<6} {t['status']}")

            print("== acting as the Manager: take the tasks, report them done")
            graph = requests.get(f"{mpath}/depsgraph", headers=as_manager).json()["depsgraph"]
            updates = []
            for i, t in enumerate(graph):
                updates.append({"_id": f"demo-{i}-a", "task_id": t["_id"], "received_on_manager": "now",
                                "worker": "demo-worker", "task_status": "active", "activity": "sleeping"})
                updates.append({"_id": f"demo-{i}-c", "task_id": t["_id"], "received_on_manager": "now",
                                "worker": "demo-worker", "task_status": "completed", "task_progress_percentage": 100})
            answer = requests.post(f"{mpath}/task-update-batch", headers=as_manager,
                                   json={"updates": updates}).json()
            print(f"   {len(graph)} tasks taken, {answer['modified_count']} updates applied")
            job = requests.get(f"{url}/api/jobs/{job['id']}", headers=as_artist).json()
            show_job(job)
            for entry in requests.get(f"{url}/api/jobs/{job['id']}/log", headers=as_artist).json()["entries"]:
                print(f"    {entry['created']}  {entry['who']:<18} {entry['what']}")
            if job["status"] != "completed":
                raise SystemExit(f"expected the job to be completed, it is {job['status']}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=20)
    print("== demo OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
