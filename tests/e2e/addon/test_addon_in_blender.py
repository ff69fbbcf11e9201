"""The built add-on in real, headless Blender, against a real Server.

Each test is one scripted Blender session (blender_scripts/addon_session.py):
install the zip into a throwaway user dir, enable it, sign in, open the
generated scene (external texture + linked library), set the panel, press
Render on Flamenco from Python; then the Server is asked what it got.
"""

import hashlib
import json
from pathlib import Path

import pytest

from tests.e2e.addon.blender_run import SCRIPTS, run_blender
from tests.integration.addon import farm_server

pytestmark = pytest.mark.e2e

SESSION = SCRIPTS / "addon_session.py"
PASSWORD = farm_server.PASSWORD


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def steps_of(result: dict) -> dict:
    assert "exception" not in result, result["exception"] + result["_log"][-4000:]
    out: dict = {}
    for s in result["steps"]:
        out.setdefault(s["step"], []).append(s)
    return out


def sign_in(project="films", **prefs):
    return [{"do": "sign_in", "username": "anna", "password": PASSWORD},
            {"do": "set_prefs", "values": {"project": project, **prefs}}]


def test_install_sign_in_submit_twice_refresh_and_cancel(blender_exe, addon_zip, fresh_addon_server, project, tmp_path):
    server = fresh_addon_server
    blend = project / "scenes" / "shot.blend"
    blobs_before = server.blob_count()
    result = run_blender(blender_exe, SESSION, {"zip": str(addon_zip), "server": server.url, "steps": [
        *sign_in(),
        {"do": "save_userprefs"},
        {"do": "test_connection"},
        {"do": "open", "blend": str(blend)},
        {"do": "panel", "values": {"job_type": "blender-render", "job_name": "shot e2e", "frame_range": "1-3",
                                   "chunk_size": 2, "priority": 70, "output_path": "//render/{name}/",
                                   "start_paused": True}},
        {"do": "submit"},
        {"do": "submit"},
        {"do": "refresh"},
        {"do": "job_action", "action": "cancel"},
        {"do": "tick"},
        {"do": "unregister"},
    ]}, tmp_path / "user")
    steps = steps_of(result)

    # Installed as a legacy add-on in the throwaway user dir, with its bundled BAT.
    assert result["addon_file"].startswith(str(tmp_path / "user"))
    assert "_vendor" in result["bat_file"] or "site-packages" in result["bat_file"]
    assert {"submit_job", "sign_in", "test_connection", "refresh_jobs", "job_action", "fetch_outputs",
            "cancel_submission", "open_job_page"} <= set(result["operators"])

    [signed] = steps["sign_in"]
    assert signed["result"] == ["FINISHED"] and signed["token_set"] and signed["username"] == "anna"
    assert "films" in signed["projects"] and "blender-render" in signed["job_types"]
    # Only the token is kept: the password is nowhere in the saved preferences.
    userpref = Path(steps["save_userprefs"][0]["userpref"]).read_bytes()
    assert PASSWORD.encode() not in userpref

    [conn] = steps["test_connection"]
    assert conn["ok"] and "project 'films' runs on m1" in conn["message"]

    first, second = steps["submit"]
    assert first["result"] == ["FINISHED"], first
    assert first["job_id"] and first["status"] == "DONE" and not first["temp_copy_left"]
    assert first["packed"] == 3 and first["uploaded"] == 3

    job = server.api("GET", f"/api/jobs/{first['job_id']}")
    assert job["name"] == "shot e2e" and job["type"] == "blender-render" and job["priority"] == 70
    assert job["status"] == "paused" and job["files_mode"] == "upload" and job["project_name"] == "films"
    assert job["settings"]["frames"] == "1-3" and job["settings"]["chunk_size"] == 2
    assert job["settings"]["render_output"] == "shot_e2e/######"
    assert job["settings"]["filepath"] == "scenes/shot.blend"
    assert job["settings"]["format"] == "PNG"

    # The Server holds the .blend, the texture and the library, in their relative layout.
    files = server.api("GET", f"/api/jobs/{first['job_id']}/files")["files"]
    assert set(files) == {"scenes/shot.blend", "textures/checker.png", "libs/props.blend"}
    for rel in ("textures/checker.png", "libs/props.blend"):
        assert files[rel]["sha256"] == sha(project / rel)
        assert server.blob_path(files[rel]["sha256"]).read_bytes() == (project / rel).read_bytes()
    assert server.blob_path(files["scenes/shot.blend"]["sha256"]).read_bytes().startswith(b"BLENDER")
    assert server.blob_count() == blobs_before + 3

    # The same scene again: a new job, and nothing uploaded.
    assert second["result"] == ["FINISHED"] and second["job_id"] != first["job_id"]
    assert second["packed"] == 3 and second["uploaded"] == 0
    assert server.api("GET", f"/api/jobs/{second['job_id']}/files")["files"] == files
    assert server.blob_count() == blobs_before + 3

    [refreshed] = steps["refresh"]
    assert refreshed["result"] == ["FINISHED"] and refreshed["updated"]
    ids = [j["id"] for j in refreshed["jobs"]]
    assert ids[:2] == [second["job_id"], first["job_id"]]
    row = refreshed["jobs"][0]
    assert row["status"] == "paused" and "cancel" in row["actions"].split(",")

    [cancel] = steps["job_action"]
    assert cancel["result"] == ["FINISHED"] and cancel["job_id"] == second["job_id"]
    assert server.api("GET", f"/api/jobs/{second['job_id']}")["status"] in ("canceled", "cancel-requested")
    # The panel's timer refreshes the list on its own (a background thread in the UI).
    [after_cancel] = steps["tick"]
    assert after_cancel["updated"] and after_cancel["interval"] > 0
    assert after_cancel["jobs"][0]["id"] == second["job_id"]
    assert after_cancel["jobs"][0]["status"] in ("canceled", "cancel-requested")

    assert steps["unregister"][0]["still_registered"] is False


def test_bake_then_render_in_shared_storage_mode(blender_exe, addon_zip, addon_server, project, shared_storage,
                                                 tmp_path):
    jobs_dir = shared_storage / "jobs"
    (shared_storage / "render" / "shot").mkdir(exist_ok=True)
    result = run_blender(blender_exe, SESSION, {"zip": str(addon_zip), "server": addon_server.url, "steps": [
        *sign_in(file_mode="shared", shared_storage_path=str(jobs_dir)),
        {"do": "open", "blend": str(project / "scenes" / "shot.blend")},
        {"do": "panel", "values": {"bake_then_render": True, "frame_range": "1-2",
                                   "output_path": str(shared_storage / "render" / "shot") + "/"},
         "type_settings": {"blender-bake/parts": 3}},
        {"do": "submit"},
        {"do": "fetch_outputs"},
    ]}, tmp_path / "user")
    steps = steps_of(result)
    assert "blender-bake/parts" in steps["panel"][0]["type_settings"]
    [submit] = steps["submit"]
    assert submit["result"] == ["FINISHED"], submit
    bake_id, render_id = submit["job_ids"].split(",")
    assert submit["job_id"] == render_id

    bake = addon_server.api("GET", f"/api/jobs/{bake_id}")
    render = addon_server.api("GET", f"/api/jobs/{render_id}")
    assert bake["type"] == "blender-bake" and bake["settings"]["parts"] == 3
    assert render["depends_on"] == [bake_id] and render["files_mode"] == "shared"
    assert render["settings"]["render_output"] == "{render}/shot/######"
    filepath = render["settings"]["filepath"]
    assert filepath == bake["settings"]["filepath"] and filepath.startswith("{job_storage}/")
    assert filepath.endswith("/scenes/shot.blend")

    # The pack is on the shared storage, in the project's layout, where the variable points.
    pack = jobs_dir / filepath[len("{job_storage}/"):-len("/scenes/shot.blend")]
    assert (pack / "scenes" / "shot.blend").read_bytes().startswith(b"BLENDER")
    assert (pack / "textures" / "checker.png").read_bytes() == (project / "textures" / "checker.png").read_bytes()
    assert (pack / "libs" / "props.blend").read_bytes() == (project / "libs" / "props.blend").read_bytes()

    # "Fetch outputs" in shared storage opens the output folder, found through the variables.
    [fetched] = steps["fetch_outputs"]
    assert fetched["result"] == ["FINISHED"], fetched
    assert fetched["message"] == f"Output folder: {shared_storage / 'render' / 'shot'}"


def test_failures_reach_the_artist_in_plain_words(blender_exe, addon_zip, addon_server, project, tmp_path):
    dead = f"http://127.0.0.1:{farm_server.free_port()}"
    result = run_blender(blender_exe, SESSION, {"zip": str(addon_zip), "server": dead, "steps": [
        {"do": "sign_in", "username": "anna", "password": PASSWORD},
        {"do": "open", "blend": str(project / "scenes" / "shot.blend")},
        {"do": "submit"},
        {"do": "set_prefs", "values": {"server_url": addon_server.url}},
        {"do": "sign_in", "username": "anna", "password": "wrong-password"},
        {"do": "set_prefs", "values": {"token": addon_server.users["anna"], "project": "empty"}},
        {"do": "test_connection"},
        {"do": "submit"},
        {"do": "set_prefs", "values": {"token": "0000000000000000.revoked", "project": "films"}},
        {"do": "test_connection"},
    ]}, tmp_path / "user")
    steps = steps_of(result)
    unreachable, wrong = steps["sign_in"]
    assert "connection refused" in unreachable["error"] and not unreachable["token_set"]
    assert "Wrong user name or password" in wrong["error"] or "wrong user name or password" in wrong["error"]
    not_signed, no_manager = steps["submit"]
    assert "Not signed in" in not_signed["error"] and not not_signed["job_id"]
    assert "has no manager linked" in no_manager["error"] and not no_manager["temp_copy_left"]
    empty, revoked = steps["test_connection"]
    assert not empty["ok"] and "No Manager is linked to the project 'empty'" in empty["message"]
    assert not revoked["ok"] and "does not accept your sign-in token" in revoked["message"]
    assert json.dumps(result).count("Traceback") == 0
