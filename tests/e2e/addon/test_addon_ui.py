"""The add-on in Blender's interactive UI, on a virtual X display (xvfb-run).

Background mode never draws panels and runs the submit operator synchronously; this test
covers the other half: the Flamenco panels drawing without errors, the modal submit with
its thread and progress, the job panel refreshing itself from its timer, a job canceled
from its row, and the Cancel button stopping a submission.
"""

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import missing
from tests.e2e.addon.blender_run import SCRIPTS
from tests.integration.addon import farm_server


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def xvfb_run() -> str:
    path = shutil.which("xvfb-run")
    if not path:
        missing("xvfb-run (apt-get install xvfb xauth, done by scripts/bootstrap) to run Blender's UI headless")
    return path


def test_panels_modal_submit_job_panel_and_cancel_in_the_ui(xvfb_run, blender_exe, addon_zip, addon_server, project,
                                                            tmp_path):
    out = tmp_path / "result.json"
    args = {"zip": str(addon_zip), "server": addon_server.url, "username": "anna", "password": farm_server.PASSWORD,
            "project": "films", "out": str(out)}
    env = dict(os.environ, BLENDER_USER_CONFIG=str(tmp_path / "config"),
               BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"))
    jobs_before = addon_server.api("GET", "/api/jobs?limit=1")["total"]
    proc = subprocess.run([xvfb_run, "-a", "-s", "-screen 0 1280x1024x24", blender_exe, "--factory-startup",
                           "-noaudio", str(project / "scenes" / "shot.blend"), "--python",
                           str(SCRIPTS / "ui_session.py"), "--", json.dumps(args)],
                          capture_output=True, text=True, timeout=180, env=env)
    log = proc.stdout + proc.stderr
    assert out.exists(), log[-4000:]
    result = json.loads(out.read_text())
    assert "exception" not in result, result["exception"] + log[-3000:]
    assert "Traceback" not in log, log[-4000:]
    events = {e["what"]: e for e in result["events"]}
    assert "done" in events, (result, log[-3000:])

    assert events["signed in"]["token"] and events["signed in"]["job_types"] >= 3
    assert "panels drawn" in events
    assert events["submit invoked"]["result"] == ["RUNNING_MODAL"]
    submitted = events["submitted"]
    assert submitted["status"] == "DONE" and submitted["job_id"]
    # Blender's main loop kept running while the thread packed and uploaded.
    assert result["ticks_while_submitting"] >= 2
    # The panel showed the stages as they went (which ones depends on timing).
    assert len(result["statuses"]) >= 3 and result["statuses"][-1].startswith("Job 'shot' submitted")
    job = addon_server.api("GET", f"/api/jobs/{submitted['job_id']}")
    assert job["settings"]["frames"] == "1,2"  # a pair stays a pair, as in Flamenco 2

    assert submitted["job_id"] in [j for j, _ in events["job panel refreshed by itself"]["jobs"]]
    assert addon_server.api("GET", f"/api/jobs/{submitted['job_id']}")["status"] in ("canceled", "cancel-requested")
    assert events["second submission"]["status"] == "CANCELED"
    assert addon_server.api("GET", "/api/jobs?limit=1")["total"] == jobs_before + 1
    assert not (project / "scenes" / "shot.flamenco.blend").exists()
