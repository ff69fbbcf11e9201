"""The add-on as an artist meets it in Blender 3.4's real UI (issue 14): one session
(blender_scripts/artist_session.py) plays the artist; each test checks one point on what
the panels drew, the add-on's state, and Blender's console output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.addon import farm_server

from .conftest import SCRIPTS, run_gui_session

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def session(xvfb_run, gui_blender, gui_addon_zip, gui_farm, gui_project, manager_url, artifacts,
            tmp_path_factory) -> dict:
    blend = gui_project / "scenes" / "shot.blend"
    args = {"zip": str(gui_addon_zip), "server": gui_farm.url, "username": "anna",
            "password": farm_server.PASSWORD, "token": gui_farm.users["anna"], "project": "films",
            "manager_url": manager_url, "jobs": gui_farm.jobs, "blend": str(blend),
            "blend_dir": str(blend.parent)}
    result = run_gui_session(xvfb_run, gui_blender, SCRIPTS / "artist_session.py", blend, args,
                             tmp_path_factory.mktemp("gui-session"), artifacts)
    print(f"GUI screenshots in {artifacts}")
    return result


def step(session: dict, name: str):
    """The step's result; the test fails with the step's traceback if it raised."""
    got = session["steps"].get(name)
    assert got is not None, f"step {name} never ran; steps: {session['order']}\n{session['_log'][-3000:]}"
    assert "exception" not in got, got["exception"]
    return got["result"]


def labels(entries) -> list[str]:
    return [e["text"] for e in entries or () if e["kind"] == "label"]


def props(entries, *names) -> list[dict]:
    return [e for e in entries or () if e["kind"] in ("prop", "prop_search") and e["property"] in names]


def job_buttons(entries, job_id) -> list[dict]:
    return [e for e in entries or () if e["kind"] == "operator" and e.get("props", {}).get("job_id") == job_id]


def job_box(entries, job_id) -> str:
    """The container ('box#N') that holds the job's row."""
    buttons = job_buttons(entries, job_id)
    assert buttons, f"no buttons for job {job_id}"
    return next(p for p in buttons[0]["path"] if p.startswith("box#"))


def in_box(entries, box) -> list[dict]:
    return [e for e in entries if box in e["path"]]


def job_type_field(entries) -> dict:
    (field,) = props(entries, "job_type", "job_type_choice")
    return field


def submit_index(entries) -> int:
    return next(i for i, e in enumerate(entries) if e["kind"] == "operator" and e["operator"] == "flamenco.submit_job")


def test_the_session_ran_and_left_screenshots(session):
    assert step(session, "setup")["token"]
    shots = [Path(p) for p in session["screenshots"]]
    assert shots and all(p.is_file() and p.stat().st_size > 10_000 for p in shots), shots


def test_1_file_new_and_file_open_keep_the_job_type_list_and_its_settings(session):
    for name in ("file_new", "file_open"):
        got = step(session, name)
        field = job_type_field(got["render"])
        assert not field["alert"], f"{name}: the job type field is red: {field}"
        assert field.get("items") or field.get("choices"), f"{name}: the job type list is empty"
        assert got["wm_job_types"] > 0
        assert any(t.endswith(" settings") for t in labels(got["render"])), \
            f"{name}: no job-type settings box: {labels(got['render'])}"


def test_2_a_managers_url_gets_told_apart(session):
    got = step(session, "manager_url_as_server_url")
    assert "Not found" not in got["message"]
    assert "Flamenco Manager" in got["message"] and "Server's URL" in got["message"], got["message"]


def test_3_requeue_only_where_it_does_something(session, gui_farm):
    got = step(session, "requeue_on_a_queued_job")
    actions = [b.get("props", {}).get("action") for b in job_buttons(got["jobs"], gui_farm.jobs["queued"])]
    assert "requeue" not in actions, actions
    assert got["pressed"] is None


def test_3_row_buttons_follow_an_action_at_once(session, gui_farm):
    got = step(session, "buttons_after_actions")
    queued = gui_farm.jobs["queued"]
    after_pause = [b["props"].get("action") for b in job_buttons(got["pause"]["jobs"], queued) if "action" in b["props"]]
    after_resume = [b["props"].get("action") for b in job_buttons(got["resume"]["jobs"], queued) if "action" in b["props"]]
    assert got["pause"]["row"]["status"] in ("paused", "pause-requested")
    assert "pause" not in after_pause and "resume" in after_pause, after_pause
    assert "resume" not in after_resume and "pause" in after_resume, after_resume


def test_4_still_job_type(session):
    entries = step(session, "still_job_type")
    error_lines = [e["text"] for e in entries if e["kind"] == "label" and e["icon"] == "ERROR"]
    assert not any("Samples" in t for t in error_lines), error_lines
    samples = [e for e in entries if e["kind"] == "prop" and str(e.get("owner")).endswith("/samples")
               and e["property"] in ("int_value", "str_value")]
    assert samples and all(e["value"] != 0 and not e["enabled"] for e in samples), samples
    assert not [e for e in entries if e["kind"] == "prop" and str(e.get("owner")).endswith("/frame")], \
        "Frame is the scene's current frame, not a field showing 0"
    assert any("frame 1" in t.lower() for t in labels(entries)), labels(entries)
    assert not props(entries, "frame_range", "chunk_size"), "Frames / Chunk Size shown for a still"


def test_5_a_relative_output_path_without_slashes_is_explained(session):
    entries = step(session, "relative_output_path")
    text = " ".join(labels(entries))
    assert "relative" in text and "//renders/frame_####" in text, text


def test_6_worker_tags_are_offered_from_the_farm(session):
    entries = step(session, "worker_tags")
    fields = props(entries, "worker_tag", "worker_tag_choice")
    assert fields and fields[0]["property"] == "worker_tag_choice", fields
    assert ("gpu", "gpu") in [tuple(i) for i in fields[0]["items"]], fields[0]["items"]


def test_7_the_render_button_stays_where_it_is_after_an_edit(session):
    got = step(session, "unsaved_changes")
    assert got["dirty"]
    positions = [submit_index(got[k]) for k in ("before", "right_after", "later")]
    assert len(set(positions)) == 1, positions
    assert any("unsaved changes" in t for t in labels(got["later"]))


def test_8_the_server_coming_back_clears_the_error(session):
    got = step(session, "server_down_and_back")
    assert any("Cannot reach" in t for t in labels(got["down"]["render"]) + labels(got["down"]["jobs"]))
    state = got["state"]
    assert state["jobs_error"] == "" and state["job_types_error"] == "" and state["job_types"] > 0, state
    assert got["tested_down"].startswith("Cannot reach") and state["connection_message"] == "", got
    assert not any("Cannot reach" in t for t in labels(got["back"]["render"]) + labels(got["back"]["jobs"]))


def test_8_an_outputs_message_stays_with_its_job(session, gui_farm):
    got = step(session, "fetch_outputs_message")
    job = gui_farm.jobs["outputs"]
    for key in ("jobs", "later"):
        entries = got[key]
        fetched = [e for e in entries if e["kind"] == "label" and "Fetched" in e["text"]]
        assert fetched, (key, labels(entries))
        box = job_box(entries, job)
        assert all(box in e["path"] for e in fetched), (key, fetched, box)


def test_9_my_jobs_by_default_and_the_whole_project_on_request(session, gui_farm):
    got = step(session, "my_jobs")
    bob = gui_farm.jobs["bob"]
    assert bob not in got["rows"]
    assert not job_buttons(got["mine"], bob)
    assert got["everyone"] is not None, "no switch to show the whole project's jobs"
    box = job_box(got["everyone"], bob)
    assert any("bob" in e["text"] for e in in_box(got["everyone"], box) if e["kind"] == "label")


def test_10_sign_in_with_an_api_token(session):
    got = step(session, "sign_in_with_token")
    assert got == {"token_kept": True, "username": "anna"}


def test_11_errors_reach_the_system_console(session):
    step(session, "server_down_and_back")
    assert re.search(r"Flamenco.*Cannot reach the Flamenco Server", session["_log"]), session["_log"][-3000:]


def test_12_job_types_by_label_and_only_those_for_artists(session):
    field = job_type_field(step(session, "job_type_list"))
    assert field["kind"] == "prop", "the job types must be listed by label"
    shown = dict(tuple(i) for i in field["items"])
    assert shown["blender-render"] == "Blender render" and "sleep" not in shown and "exec-command" not in shown


def test_12_wording_on_the_panel(session):
    entries = step(session, "job_type_list")
    assert "Blender render settings" in labels(entries), labels(entries)
    assert not any(t.endswith(" Settings") for t in labels(entries))
    got = step(session, "one_file_submission")
    assert got["status"] == "DONE", got["text"]
    assert "1 file," in got["text"] and "1 files" not in got["text"], got["text"]


def test_12_one_percentage_on_a_progress_bar(session):
    jobs = step(session, "panel_signed_in")["jobs"]
    bars = [e for e in jobs if e.get("slider") or e["kind"] == "progress"]
    assert bars
    for bar in bars:
        shown = (bar.get("text") or "") + (" %" if bar["kind"] == "prop" else "")
        assert shown.count("%") == 1, bar


def test_12_changing_the_server_url_signs_out(session):
    assert step(session, "manager_url_as_server_url")["signed_in_after_url_change"] is False
    got = step(session, "preferences_after_url_change")
    assert got["token"] is False
    assert not any(t.startswith("Signed in as") for t in labels(got["drawn"])), labels(got["drawn"])
    assert "Not signed in" in labels(got["drawn"])


def test_13_open_job_page_without_a_browser_says_so(session, gui_farm):
    got = step(session, "open_job_page")
    job = gui_farm.jobs["outputs"]
    assert got["clipboard"] == f"{got['server_url']}/jobs/{job}"
    box = job_box(got["jobs"], job)
    text = " ".join(e["text"] for e in in_box(got["jobs"], box) if e["kind"] == "label")
    assert "browser" in text and "clipboard" in text, text
