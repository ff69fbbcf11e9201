"""Flamenco: render on a self-hosted Flamenco farm from Blender.

The add-on is installed as the package `flamenco` (build_addon.py renames this
folder). Only the UI modules (props, prefs, operators_*, panels, runtime,
scene_data) import bpy, and only when Blender registers the add-on; the logic
modules (client, connection, job_types, job_builder, packing, submission,
joblist, outputs, background) are plain Python that pytest imports directly.
"""

bl_info = {
    "name": "Flamenco",
    "author": "Flamenco (Python) authors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties > Render > Flamenco",
    "description": "Render on your own Flamenco render farm: pack, upload, submit and follow jobs",
    "doc_url": "",
    "category": "Render",
}

_UI_MODULES = ("props", "prefs", "operators_submit", "operators_jobs", "panels", "runtime")


def _modules():
    import importlib
    return [importlib.import_module(f"{__name__}.{name}") for name in _UI_MODULES]


def register():
    for mod in _modules():
        mod.register()


def unregister():
    for mod in reversed(_modules()):
        mod.unregister()
