"""An artist's session with the add-on in Blender's real UI (see gui_lib.py for how it runs).

    xvfb-run blender shot.blend --python artist_session.py -- ARGS_JSON

The steps follow what an artist does: sign in, look at the panel, pick job types,
type an output path, edit the scene, press the job list's buttons, lose and regain
the Server, load other files, sign in with a token, open a job's page. Each step
returns what the panels drew and what the add-on's state was; tests/gui/ asserts
on it. The Server is reached through a TcpSwitch, so it can "go down" and "come back".
"""

import os
import sys
import time

import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gui_lib import (ARGS, addon_module, drawn, fresh_draw, install_addon, override, panel_screenshot,  # noqa: E402
                     prefs, run, screenshot, show_render_properties, wait_until)
from tcp_switch import TcpSwitch  # noqa: E402

RENDER, JOBS = "FLAMENCO_PT_render", "FLAMENCO_PT_jobs"
JOB = ARGS["jobs"]
SWITCH = TcpSwitch("127.0.0.1", int(ARGS["server"].rsplit(":", 1)[1]))
SWITCH.up()


def wm():
    return bpy.context.window_manager


def scene_settings():
    return bpy.context.scene.flamenco


def runtime():
    return addon_module("runtime")


def panels():
    """Both panels, freshly drawn."""
    render = yield from fresh_draw(RENDER)
    jobs = drawn(JOBS)
    return {"render": render, "jobs": jobs}


def job_rows():
    return {j.job_id: {"status": j.status, "actions": j.actions} for j in wm().flamenco_jobs}


def refresh_jobs():
    with override():
        bpy.ops.flamenco.refresh_jobs()


def wait_for_jobs(ids, timeout=20):
    yield from wait_until(lambda: all(any(j.job_id == i for j in wm().flamenco_jobs) for i in ids), timeout,
                          what=f"jobs {ids} in the job list")


def set_job_type(name):
    s = scene_settings()
    s.job_type = name


# --- the steps -----------------------------------------------------------------------

def setup():
    install_addon()
    p = prefs()
    p.server_url = SWITCH.url
    bpy.ops.flamenco.sign_in(username=ARGS["username"], password=ARGS["password"])
    p.project = ARGS["project"]
    yield from show_render_properties()
    yield from wait_until(lambda: runtime().state.panel_drawn_at > 0, 15, what="the job panel")
    return {"token": bool(p.token), "job_types": len(runtime().state.job_types)}


def panel_signed_in():
    refresh_jobs()
    yield from wait_for_jobs([JOB["queued"], JOB["outputs"]])
    yield 0.5
    out = yield from panels()
    screenshot("window-signed-in")
    return out


def panel_area_screenshot():
    """The big Properties editor alone: the picture for docs/images."""
    return (yield from panel_screenshot("panel"))


def job_type_list():
    set_job_type("blender-render")
    out = yield from panels()
    return out["render"]


def still_job_type():
    bpy.context.scene.frame_current = 1
    set_job_type("blender-render-still")
    yield 0.2
    out = yield from panels()
    yield 2.2  # the warnings are recomputed every 2 s
    out = yield from panels()
    yield from panel_screenshot("panel-still")
    set_job_type("blender-render")
    return out["render"]


def relative_output_path():
    s = scene_settings()
    s.output_path = "renders/frame_####"
    yield 2.2
    out = yield from panels()
    s.output_path = ""
    return out["render"]


def worker_tags():
    out = yield from panels()
    return out["render"]


def unsaved_changes():
    yield 2.2
    before = yield from panels()
    bpy.context.scene.render.resolution_x += 2
    bpy.ops.ed.undo_push(message="an edit")  # what the UI does after an edit: the file is now dirty
    right_after = yield from panels()
    yield 2.5
    later = yield from panels()
    return {"dirty": bpy.data.is_dirty, "before": before["render"], "right_after": right_after["render"],
            "later": later["render"]}


def requeue_on_a_queued_job():
    refresh_jobs()
    yield from wait_for_jobs([JOB["queued"]])
    out = yield from panels()
    offered = [e for e in out["jobs"] if e["kind"] == "operator" and e.get("props", {}).get("job_id") == JOB["queued"]]
    result = None
    if any(e.get("props", {}).get("action") == "requeue" for e in offered):
        with override():
            result = sorted(bpy.ops.flamenco.job_action(job_id=JOB["queued"], action="requeue"))
        yield 1.0
    out2 = yield from panels()
    return {"jobs": out["jobs"], "pressed": result, "error": wm().flamenco_jobs_error,
            "after": out2["jobs"]}


def buttons_after_actions():
    """Pause a queued job, then resume it: the row's buttons must follow at once."""
    seen = {}
    for action, expect_not in (("pause", "queued"), ("resume", "paused")):
        runtime().state.last_refresh = time.monotonic() + 60  # no periodic refresh to hide a stale row
        before = job_rows()[JOB["queued"]]["status"]
        with override():
            bpy.ops.flamenco.job_action(job_id=JOB["queued"], action=action)
        yield from wait_until(lambda: job_rows()[JOB["queued"]]["status"] != before, 10,
                              what=f"the row to change after {action}")
        out = yield from panels()
        seen[action] = {"row": job_rows()[JOB["queued"]], "jobs": out["jobs"]}
    runtime().state.last_refresh = 0.0
    return seen


def fetch_outputs_message():
    with override():
        bpy.ops.flamenco.fetch_outputs(job_id=JOB["outputs"])
    yield from wait_until(lambda: "utput" in (getattr(wm(), "flamenco_jobs_message", "") + "".join(
        getattr(j, "message", "") for j in wm().flamenco_jobs)), 20, what="the fetch to finish")
    out = yield from panels()
    refresh_jobs()
    yield 1.0
    later = yield from panels()
    return {"jobs": out["jobs"], "later": later["jobs"], "folder": ARGS["blend_dir"]}


def my_jobs():
    refresh_jobs()
    yield 1.5
    mine = yield from panels()
    everyone = None
    if hasattr(wm(), "flamenco_jobs_everyone"):
        wm().flamenco_jobs_everyone = True
        refresh_jobs()
        yield from wait_for_jobs([JOB["bob"]])
        everyone = (yield from panels())["jobs"]
        wm().flamenco_jobs_everyone = False
        refresh_jobs()
        yield 1.0
    return {"mine": mine["jobs"], "everyone": everyone, "rows": list(job_rows())}


def server_down_and_back():
    """The Server goes away while Blender runs (and the add-on is enabled again meanwhile,
    as when Blender starts while the Server is down), then comes back."""
    SWITCH.down()
    refresh_jobs()
    import addon_utils
    print("FLAMENCO MODULE", sys.modules.get("flamenco"), getattr(sys.modules.get("flamenco"), "__addon_enabled__", "?"))
    addon_utils.disable("flamenco", default_set=False)
    addon_utils.enable("flamenco", default_set=True, handle_error=None)
    yield from wait_until(lambda: bool(wm().flamenco_jobs_error or runtime().state.job_types_error), 20,
                          what="an error while the Server is down")
    with override():
        try:
            bpy.ops.flamenco.test_connection()  # the artist checks: "Cannot reach ..." in the preferences
        except RuntimeError:
            pass
    tested_down = prefs().connection_message
    yield 1.0
    down = yield from panels()
    yield from panel_screenshot("panel-server-down")
    SWITCH.up()
    # The artist does nothing; the panel stays on screen (redrawn as Blender does on its own).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (wm().flamenco_jobs_error or runtime().state.job_types_error
                                           or not runtime().state.job_types):
        yield 0.5
    state = {"jobs_error": wm().flamenco_jobs_error, "job_types_error": runtime().state.job_types_error,
             "job_types": len(runtime().state.job_types), "connection_message": prefs().connection_message}
    back = yield from panels()
    return {"down": down, "back": back, "state": state, "tested_down": tested_down}


def manager_url_as_server_url():
    p = prefs()
    p.server_url = ARGS["manager_url"]
    still_signed_in = bool(p.token)
    with override():
        try:
            bpy.ops.flamenco.test_connection()
        except RuntimeError:  # an operator's error report, when called from a script
            pass
    message = p.connection_message
    p.server_url = SWITCH.url
    return {"message": message, "signed_in_after_url_change": still_signed_in}


def preferences_after_url_change():
    """The preferences as drawn after the Server URL changed (a new window, as Edit > Preferences opens)."""
    p = prefs()
    p.server_url = SWITCH.url + "/"
    bpy.ops.screen.userpref_show()
    yield 0.5
    bpy.context.preferences.active_section = "ADDONS"
    wm().addon_search = "Flamenco"
    bpy.ops.preferences.addon_expand(module="flamenco")
    out = yield from fresh_draw("preferences")
    window = bpy.context.window_manager.windows[-1]
    with bpy.context.temp_override(window=window):
        path = os.path.join(ARGS["artifacts"], "preferences.png")
        bpy.ops.screen.screenshot(filepath=path)
        bpy.ops.wm.window_close()
    p.server_url = SWITCH.url
    yield 0.3
    return {"drawn": out, "token": bool(p.token)}


def sign_in_with_token():
    p = prefs()
    p.server_url = SWITCH.url
    kept = p.token
    p.token = ""
    try:
        bpy.ops.flamenco.sign_in(token=ARGS["token"])
    finally:
        if not p.token:
            p.token = kept  # so the steps after this one still run signed in
    p.project = ARGS["project"]
    return {"token_kept": p.token == ARGS["token"], "username": p.username}


def open_job_page():
    with override():
        bpy.ops.flamenco.open_job_page(job_id=JOB["outputs"])
    yield 0.5
    out = yield from panels()
    return {"clipboard": wm().clipboard, "server_url": prefs().server_url, "jobs": out["jobs"]}


def file_new():
    bpy.ops.wm.read_homefile()
    yield 1.0
    yield from show_render_properties()
    out = yield from panels()
    yield from panel_screenshot("panel-after-file-new")
    return {"render": out["render"], "wm_job_types": len(wm().flamenco_job_types)}


def one_file_submission():
    """File > New, save it, submit: the status line counts one file."""
    path = os.path.join(ARGS["tmp"], "single", "single.blend")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=path)
    yield 0.5
    set_job_type("blender-render")
    scene_settings().frame_range = "1"
    scene_settings().start_paused = True
    with override():
        bpy.ops.flamenco.submit_job("INVOKE_DEFAULT")
    yield from wait_until(lambda: wm().flamenco_status in ("DONE", "FAILED", "CANCELED"), 60,
                          what="the submission")
    out = yield from panels()
    return {"status": wm().flamenco_status, "text": wm().flamenco_status_text, "render": out["render"]}


def file_open():
    bpy.ops.wm.open_mainfile(filepath=ARGS["blend"])
    yield 1.0
    yield from show_render_properties()
    out = yield from panels()
    return {"render": out["render"], "wm_job_types": len(wm().flamenco_job_types)}


run([setup, panel_signed_in, panel_area_screenshot, job_type_list, still_job_type, relative_output_path,
     worker_tags, unsaved_changes, requeue_on_a_queued_job, buttons_after_actions, fetch_outputs_message, my_jobs,
     open_job_page, server_down_and_back, manager_url_as_server_url, preferences_after_url_change,
     sign_in_with_token, file_new, one_file_submission, file_open])
