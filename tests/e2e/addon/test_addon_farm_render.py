"""From the add-on's button to rendered frames: Blender submits, a whole farm renders
(Server, Manager and a Worker as separate processes, `flamenco farm`), the add-on
follows the job in its panel and fetches the frames back next to the .blend."""

import json
import struct
import time
import urllib.request

import pytest

from tests.e2e.addon.blender_run import SCRIPTS, run_blender

pytestmark = pytest.mark.e2e

FAST_TIMEOUTS = """
[timeouts]
worker_timeout = 6.0
task_timeout = 120.0
check_interval = 1.0
"""


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def whole_farm(tmp_path, blender_exe, ffmpeg_exe):
    from flamenco_cli.farm import Farm
    farm = Farm(tmp_path / "farm", port=0, workers=1, manager_extra_config=FAST_TIMEOUTS)
    try:
        info = farm.start()
        deadline = time.monotonic() + 60
        while True:
            req = urllib.request.Request(info["server_url"] + "/api/workers",
                                         headers={"Authorization": f"Bearer {info['admin_token']}"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                workers = json.loads(resp.read())["workers"]
            if any(w["status"] == "awake" for w in workers):
                break
            assert time.monotonic() < deadline, workers
            time.sleep(0.3)
        yield info
    finally:
        farm.stop(timeout=15)


def test_render_on_flamenco_gives_frames_back(whole_farm, blender_exe, addon_zip, project, tmp_path):
    result = run_blender(blender_exe, SCRIPTS / "addon_session.py", {
        "zip": str(addon_zip), "server": whole_farm["server_url"], "steps": [
            {"do": "set_prefs", "values": {"token": whole_farm["admin_token"], "project": "default"}},
            {"do": "open", "blend": str(project / "scenes" / "shot.blend")},
            {"do": "panel", "values": {"frame_range": "1-3", "chunk_size": 2}},
            {"do": "submit"},
            {"do": "wait_job", "timeout": 200},
            {"do": "fetch_outputs"},
        ]}, tmp_path / "user", timeout=280)
    assert "exception" not in result, result["exception"] + result["_log"][-3000:]
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["submit"]["result"] == ["FINISHED"], steps["submit"]
    waited = steps["wait_job"]
    assert waited["status"] == "completed", (waited, result["_log"][-3000:])
    assert waited["seen"][-1][1] == 100.0

    fetched = steps["fetch_outputs"]
    assert fetched["result"] == ["FINISHED"] and "Fetched 3 new of 3 outputs" in fetched["message"], fetched
    frames = sorted((project / "scenes" / "render" / "shot").glob("*.png"))
    assert [f.name for f in frames] == ["000001.png", "000002.png", "000003.png"]
    for frame in frames:
        assert png_size(frame) == (64, 48)
