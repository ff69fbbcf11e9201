"""The panel's properties: per scene (saved in the .blend) and per session (window manager)."""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

from . import runtime

_ENUM_CACHE: dict = {}
"""Blender needs the items of a dynamic enum kept alive on the Python side."""


NO_JOB_TYPE = "-"
ANY_WORKER = "*"
"""The enum identifier of "any worker" (an empty identifier is a separator in Blender's enums)."""


def _kept(items: list[tuple]) -> list[tuple]:
    """`items` numbered (the enum's values), kept alive; the same list for the same items."""
    numbered = [(ident, name, desc, i) for i, (ident, name, desc) in enumerate(items)]
    return _ENUM_CACHE.setdefault(tuple(numbered), numbered)


def _value_of(items: list[tuple], ident: str) -> int:
    return next((value for i, _, _, value in items if i == ident), 0)


def _job_type_items(self, context):
    """The job types artists use, by label (the scene's own type too, so it is never lost)."""
    current = self.job_type
    known = runtime.state.job_types
    items = [(jt.name, jt.title, jt.description or jt.name) for jt in known
             if jt.artist_visible or jt.name == current]
    if current and not any(i[0] == current for i in items):
        items.append((current, f"{current} (not on the Server)" if known else current, ""))
    return _kept(items or [(NO_JOB_TYPE, "(no job types)", "")])


def _get_job_type(self) -> int:
    return _value_of(_job_type_items(self, None), self.job_type)


def _set_job_type(self, value: int) -> None:
    name = next(i for i, _, _, v in _job_type_items(self, None) if v == value)
    if name != NO_JOB_TYPE:
        self.job_type = name


def _worker_tag_items(self, context):
    """'Any worker', then the tags the farm's workers have (and the scene's own tag)."""
    tags = list(runtime.state.worker_tags or ())
    items = [(ANY_WORKER, "Any Worker", "Any worker may take the job's tasks")]
    items += [(t, t, f"Only workers with the tag '{t}'") for t in tags]
    if self.worker_tag and self.worker_tag not in tags:
        items.append((self.worker_tag, f"{self.worker_tag} (no worker has it)",
                      "No worker of the farm has this tag; the job would wait until one signs on"))
    return _kept(items)


def _get_worker_tag(self) -> int:
    return _value_of(_worker_tag_items(self, None), self.worker_tag or ANY_WORKER)


def _set_worker_tag(self, value: int) -> None:
    tag = next(i for i, _, _, v in _worker_tag_items(self, None) if v == value)
    self.worker_tag = "" if tag == ANY_WORKER else tag


def _choice_items(self, context):
    key = self.choices
    items = _ENUM_CACHE.get(key)
    if items is None:
        items = [(c, c, "") for c in key.split(",") if c] or [("", "(none)", "")]
        _ENUM_CACHE[key] = items
    return items


def _choice_update(self, context):
    self.str_value = self.enum_value


class FLAMENCO_PG_type_setting(bpy.types.PropertyGroup):
    """One setting of a job type, as the Server's schema describes it."""
    job_type: StringProperty()
    key: StringProperty()
    kind: StringProperty(default="string")
    label: StringProperty()
    description: StringProperty()
    choices: StringProperty()
    required: BoolProperty()
    optional: BoolProperty(description="A number the job may leave out (the Server then uses its own)")
    use_value: BoolProperty(name="Set", description="Send this value; unticked, the job leaves it out")
    str_value: StringProperty(name="Value")
    int_value: IntProperty(name="Value")
    float_value: FloatProperty(name="Value")
    bool_value: BoolProperty(name="Value")
    enum_value: EnumProperty(name="Value", items=_choice_items, update=_choice_update)
    text_value: PointerProperty(name="Text", type=bpy.types.Text,
                                description="A text data-block; each line is one item")


def _job_type_update(self, context):
    runtime.sync_type_settings(context.scene)


class FLAMENCO_PG_scene(bpy.types.PropertyGroup):
    """What the Flamenco panel in Render Properties holds; saved with the scene."""
    job_type: StringProperty(name="Job Type", default="blender-render", update=_job_type_update,
                             description="The kind of job (its name on the Server)")
    job_type_choice: EnumProperty(name="Job Type", items=_job_type_items, get=_get_job_type, set=_set_job_type,
                                  description="The kind of job; the list comes from the Server")
    job_name: StringProperty(name="Job Name", description="Empty: the .blend file's name")
    frame_range: StringProperty(
        name="Frames", description="Frames to render, like '1-250' or '1-10,20,30-40x2'. "
                                   "Empty: the scene's frame range")
    chunk_size: IntProperty(name="Chunk Size", default=1, min=1, soft_max=100,
                            description="Frames per task: one worker renders this many in one go")
    priority: IntProperty(name="Priority", default=50, min=1, max=100,
                          description="Higher runs first (1-100)")
    output_path: StringProperty(
        name="Output", subtype="FILE_PATH",
        description="Where the frames go, with '#' for the frame number. Empty: "
                    "//render/<job name>/######. '{name}' is replaced by the job name")
    make_video: BoolProperty(name="Make a Video", description="Encode the frames into a video at "
                             "the scene's frame rate once they are rendered")
    worker_tag: StringProperty(name="Worker Tag", description="Only workers with this tag take the "
                               "job's tasks. Empty: any worker")
    worker_tag_choice: EnumProperty(name="Worker Tag", items=_worker_tag_items, get=_get_worker_tag,
                                    set=_set_worker_tag, description="Only workers with this tag take the job's "
                                                                     "tasks; the list holds the farm's tags")
    start_paused: BoolProperty(name="Start Paused", description="Submit the job paused; resume it "
                               "from the job list when you are ready")
    bake_then_render: BoolProperty(
        name="Bake, Then Render", update=_job_type_update,
        description="Submit a simulation bake job first, and the render job to run after it")
    type_settings: CollectionProperty(type=FLAMENCO_PG_type_setting)

    dynamic_enums = {"job_type_choice": _job_type_items, "worker_tag_choice": _worker_tag_items}
    """The items functions of the dynamic enums, for the panels' test mode (ui_record.py)."""


class FLAMENCO_PG_job_type(bpy.types.PropertyGroup):
    label: StringProperty()
    description: StringProperty()


class FLAMENCO_PG_job(bpy.types.PropertyGroup):
    """One row of the job panel (refreshed from the Server)."""
    job_id: StringProperty()
    job_type: StringProperty()
    status: StringProperty()
    progress: FloatProperty(min=0.0, max=100.0, subtype="PERCENTAGE", precision=0)
    eta: StringProperty()
    reason: StringProperty()
    actions: StringProperty()
    user: StringProperty()
    message: StringProperty(description="The outcome of the last thing done to this job from here")
    message_icon: StringProperty(default="INFO")


class FLAMENCO_PG_name(bpy.types.PropertyGroup):
    """A name in a list (projects, managers) for the preference search fields."""


def _jobs_filter_update(self, context):
    runtime.request_jobs_refresh()


STATUS_ITEMS = [
    ("IDLE", "Idle", ""),
    ("SUBMITTING", "Submitting", ""),
    ("DONE", "Submitted", ""),
    ("FAILED", "Failed", ""),
    ("CANCELED", "Canceled", ""),
]

classes = (FLAMENCO_PG_type_setting, FLAMENCO_PG_scene, FLAMENCO_PG_job_type, FLAMENCO_PG_job,
           FLAMENCO_PG_name)
_register, _unregister = bpy.utils.register_classes_factory(classes)

_WM_PROPS = {
    "flamenco_last_job_id": lambda: StringProperty(
        name="Last Job ID", description="The id of the last job this Blender submitted"),
    "flamenco_last_job_ids": lambda: StringProperty(description="All ids of the last submission, comma-separated"),
    "flamenco_last_uploaded_files": lambda: IntProperty(description="Files the last submission uploaded"),
    "flamenco_last_packed_files": lambda: IntProperty(description="Files the last submission's job has"),
    "flamenco_status": lambda: EnumProperty(items=STATUS_ITEMS, default="IDLE"),
    "flamenco_status_text": lambda: StringProperty(),
    "flamenco_progress": lambda: FloatProperty(min=0.0, max=1.0, subtype="FACTOR", name="Progress"),
    "flamenco_job_types": lambda: CollectionProperty(type=FLAMENCO_PG_job_type),
    "flamenco_jobs": lambda: CollectionProperty(type=FLAMENCO_PG_job),
    "flamenco_jobs_error": lambda: StringProperty(),
    "flamenco_jobs_updated": lambda: StringProperty(),
    "flamenco_jobs_everyone": lambda: BoolProperty(
        name="Everyone's Jobs", update=_jobs_filter_update,
        description="Show the jobs of everyone in the project, not only yours"),
}

WM_PROP_NAMES = tuple(_WM_PROPS)


def register() -> None:
    _register()
    bpy.types.Scene.flamenco = PointerProperty(type=FLAMENCO_PG_scene)
    for name, make in _WM_PROPS.items():
        setattr(bpy.types.WindowManager, name, make())


def unregister() -> None:
    for name in _WM_PROPS:
        if hasattr(bpy.types.WindowManager, name):
            delattr(bpy.types.WindowManager, name)
    del bpy.types.Scene.flamenco
    _unregister()
