"""The GUI tier: Debian's Blender 3.4 with its real UI on a virtual X display (xvfb-run,
software GL), the add-on installed from its zip, driven by a session script through its
operators and Blender's event loop. The panels record what they draw
(FLAMENCO_UI_RECORD=1, blender_addon/ui_record.py); screenshots are kept as artifacts
(in FLAMENCO_GUI_ARTIFACTS when set, else in pytest's temporary directory).

Needs `blender` and `xvfb-run` (scripts/bootstrap installs both): skipped without them,
failed under CI=true.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import missing, require_executable
from tests.integration.addon import farm_server

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "blender_scripts"
MAKE_SCENE = HERE.parent / "e2e" / "addon" / "blender_scripts" / "make_scene.py"
SCREEN = "-screen 0 1600x1800x24"
WINDOW = ["-p", "0", "0", "1600", "1800"]
"""Tall enough for the Flamenco panel and its job list under Render Properties' own panels."""
PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763"
                        "f8cfc0f0000003010100c9fe92ef0000000049454e44ae426082")


@pytest.fixture(scope="session")
def xvfb_run() -> str:
    path = shutil.which("xvfb-run")
    if not path or not shutil.which("xauth"):
        missing("xvfb-run and xauth (apt-get install xvfb xauth; scripts/bootstrap does it) to run Blender's UI")
    return path


@pytest.fixture(scope="session")
def gui_blender() -> str:
    return require_executable("blender")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("FLAMENCO_GUI_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("gui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def gui_addon_zip(tmp_path_factory) -> Path:
    import build_addon
    return build_addon.build(tmp_path_factory.mktemp("gui-addon"))


@pytest.fixture(scope="session")
def gui_project(gui_blender, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gui-scene") / "project"
    result = subprocess.run([gui_blender, "-b", "--factory-startup", "-noaudio", "--python", str(MAKE_SCENE),
                             "--", str(root)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="module")
def gui_farm(tmp_path_factory):
    """The add-on tests' Server (projects films/empty/idle, users anna and bob), with jobs:
    anna's queued job, anna's job with two outputs, bob's job; m1 has a worker tagged 'gpu'."""
    server = farm_server.standard_farm(tmp_path_factory.mktemp("gui-farm"))
    try:
        m1 = server.managers["m1"]
        status, doc = server.request("POST", f"/api/managers/{m1['id']}/workers", {"complete": True, "workers": [
            {"_id": "w-gpu", "nickname": "gpu-box", "status": "asleep", "platform": "linux",
             "supported_task_types": ["blender-render", "sleep"], "tags": ["gpu"]}]}, m1["token"])
        assert status in (200, 204), doc
        sleep = {"frames": "1-2", "chunk_size": 1, "time_in_seconds": 0}
        jobs = {}
        for key, user, name in (("queued", "anna", "anna queued"), ("outputs", "anna", "anna with outputs"),
                                ("bob", "bob", "bob's job")):
            jobs[key] = server.api("POST", "/api/jobs", {"name": name, "type": "sleep", "project": "films",
                                                        "settings": sleep}, user=user)["id"]
        for frame in (1, 2):
            server.put_output(jobs["outputs"], f"anna_with_outputs/00000{frame}.png", PNG_1PX)
        server.jobs = jobs
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def manager_url(tmp_path_factory):
    """A real Manager (in this process), to type its URL where the Server's belongs."""
    from tests.integration.manager.manager_helpers import RunningManager, make_config
    m = RunningManager(make_config(tmp_path_factory.mktemp("gui-manager")), threads=4)
    try:
        yield m.url
    finally:
        m.stop()


def run_gui_session(xvfb_run: str, blender: str, script: Path, blend: Path, args: dict, workdir: Path,
                    artifacts: Path, timeout: float = 420) -> dict:
    """Run `script` in Blender's UI on a virtual screen; its result, with Blender's output in '_log'."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "result.json"
    no_browser = workdir / "no-browser"
    no_browser.write_text("#!/bin/sh\nexit 1\n")
    no_browser.chmod(0o755)
    # A user dir of its own (factory settings without --factory-startup, so File > New keeps the add-on).
    env = dict(os.environ, BLENDER_USER_CONFIG=str(workdir / "config"), BLENDER_USER_SCRIPTS=str(workdir / "scripts"),
               FLAMENCO_UI_RECORD="1", BROWSER=str(no_browser))
    payload = json.dumps({**args, "out": str(out), "artifacts": str(artifacts), "tmp": str(workdir)})
    cmd = [xvfb_run, "-a", "-s", SCREEN, blender, *WINDOW, "-noaudio", str(blend), "--python", str(script), "--", payload]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    log = proc.stdout + proc.stderr
    if not out.exists():
        raise AssertionError(f"Blender wrote no result (exit {proc.returncode}):\n{log[-6000:]}")
    result = json.loads(out.read_text())
    result["_log"] = log
    return result
