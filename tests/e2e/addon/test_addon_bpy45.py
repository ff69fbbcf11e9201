"""The add-on in a current Blender: `bpy` 4.5 from PyPI (Blender as a Python module).

Runs when a Python with bpy 4.2+ is available:

    python3.11 -m venv /opt/bpy45 && /opt/bpy45/bin/pip install bpy==4.5.4   # ~370 MB download
    FLAMENCO_BPY_PYTHON=/opt/bpy45/bin/python .venv/bin/python -m pytest tests/e2e/addon/test_addon_bpy45.py

(or with `bpy` installed in the test venv itself). `make test` installs it in .venv-bpy and sets
FLAMENCO_BPY_PYTHON; without it the test skips, and fails under CI=true.
The scene is made by Debian's Blender 3.4 and opened in 4.5, as studios mix versions.
"""

import importlib.util
import os
import subprocess
import sys

import pytest

from tests.conftest import missing
from tests.e2e.addon.blender_run import SCRIPTS, run_blender
from tests.integration.addon import farm_server


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bpy_python() -> str:
    python = os.environ.get("FLAMENCO_BPY_PYTHON", "")
    if not python and importlib.util.find_spec("bpy") is not None:
        python = sys.executable
    if not python:
        missing("a Python with the bpy module (FLAMENCO_BPY_PYTHON, one with `pip install bpy==4.5.4`)")
    try:
        out = subprocess.run([python, "-c", "import bpy; print(*bpy.app.version[:2])"],
                             capture_output=True, text=True, timeout=120)
    except OSError as ex:
        pytest.fail(f"FLAMENCO_BPY_PYTHON={python} cannot run: {ex}")
    assert out.returncode == 0, f"FLAMENCO_BPY_PYTHON={python} cannot import bpy: {out.stderr[-2000:]}"
    major, minor = map(int, out.stdout.split()[-2:])
    if (major, minor) < (4, 2):
        pytest.skip(f"bpy {major}.{minor} is older than 4.2; this test is for a current Blender")
    return python


@pytest.mark.parametrize("as_extension", [False, True], ids=["legacy-addon", "extension"])
def test_register_and_submit_in_blender_45(bpy_python, as_extension, addon_zip, addon_server, project, tmp_path):
    result = run_blender("", SCRIPTS / "addon_session.py", {
        "zip": str(addon_zip), "server": addon_server.url, "as_extension": as_extension, "steps": [
            {"do": "sign_in", "username": "anna", "password": farm_server.PASSWORD},
            {"do": "set_prefs", "values": {"project": "films"}},
            {"do": "test_connection"},
            {"do": "open", "blend": str(project / "scenes" / "shot.blend")},
            {"do": "panel", "values": {"frame_range": "1-2", "start_paused": True}},
            {"do": "submit"},
            {"do": "refresh"},
            {"do": "unregister"},
        ]}, tmp_path / "user", timeout=240, bpy_python=bpy_python)
    assert "exception" not in result, result["exception"] + result["_log"][-4000:]
    assert result["blender"].startswith("4.")
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["sign_in"]["result"] == ["FINISHED"] and steps["test_connection"]["ok"]
    if as_extension:
        assert "extensions" in result["addon_file"] and "_vendor" not in result["bat_file"]
    submit = steps["submit"]
    assert submit["result"] == ["FINISHED"], submit
    files = addon_server.api("GET", f"/api/jobs/{submit['job_id']}/files")["files"]
    assert set(files) == {"scenes/shot.blend", "textures/checker.png", "libs/props.blend"}
    assert submit["job_id"] in [j["id"] for j in steps["refresh"]["jobs"]]
    assert steps["unregister"]["still_registered"] is False
