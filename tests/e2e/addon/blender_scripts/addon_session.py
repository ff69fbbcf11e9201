"""An artist's session, scripted: install the add-on zip, sign in, open a scene, submit.

Runs inside Blender (`blender -b --factory-startup --python addon_session.py -- ARGS`) or in
a Python that has the `bpy` module (`python addon_session.py -- ARGS`, Blender 4.5 from PyPI).
ARGS is one JSON object; the steps it lists run in order and what they find is written to
ARGS["out"] as JSON, for the pytest side to check against the Server.
"""

import importlib
import json
import os
import sys
import traceback

import bpy  # first: as a Python module (PyPI's bpy), importing bpy puts addon_utils on the path
import addon_utils

ARGS = json.loads(sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.argv[1])
RESULT = {"blender": bpy.app.version_string, "steps": []}


def save():
    with open(ARGS["out"], "w") as f:
        json.dump(RESULT, f, indent=1, default=str)


def call(op, **kw):
    """Run an operator the way a script does; (result set, error text)."""
    try:
        return sorted(op(**kw)), ""
    except RuntimeError as ex:
        return ["ERROR"], str(ex)


def prefs():
    return bpy.context.preferences.addons[ADDON].preferences


def install():
    global ADDON
    if ARGS.get("as_extension"):
        bpy.ops.extensions.package_install_files(filepath=ARGS["zip"], repo="user_default",
                                                 enable_on_install=True)
        ADDON = "bl_ext.user_default.flamenco"
    else:
        bpy.ops.preferences.addon_install(filepath=ARGS["zip"], overwrite=True)
        addon_utils.enable("flamenco", default_set=True, handle_error=None)
        ADDON = "flamenco"
    mod = sys.modules[ADDON]
    RESULT["addon_file"] = mod.__file__
    importlib.import_module(ADDON + ".packing")
    RESULT["bat_file"] = sys.modules["blender_asset_tracer"].__file__
    RESULT["operators"] = sorted(name for name in dir(bpy.ops.flamenco))
    prefs().server_url = ARGS["server"]


ADDON = "flamenco"


def step_sign_in(s):
    p = prefs()
    res, err = call(bpy.ops.flamenco.sign_in, username=s["username"], password=s["password"])
    return {"result": res, "error": err, "token_set": bool(p.token), "username": p.username,
            "projects": [x.name for x in p.known_projects], "managers": [x.name for x in p.known_managers],
            "job_types": [x.name for x in bpy.context.window_manager.flamenco_job_types]}


def step_set_prefs(s):
    p = prefs()
    for key, value in s["values"].items():
        setattr(p, key, value)
    return {}


def step_save_userprefs(s):
    bpy.ops.wm.save_userpref()
    cfg = os.environ.get("BLENDER_USER_CONFIG", "")
    return {"userpref": os.path.join(cfg, "userpref.blend")}


def step_test_connection(s):
    res, err = call(bpy.ops.flamenco.test_connection)
    p = prefs()
    return {"result": res, "error": err, "ok": p.connection_ok, "message": p.connection_message}


def step_open(s):
    bpy.ops.wm.open_mainfile(filepath=s["blend"])
    return {"filepath": bpy.data.filepath}


def step_panel(s):
    scene = bpy.context.scene
    settings = scene.flamenco
    for key, value in s.get("values", {}).items():
        setattr(settings, key, value)
    for item in settings.type_settings:
        value = s.get("type_settings", {}).get(f"{item.job_type}/{item.key}")
        if value is not None:
            if item.kind == "choice":
                item.enum_value = value
            else:
                item.use_value = True  # an optional number is sent only when ticked
                setattr(item, {"integer": "int_value", "number": "float_value", "boolean": "bool_value"}
                        .get(item.kind, "str_value"), value)
    return {"type_settings": sorted(f"{i.job_type}/{i.key}" for i in settings.type_settings)}


def step_submit(s):
    wm = bpy.context.window_manager
    wm.flamenco_last_job_id = ""
    res, err = call(bpy.ops.flamenco.submit_job)
    temp = os.path.splitext(bpy.data.filepath)[0] + ".flamenco.blend"
    return {"result": res, "error": err, "job_id": wm.flamenco_last_job_id, "job_ids": wm.flamenco_last_job_ids,
            "uploaded": wm.flamenco_last_uploaded_files, "packed": wm.flamenco_last_packed_files,
            "status": wm.flamenco_status, "text": wm.flamenco_status_text,
            "temp_copy_left": os.path.exists(temp)}


def step_refresh(s):
    res, err = call(bpy.ops.flamenco.refresh_jobs)
    wm = bpy.context.window_manager
    return {"result": res, "error": err, "updated": wm.flamenco_jobs_updated, "jobs_error": wm.flamenco_jobs_error,
            "jobs": [{"id": j.job_id, "name": j.name, "status": j.status, "progress": j.progress,
                      "actions": j.actions, "eta": j.eta} for j in wm.flamenco_jobs]}


def step_tick(s):
    """The job panel's timer, as Blender calls it while the panel is on screen."""
    import time
    runtime = importlib.import_module(ADDON + ".runtime")
    runtime.state.panel_drawn_at = time.monotonic()
    runtime.state.last_refresh = 0.0
    wm = bpy.context.window_manager
    wm.flamenco_jobs_updated = ""
    interval = runtime.tick()
    return {"interval": interval, "updated": wm.flamenco_jobs_updated, "jobs_error": wm.flamenco_jobs_error,
            "jobs": [{"id": j.job_id, "name": j.name, "status": j.status, "progress": j.progress,
                      "actions": j.actions, "eta": j.eta} for j in wm.flamenco_jobs]}


def step_job_action(s):
    job_id = s.get("job_id") or bpy.context.window_manager.flamenco_last_job_id
    res, err = call(bpy.ops.flamenco.job_action, job_id=job_id, action=s["action"])
    row = next((j for j in bpy.context.window_manager.flamenco_jobs if j.job_id == job_id), None)
    return {"result": res, "error": err, "job_id": job_id, "row_status": row.status if row else None}


def step_fetch_outputs(s):
    job_id = s.get("job_id") or bpy.context.window_manager.flamenco_last_job_id
    res, err = call(bpy.ops.flamenco.fetch_outputs, job_id=job_id)
    wm = bpy.context.window_manager
    message = importlib.import_module(ADDON + ".runtime").state.job_messages.get(job_id, ("",))[0]
    return {"result": res, "error": err, "message": message, "jobs_error": wm.flamenco_jobs_error}


def step_wait_job(s):
    """Refresh the job list (the panel's way) until the last job reaches a final status."""
    import time
    job_id = bpy.context.window_manager.flamenco_last_job_id
    deadline = time.monotonic() + s.get("timeout", 180)
    seen = []
    while True:
        call(bpy.ops.flamenco.refresh_jobs)
        row = next((j for j in bpy.context.window_manager.flamenco_jobs if j.job_id == job_id), None)
        status = row.status if row else None
        if row and (not seen or seen[-1][0] != status or seen[-1][1] != row.progress):
            seen.append((status, row.progress, row.eta))
        if status in ("completed", "failed", "canceled") or time.monotonic() > deadline:
            return {"job_id": job_id, "status": status, "seen": seen}
        time.sleep(0.5)


def step_unregister(s):
    addon_utils.disable(ADDON, default_set=True, handle_error=None)
    return {"still_registered": hasattr(bpy.types.WindowManager, "flamenco_last_job_id")}


def main():
    try:
        install()
        for s in ARGS["steps"]:
            entry = {"step": s["do"]}
            RESULT["steps"].append(entry)
            entry.update(globals()["step_" + s["do"]](s))
            save()
    except Exception:
        RESULT["exception"] = traceback.format_exc()
    save()


main()
