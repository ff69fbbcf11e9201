"""The Flamenco panel in Render Properties, and its job list sub-panel."""

from __future__ import annotations

import time

import bpy

from . import job_builder, job_types as job_types_mod, runtime, scene_data, ui_record

WARNINGS_SECONDS = 2.0
STATUS_ICONS = {
    "queued": "SORTTIME", "active": "PLAY", "completed": "CHECKMARK", "failed": "ERROR",
    "canceled": "X", "cancel-requested": "X", "paused": "PAUSE", "pause-requested": "PAUSE",
    "construction-failed": "ERROR", "requeued": "FILE_REFRESH", "waiting-for-files": "SORTTIME",
}
ACTION_ICONS = {"cancel": "X", "pause": "PAUSE", "resume": "PLAY", "requeue": "FILE_REFRESH"}


def progress_bar(layout, factor: float, text: str, owner=None, prop: str = "", percent: bool = True) -> None:
    """Blender 4's layout.progress() where it exists; a read-only slider before that.

    The slider shows its own value, so its text never repeats the percentage;
    `percent` puts it into the text where nothing else shows it."""
    factor = max(0.0, min(1.0, factor))
    if hasattr(layout, "progress"):
        shown = f"{factor:.0%}" + (f", {text}" if text else "") if percent else text
        layout.progress(factor=factor, type="BAR", text=shown)
    elif owner is not None:
        row = layout.row()
        row.enabled = False
        row.prop(owner, prop, slider=True, text=text)
    else:
        layout.label(text=f"{text} ({factor:.0%})")


def _warnings(context) -> tuple[list[str], str]:
    """(warnings, blocking error), recomputed at most every WARNINGS_SECONDS."""
    stamp, error, warnings = runtime.state.warnings_cache
    now = time.monotonic()
    if now - stamp < WARNINGS_SECONDS:
        return warnings, error
    p = scene_data.prefs()
    variables = runtime.state.variables
    try:
        plan = job_builder.plan_jobs(scene_data.scene_info(context.scene),
                                     scene_data.panel_settings(context.scene),
                                     scene_data.farm_settings(variables), runtime.state.job_types)
        warnings, error = plan.warnings, ""
        if p.file_mode == "shared" and variables is None:
            # Not known until the Manager's variables were fetched (Test Connection, submit).
            warnings = [w for w in warnings if "not on a path the farm knows" not in w]
    except job_builder.BuildError as ex:
        warnings, error = [], str(ex)
    runtime.state.warnings_cache = (now, error, warnings)
    return warnings, error


def _wrapped(layout, text: str, icon: str = "NONE", width: int = 60) -> None:
    import textwrap
    for i, line in enumerate(textwrap.wrap(text, width) or [""]):
        layout.label(text=line, icon=icon if i == 0 else "BLANK1")


class FLAMENCO_PT_render(bpy.types.Panel):
    bl_label = "Flamenco"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"

    def draw(self, context):
        layout = ui_record.wrap(self.layout, self.bl_idname)
        wm = context.window_manager
        p = scene_data.prefs()
        if p is None or not p.token:
            layout.label(text="Sign in to your Flamenco Server first.", icon="INFO")
            op = layout.operator("preferences.addon_show", text="Open Flamenco Preferences", icon="PREFERENCES")
            op.module = scene_data.ADDON_ID
            return
        layout.use_property_split = True
        layout.use_property_decorate = False
        s = context.scene.flamenco
        jt = runtime.state.job_type(s.job_type)
        self._draw_fields(context, layout, s, jt)
        if jt is not None:
            self._draw_type_settings(layout, s, jt)

        warnings, error = _warnings(context)
        # The button comes before the warnings: a warning that appears (unsaved changes,
        # a second later) must not push it away from under the mouse.
        sub = runtime.state.submission
        if sub is not None and not sub.done:
            progress_bar(layout, wm.flamenco_progress, wm.flamenco_status_text, wm, "flamenco_progress")
            layout.operator("flamenco.cancel_submission", icon="CANCEL")
        else:
            row = layout.row()
            row.scale_y = 1.5
            row.enabled = not error
            row.operator("flamenco.submit_job", icon="RENDER_ANIMATION")
            if wm.flamenco_status in ("DONE", "FAILED", "CANCELED") and wm.flamenco_status_text:
                icon = {"DONE": "CHECKMARK", "FAILED": "ERROR", "CANCELED": "CANCEL"}[wm.flamenco_status]
                _wrapped(layout, wm.flamenco_status_text, icon)
        if warnings or error:
            box = layout.box()
            if error:
                _wrapped(box, error, "ERROR")
            for w in warnings:
                _wrapped(box, w, "INFO")

    def _draw_fields(self, context, layout, s, jt) -> None:
        col = layout.column()
        row = col.row(align=True)
        row.prop(s, "job_type_choice", text="Job Type")
        row.operator("flamenco.test_connection", text="", icon="FILE_REFRESH")
        if not runtime.state.job_types:
            _wrapped(col, runtime.state.job_types_error or "Job types not loaded yet; press the refresh button.",
                     "ERROR")
        elif jt is not None and jt.error:
            _wrapped(col, jt.error, "ERROR")
        col.prop(s, "job_name")
        scene = context.scene
        if jt is None or jt.has("frames"):
            col.prop(s, "frame_range")
            if not s.frame_range:
                col.label(text=f"Scene range: {scene.frame_start}-{scene.frame_end}", icon="BLANK1")
        elif jt.has("frame"):
            col.label(text=f"Renders frame {scene.frame_current}, the scene's current frame", icon="BLANK1")
        if jt is None or jt.has("chunk_size"):
            col.prop(s, "chunk_size")
        col.prop(s, "priority")
        col.prop(s, "output_path")
        if jt is None or any(jt.has(k) for k in job_builder.VIDEO_FLAGS):
            col.prop(s, "make_video")
        if runtime.state.worker_tags is None:
            col.prop(s, "worker_tag")  # the Server does not list its workers' tags: free text
        else:
            col.prop(s, "worker_tag_choice", text="Worker Tag")
            if s.worker_tag and s.worker_tag not in runtime.state.worker_tags:
                _wrapped(col, f"No worker has the tag '{s.worker_tag}' now; the job will wait until one signs on.",
                         "INFO")
        col.prop(s, "start_paused")
        if runtime.state.job_type(job_builder.BAKE_TYPE) is not None:
            col.prop(s, "bake_then_render")

    def _draw_type_settings(self, layout, s, jt) -> None:
        items = [i for i in s.type_settings if i.job_type == jt.name]
        if s.bake_then_render:
            items += [i for i in s.type_settings if i.job_type == job_builder.BAKE_TYPE]
        wanted = {(jt.name, spec.key) for spec in jt.generic_settings}
        bake = runtime.state.job_type(job_builder.BAKE_TYPE)
        if s.bake_then_render and bake is not None:
            wanted |= {(bake.name, spec.key) for spec in bake.generic_settings}
        items = [i for i in items if (i.job_type, i.key) in wanted]
        if not items:
            return
        box = layout.box()
        box.label(text=f"{jt.title} settings")
        for item in items:
            label = item.label + (" (bake)" if item.job_type != jt.name else "") + (" *" if item.required else "")
            value = VALUE_PROPS.get(item.kind, "str_value")
            if item.kind == "choice":
                box.prop(item, "enum_value", text=label)
            elif item.kind == job_types_mod.LIST:
                box.prop_search(item, "text_value", bpy.data, "texts", text=label)
            elif item.optional:
                # An optional number: unticked, the job leaves it out ("empty keeps the file's").
                row = box.row(heading=label)
                row.prop(item, "use_value", text="")
                sub = row.row()
                sub.enabled = item.use_value
                sub.prop(item, value, text="")
            else:
                box.prop(item, value, text=label)


VALUE_PROPS = {job_types_mod.INT: "int_value", job_types_mod.FLOAT: "float_value",
               job_types_mod.BOOL: "bool_value", job_types_mod.STRING: "str_value"}


class FLAMENCO_PT_jobs(bpy.types.Panel):
    bl_label = "Jobs"
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_parent_id = "FLAMENCO_PT_render"

    @classmethod
    def poll(cls, context):
        p = scene_data.prefs()
        return p is not None and bool(p.token)

    def draw(self, context):
        runtime.state.panel_drawn_at = time.monotonic()
        layout = ui_record.wrap(self.layout, self.bl_idname)
        wm = context.window_manager
        row = layout.row()
        row.label(text=f"Updated {wm.flamenco_jobs_updated}" if wm.flamenco_jobs_updated else "Not loaded yet")
        row.prop(wm, "flamenco_jobs_everyone", text="Everyone's", toggle=True, icon="COMMUNITY")
        row.operator("flamenco.refresh_jobs", text="", icon="FILE_REFRESH")
        if wm.flamenco_jobs_error:
            _wrapped(layout, wm.flamenco_jobs_error, "ERROR")
        if not wm.flamenco_jobs and wm.flamenco_jobs_updated:
            layout.label(text="No jobs of the project yet." if wm.flamenco_jobs_everyone else "No jobs of yours yet.")
        for item in wm.flamenco_jobs:
            self._draw_job(layout, item, wm.flamenco_jobs_everyone)

    def _draw_job(self, layout, item, everyone: bool) -> None:
        box = layout.box()
        head = box.row()
        head.label(text=item.name, icon=STATUS_ICONS.get(item.status, "DOT"))
        if everyone and item.user:
            head.label(text=f"by {item.user}")
        head.label(text=item.status)
        progress_bar(box, item.progress / 100.0, item.eta, item, "progress")
        if item.reason:
            _wrapped(box, item.reason, "INFO")
        if item.message:
            _wrapped(box, item.message, item.message_icon or "INFO")
        icon = runtime.thumbnail_icon(item.job_id)
        if icon:
            box.template_icon(icon_value=icon, scale=6.0)
        row = box.row(align=True)
        for action in filter(None, item.actions.split(",")):
            op = row.operator("flamenco.job_action", text=action.capitalize(), icon=ACTION_ICONS.get(action, "NONE"))
            op.job_id, op.action = item.job_id, action
        op = row.operator("flamenco.open_job_page", text="", icon="URL")
        op.job_id = item.job_id
        op = row.operator("flamenco.fetch_outputs", text="", icon="IMPORT")
        op.job_id = item.job_id


classes = (FLAMENCO_PT_render, FLAMENCO_PT_jobs)
register, unregister = bpy.utils.register_classes_factory(classes)
