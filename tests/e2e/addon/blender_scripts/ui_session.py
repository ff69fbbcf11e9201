"""The add-on in Blender's real UI (under a virtual X display): panels drawn, the modal submit.

    xvfb-run blender --factory-startup SCENE.blend --python ui_session.py -- ARGS

A chain of bpy.app.timers callbacks plays the artist: show the Render tab (so the
Flamenco panels draw), press Render on Flamenco (the modal operator with its thread),
count how often the UI got control while it ran, wait for the job panel to refresh
itself, cancel the job from its row, start a second submission and cancel that, quit.
"""

import json
import sys
import time
import traceback

import addon_utils
import bpy

ARGS = json.loads(sys.argv[sys.argv.index("--") + 1])
RESULT = {"events": [], "ticks_while_submitting": 0, "statuses": []}


def save():
    with open(ARGS["out"], "w") as f:
        json.dump(RESULT, f, indent=1, default=str)


def note(what, **kw):
    RESULT["events"].append({"what": what, "t": round(time.monotonic() - START, 2), **kw})
    save()


START = time.monotonic()


def props_area():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "PROPERTIES":
                return window, area
    raise RuntimeError("no Properties editor in the default layout")


def override():
    window, area = props_area()
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)


def runtime():
    return sys.modules["flamenco.runtime"]


def run_steps(steps):
    """Run generator-based steps: each yield is seconds to wait before going on."""
    gen = steps()

    def tick():
        try:
            return next(gen)
        except StopIteration:
            return None
        except Exception:
            RESULT["exception"] = traceback.format_exc()
            save()
            bpy.ops.wm.quit_blender()
            return None
    bpy.app.timers.register(tick, first_interval=0.5)


def wait_until(cond, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        yield step


def steps():
    wm = bpy.context.window_manager
    bpy.ops.preferences.addon_install(filepath=ARGS["zip"], overwrite=True)
    addon_utils.enable("flamenco", default_set=True, handle_error=None)
    p = bpy.context.preferences.addons["flamenco"].preferences
    p.server_url = ARGS["server"]
    bpy.ops.flamenco.sign_in(username=ARGS["username"], password=ARGS["password"])
    p.project = ARGS["project"]
    note("signed in", token=bool(p.token), job_types=len(wm.flamenco_job_types))

    _, area = props_area()
    area.spaces[0].context = "RENDER"
    area.tag_redraw()
    yield from wait_until(lambda: runtime().state.panel_drawn_at > 0, 10)
    note("panels drawn")

    # Every status the modal operator puts on the panel, as it applies it: a fast submission
    # applies several in one timer event, between two polls of the loop below.
    ops = sys.modules["flamenco.operators_submit"]
    apply = ops._apply

    def recording_apply(context, op, sub, msg):
        apply(context, op, sub, msg)
        text = context.window_manager.flamenco_status_text
        if text and (not RESULT["statuses"] or RESULT["statuses"][-1] != text):
            RESULT["statuses"].append(text)
    ops._apply = recording_apply

    scene = bpy.context.scene
    scene.flamenco.frame_range = "1-2"
    scene.flamenco.start_paused = True
    with override():
        started = bpy.ops.flamenco.submit_job("INVOKE_DEFAULT")
    note("submit invoked", result=sorted(started))

    def running():
        sub = runtime().state.submission
        RESULT["ticks_while_submitting"] += 1
        return sub is None or not sub.done or wm.flamenco_status == "SUBMITTING"
    yield from wait_until(lambda: not running(), 60, step=0.02)
    ops._apply = apply
    note("submitted", status=wm.flamenco_status, job_id=wm.flamenco_last_job_id, text=wm.flamenco_status_text)

    job_id = wm.flamenco_last_job_id
    yield from wait_until(lambda: any(j.job_id == job_id for j in wm.flamenco_jobs), 30)
    note("job panel refreshed by itself", jobs=[(j.job_id, j.status) for j in wm.flamenco_jobs])

    with override():
        bpy.ops.flamenco.job_action(job_id=job_id, action="cancel")
    yield from wait_until(lambda: any(j.job_id == job_id and j.status in ("canceled", "cancel-requested")
                                      for j in wm.flamenco_jobs), 20)
    note("job canceled", jobs=[(j.job_id, j.status) for j in wm.flamenco_jobs])

    with override():
        bpy.ops.flamenco.submit_job("INVOKE_DEFAULT")
        bpy.ops.flamenco.cancel_submission()
    yield from wait_until(lambda: wm.flamenco_status in ("CANCELED", "DONE", "FAILED"), 30)
    note("second submission", status=wm.flamenco_status, text=wm.flamenco_status_text)
    yield 1.0  # a few more redraws of the panel in its final state
    note("done")
    bpy.ops.wm.quit_blender()


run_steps(steps)
