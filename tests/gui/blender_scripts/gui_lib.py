"""Helpers for GUI sessions: Blender with its real UI under Xvfb, driven by a script.

    xvfb-run blender --factory-startup [FILE.blend] --python SESSION.py -- ARGS_JSON

A session is a list of steps. Each step is a generator function run from a
bpy.app.timers callback, so Blender's event loop (redraws, timers, modal
operators, file loading) runs between its `yield`s; a step yields the seconds
to wait before it goes on. What a step returns is stored under its name in the
result file; an exception is stored instead and the session goes on with the
next step, so one broken point does not hide the others. The panels draw
through the add-on's recorder (FLAMENCO_UI_RECORD=1), and `drawn()` returns
what they drew at the last redraw.
"""

import json
import os
import sys
import time
import traceback

import addon_utils
import bpy

ARGS = json.loads(sys.argv[sys.argv.index("--") + 1])
RESULT = {"steps": {}, "order": [], "screenshots": []}
START = time.monotonic()


def save():
    with open(ARGS["out"], "w") as f:
        json.dump(RESULT, f, indent=1, default=str)


def addon_module(name):
    return sys.modules[f"flamenco.{name}"]


def prefs():
    return bpy.context.preferences.addons["flamenco"].preferences


def main_window():
    return bpy.context.window_manager.windows[0]


def big_area(kind="VIEW_3D"):
    """The largest area of the main window (the 3D viewport in the default layout)."""
    return max(main_window().screen.areas, key=lambda a: a.width * a.height)


def show_render_properties():
    """Turn the big area into a Properties editor on the Render tab, scrolled down to the
    Flamenco panels, so they draw large (a generator: the new editor exists a moment later)."""
    area = big_area()
    if area.type != "PROPERTIES":
        area.type = "PROPERTIES"
        yield 0.2
    area.spaces.active.context = "RENDER"
    area.tag_redraw()
    yield 0.2
    scroll_to_bottom(area)
    return area


def override(area=None):
    window = main_window()
    area = area or big_area()
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region, screen=window.screen)


def redraw_all():
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()


def drawn(panel):
    """What `panel` drew last, as a flat list of entries (see blender_addon/ui_record.py)."""
    tree = addon_module("ui_record").drawn.get(panel)
    return tree.flat() if tree is not None else None


def wait_until(cond, timeout, step=0.1, what="a condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        yield step


def fresh_draw(panel, timeout=10.0):
    """Redraw and wait until `panel` was drawn again; its entries."""
    counts = addon_module("ui_record").draw_counts
    before = counts.get(panel, 0)
    redraw_all()
    yield from wait_until(lambda: counts.get(panel, 0) > before, timeout, 0.05, f"a redraw of {panel}")
    # One more frame, so values set by the draw (and timers it started) settle.
    before = counts[panel]
    redraw_all()
    yield from wait_until(lambda: counts.get(panel, 0) > before, timeout, 0.05, f"a redraw of {panel}")
    return drawn(panel)


def scroll_to_bottom(area):
    with override(area):
        for _ in range(3):
            bpy.ops.view2d.scroll_down(deltay=10000)
    area.tag_redraw()


def panel_screenshot(name):
    """The big Properties editor, scrolled down to the Flamenco panels; its path (a generator)."""
    area = big_area()
    scroll_to_bottom(area)
    yield 0.3
    return screenshot(name, area)


def screenshot(name, area=None):
    """A PNG of the area (or the whole window) in the artifacts folder; its path."""
    folder = ARGS["artifacts"]
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.png")
    window = main_window()
    if area is None:
        with bpy.context.temp_override(window=window):
            bpy.ops.screen.screenshot(filepath=path)
    else:
        with bpy.context.temp_override(window=window, area=area, screen=window.screen):
            bpy.ops.screen.screenshot_area(filepath=path)
    RESULT["screenshots"].append(path)
    return path


def install_addon():
    bpy.ops.preferences.addon_install(filepath=ARGS["zip"], overwrite=True)
    addon_utils.enable("flamenco", default_set=True, handle_error=None)


def run(steps):  # noqa: C901 - a small scheduler
    """Run the steps (functions returning generators) one after the other, then quit Blender."""
    queue = list(steps)
    state = {"gen": None, "name": None, "t0": 0.0}

    def record(name, **what):
        RESULT["steps"][name] = {"t": round(time.monotonic() - START, 2),
                                 "seconds": round(time.monotonic() - state["t0"], 2), **what}
        RESULT["order"].append(name)
        save()

    def tick():
        while True:
            if state["gen"] is None:
                if not queue:
                    save()
                    bpy.ops.wm.quit_blender()
                    return None
                fn = queue.pop(0)
                state["name"], state["t0"] = fn.__name__, time.monotonic()
                try:
                    result = fn()
                except Exception:  # noqa: BLE001
                    record(state["name"], exception=traceback.format_exc())
                    continue
                if not hasattr(result, "__next__"):
                    record(state["name"], result=result)
                    continue
                state["gen"] = result
            try:
                wait = next(state["gen"])
                return max(0.01, float(wait or 0.01))
            except StopIteration as stop:
                record(state["name"], result=stop.value)
            except Exception:  # noqa: BLE001
                record(state["name"], exception=traceback.format_exc())
            state["gen"] = None

    # Persistent: the session goes on across File > New and File > Open.
    bpy.app.timers.register(tick, first_interval=0.5, persistent=True)
