"""`flamenco-worker --check` as a process, with real Blender and FFmpeg, against a real Manager, a real
Server (the wrong URL), some other web server, and a Manager whose clock is two minutes ahead (under
libfaketime): every problem is named with its fix, and the exit code says whether one was found."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest
import requests

from backend.server.app import make_app
from backend.server.config import ServerConfig
from backend.server.database import connect
from shared.serving import ServiceThread
from tests.conftest import missing
from tests.integration.worker.worker_it_helpers import free_port, wait_for


def check(*args: str, manager: str | None = None, config: str = "") -> tuple[int, str, dict]:
    cmd = [sys.executable, "-m", "worker", "--check", *args]
    if manager:
        cmd += ["--manager", manager]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    as_json = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    doc = json.loads(as_json.stdout)
    assert as_json.returncode == out.returncode
    return out.returncode, out.stdout, {c["name"]: c for c in doc["checks"]}


@pytest.mark.e2e
def test_a_good_render_node_passes(manager, blender_exe, ffmpeg_exe, tmp_path):
    code, text, checks = check("--data-dir", str(tmp_path / "w"), "--min-free-gb", "0.01", manager=manager.url)
    assert code == 0, text
    assert text.strip().endswith("all checks passed")
    assert checks["Blender"]["detail"].startswith("Blender ") and blender_exe in checks["Blender"]["detail"]
    assert checks["FFmpeg"]["detail"].startswith("ffmpeg version ")
    assert checks["GPU"]["status"] == "ok"  # "CPU only" here; GPU names where Blender sees some
    assert checks["disk"]["detail"].endswith(f"GB free for {tmp_path / 'w'}")
    assert checks["Manager"]["detail"] == f"{manager.url}: Flamenco Manager 0.1.0 (not linked to a Server)"
    assert checks["clock"]["status"] == "ok"
    assert not (tmp_path / "w" / "credentials.json").exists(), "a check registers nothing"


def test_each_problem_is_named_with_its_fix(tmp_path):
    code, text, checks = check("--blender", str(tmp_path / "no-blender"), "--ffmpeg", "no-such-ffmpeg",
                               "--data-dir", str(tmp_path / "w"), "--min-free-gb", "1e9",
                               manager=f"http://127.0.0.1:{free_port()}")
    assert code == 1
    assert {n for n, c in checks.items() if c["status"] == "FAIL"} == {"Blender", "FFmpeg", "disk", "Manager"}
    assert "give --blender" in checks["Blender"]["fix"] and "apt install ffmpeg" in checks["FFmpeg"]["fix"]
    assert checks["Manager"]["detail"].endswith("cannot connect: connection refused")
    assert checks["GPU"]["status"] == "warn", "GPUs cannot be checked without Blender"
    assert "fix: " in text and "check(s) failed" in text

    config = tmp_path / "worker.toml"
    config.write_text(f'[pre_task_check]\nwrite = ["{tmp_path / "not-mounted"}"]\n')
    code, _, checks = check("--config", str(config), "--blender", "no-blender", manager="http://127.0.0.1:9")
    assert checks["pre-task paths"]["status"] == "FAIL" and "not-mounted" in checks["pre-task paths"]["detail"]


def test_the_server_or_another_web_page_is_not_a_manager(tmp_path):
    db = connect(tmp_path / "server")
    with ServiceThread(make_app(ServerConfig.from_dict({}, data_dir=tmp_path / "server"), db)) as server:
        _, _, checks = check("--blender", "no-blender", manager=server.url)
    db.close()
    assert checks["Manager"]["detail"] == f"{server.url} is the Flamenco Server, not a Manager"
    assert "port 8083" in checks["Manager"]["fix"]

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{web.server_address[1]}"
        _, _, checks = check("--blender", "no-blender", manager=url)
    finally:
        web.shutdown()
    assert checks["Manager"]["detail"] == f"{url} answered HTTP 200, but not as a Flamenco Manager"


def test_a_manager_clock_two_minutes_ahead_fails_the_clock_check(tmp_path):
    faketime = shutil.which("faketime")
    if not faketime:
        missing("the 'faketime' executable (package faketime; scripts/bootstrap installs it)")
    port = free_port()
    proc = subprocess.Popen([faketime, "-f", "+120s", sys.executable, "-m", "backend.manager.cli", "serve",
                             "--data-dir", str(tmp_path / "m"), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: requests.get(url, timeout=1).ok, what="the Manager", timeout=30)
        code, text, checks = check("--blender", "no-blender", manager=url)
    finally:
        # faketime forks the Manager, and that Manager was seen to outlive a SIGTERM: kill the whole
        # group, not only faketime (it left a Manager running after every test run).
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(20)
    clock = checks["clock"]
    assert clock["status"] == "FAIL" and clock["detail"].startswith(("+119.", "+120.", "+121.")), clock
    assert "NTP" in clock["fix"] and code == 1
