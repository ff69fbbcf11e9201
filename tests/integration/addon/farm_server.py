"""A real Flamenco Server for the add-on's tests: `flamenco-server serve` in a subprocess.

It gets a temporary data dir and a free port; users, projects and a manager are
made with the same CLI an admin uses. The manager announces itself the way a
real Manager does (POST .../startup with its task types and variables), so the
Server has somewhere to put jobs without a Manager process.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PASSWORD = "correct-horse-42"

STUDIO_TYPE = '''
"""A studio's own job type, loaded from a job-types directory: the add-on must show it
without a new add-on release."""
from backend.server.compilers import JobType, Setting, TaskSpec, command, register_compiler


@register_compiler("studio-bake")
class StudioBake(JobType):
    label = "Studio bake"
    settings_schema = [
        Setting("filepath", "path", required=True, label="Blend file"),
        Setting("frames", "frames", label="Frames"),
        Setting("bake_mode", "choice", default="all", choices=("all", "cloth-only"), label="What to bake"),
    ]

    def task_types(self, settings, ctx):
        return {"sleep"}

    def check(self, settings, ctx):
        ctx.job_file("filepath", settings["filepath"])

    def compile(self, settings, ctx):
        return [TaskSpec("bake", "sleep", [command("sleep", time_in_seconds=0)])]
'''


def flamenco_server_exe() -> str:
    exe = shutil.which("flamenco-server") or str(Path(sys.executable).parent / "flamenco-server")
    if not os.path.exists(exe):
        raise FileNotFoundError("flamenco-server is not installed (pip install -e .)")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class FarmServer:
    data_dir: Path
    url: str
    process: subprocess.Popen
    users: dict[str, str] = field(default_factory=dict)
    """name -> API token (made by the CLI)."""
    managers: dict[str, dict] = field(default_factory=dict)
    """name -> {id, token, ...}."""

    def cli(self, *args: str) -> dict:
        out = subprocess.run([flamenco_server_exe(), *args, "--data-dir", str(self.data_dir), "--json"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"flamenco-server {' '.join(args)} failed: {out.stderr}")
        return json.loads(out.stdout)

    def request(self, method: str, path: str, body=None, token: str = "") -> tuple[int, object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as ex:
            raw, status = ex.read(), ex.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def api(self, method: str, path: str, body=None, user: str = "anna"):
        status, doc = self.request(method, path, body, self.users[user])
        assert status < 400, f"{method} {path}: {status} {doc}"
        return doc

    def announce_manager(self, name: str, task_types=("blender-render", "blender-bake", "sleep",
                                                       "file-management", "video-encoding"),
                         variables=None) -> None:
        m = self.managers[name]
        body = {"_meta": {"version": 2}, "manager_url": "http://manager.invalid", "nr_of_workers": 1,
                "variables": variables or {}, "worker_task_types": list(task_types)}
        status, doc = self.request("POST", f"/api/managers/{m['id']}/startup", body, m["token"])
        assert status in (200, 204), f"startup: {status} {doc}"

    def put_output(self, job_id: str, relpath: str, data: bytes, manager: str = "m1") -> None:
        """An output of the job's first task, sent as its Manager does; the Manager fetches the
        depsgraph first, as the Server takes outputs only for tasks a Manager holds."""
        m = self.managers[manager]
        status, _ = self.request("GET", f"/api/managers/{m['id']}/depsgraph", token=m["token"])
        assert status in (200, 204, 304), status
        tasks = self.api("GET", f"/api/jobs/{job_id}/tasks")
        tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
        req = urllib.request.Request(
            f"{self.url}/api/managers/{m['id']}/jobs/{job_id}/outputs/{relpath}?task={tasks[0]['id']}",
            data=data, method="PUT",
            headers={"Authorization": f"Bearer {m['token']}", "X-Flamenco-SHA256": hashlib.sha256(data).hexdigest(),
                     "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=15) as resp:
            assert resp.status == 204

    def blob_path(self, sha256: str) -> Path:
        return self.data_dir / "files" / "blobs" / sha256[:2] / sha256

    def blob_count(self) -> int:
        root = self.data_dir / "files" / "blobs"
        return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(data_dir: Path, job_types_dir: Path | None = None) -> FarmServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [flamenco_server_exe(), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
           "--threads", "8", "--log-level", "WARNING"]
    if job_types_dir is not None:
        cmd += ["--job-types-dir", str(job_types_dir)]
    log = open(data_dir / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = FarmServer(data_dir, f"http://127.0.0.1:{port}", proc)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"flamenco-server exited: {(data_dir / 'server.log').read_text()[-3000:]}")
        try:
            status, _ = server.request("GET", "/api/version")
            if status == 200:
                return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("flamenco-server did not answer within 30 s")
        time.sleep(0.1)


def standard_farm(base: Path) -> FarmServer:
    """Projects 'films' (manager m1, announced) and 'empty' (no manager); users anna and bob (in films)."""
    types_dir = base / "job-types"
    types_dir.mkdir(parents=True, exist_ok=True)
    (types_dir / "studio_bake.py").write_text(STUDIO_TYPE)
    data = base / "server-data"
    data.mkdir(parents=True, exist_ok=True)
    server = FarmServer(data, "", None)  # type: ignore[arg-type]
    server.cli("create-project", "films")
    server.cli("create-project", "empty")
    server.cli("create-project", "idle")
    anna = server.cli("create-user", "anna", "--project", "films", "--project", "empty", "--project", "idle",
                      "--password", PASSWORD)
    bob = server.cli("create-user", "bob", "--project", "films", "--password", PASSWORD)
    m1 = server.cli("create-manager", "m1", "--project", "films")
    m2 = server.cli("create-manager", "m2", "--project", "idle")
    running = start_server(data, types_dir)
    running.users = {"anna": anna["token"], "bob": bob["token"]}
    running.managers = {"m1": m1, "m2": m2}
    running.announce_manager("m1")
    return running
