"""The Flamenco panel in Render Properties, and its job list sub-panel."""

from __future__ import annotations

import time

import bpy

from . import job_builder, job_types as job_types_mod, runtime, scene_data

WARNINGS_SECONDS = 2.0
STATUS_ICONS = {
    "queued": "SORTTIME", "active": "PLAY", "completed": "CHECKMARK", "failed": "ERROR",
    "canceled": "X", "cancel-requested": "X", "paused": "PAUSE", "pause-requested": "PAUSE",
    "construction-failed": "ERROR", "requeued": "FILE_REFRESH", "waiting-for-files": "SORTTIME",
}
ACTION_ICONS = {"cancel": "X", "pause": "PAUSE", "resume": "PLAY", "requeue": "FILE_REFRESH"}


def progress_bar(layout, factor: float, text: str, owner=None, prop: str = "") -> None:
    """Blender 4's layout.progress() where it exists; a read-only slider before that."""
    if hasattr(layout, "progress"):
        layout.progress(factor=max(0.0, min(1.0, factor)), type="BAR", text=text)
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
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        wm = context.window_manager
        p = scene_data.prefs()
        if p is None or not p.token:
            layout.label(text="Sign in to your Flamenco Server first.", icon="INFO")
            op = layout.operator("preferences.addon_show", text="Open Flamenco Preferences", icon="PREFERENCES")
            op.module = scene_data.ADDON_ID
            return
        s = context.scene.flamenco
        col = layout.column()
        row = col.row(align=True)
        row.prop_search(s, "job_type", wm, "flamenco_job_types", text="Job Type")
        row.operator("flamenco.test_connection", text="", icon="FILE_REFRESH")
        jt = runtime.state.job_type(s.job_type)
        if not runtime.state.job_types:
            msg = runtime.state.job_types_error or "Job types not loaded yet; press the refresh button."
            _wrapped(col, msg, "ERROR")
        col.prop(s, "job_name")
        col.prop(s, "frame_range")
        if not s.frame_range:
            col.label(text=f"Scene range: {context.scene.frame_start}-{context.scene.frame_end}", icon="BLANK1")
        col.prop(s, "chunk_size")
        col.prop(s, "priority")
        col.prop(s, "output_path")
        if jt is None or any(jt.has(k) for k in job_builder.VIDEO_FLAGS):
            col.prop(s, "make_video")
        col.prop(s, "worker_tag")
        col.prop(s, "start_paused")
        if runtime.state.job_type(job_builder.BAKE_TYPE) is not None:
            col.prop(s, "bake_then_render")
        if jt is not None:
            self._draw_type_settings(layout, s, jt)

        warnings, error = _warnings(context)
        if warnings or error:
            box = layout.box()
            if error:
                _wrapped(box, error, "ERROR")
            for w in warnings:
                _wrapped(box, w, "INFO")

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
        box.label(text=f"{jt.title} Settings")
        mode = scene_data.prefs().file_mode
        types = {jt.name: jt, job_builder.BAKE_TYPE: bake}
        for item in items:
            label = item.label + (" (bake)" if item.job_type != jt.name else "") + (" *" if item.required else "")
            spec = types[item.job_type].spec(item.key) if types.get(item.job_type) else None
            row = box.column()
            row.enabled = spec is None or spec.applies(mode)  # the Server refuses it in another mode
            if item.kind == "choice":
                row.prop(item, "enum_value", text=label)
            elif item.kind == job_types_mod.INT:
                row.prop(item, "int_value", text=label)
            elif item.kind == job_types_mod.FLOAT:
                row.prop(item, "float_value", text=label)
            elif item.kind == job_types_mod.BOOL:
                row.prop(item, "bool_value", text=label)
            elif item.kind == job_types_mod.LIST:
                row.prop_search(item, "text_value", bpy.data, "texts", text=label)
            else:
                row.prop(item, "str_value", text=label)


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
        layout = self.layout
        wm = context.window_manager
        row = layout.row()
        row.label(text=f"Updated {wm.flamenco_jobs_updated}" if wm.flamenco_jobs_updated else "Not loaded yet")
        row.operator("flamenco.refresh_jobs", text="", icon="FILE_REFRESH")
        if wm.flamenco_jobs_error:
            _wrapped(layout, wm.flamenco_jobs_error, "ERROR")
        elif wm.flamenco_jobs_message:
            _wrapped(layout, wm.flamenco_jobs_message, "INFO")
        if not wm.flamenco_jobs and wm.flamenco_jobs_updated:
            layout.label(text="No jobs yet.")
        for item in wm.flamenco_jobs:
            self._draw_job(layout, item)

    def _draw_job(self, layout, item) -> None:
        box = layout.box()
        head = box.row()
        head.label(text=item.name, icon=STATUS_ICONS.get(item.status, "DOT"))
        head.label(text=item.status)
        text = f"{item.progress:.0f}%" + (f", {item.eta}" if item.eta else "")
        progress_bar(box, item.progress / 100.0, text, item, "progress")
        if item.reason:
            _wrapped(box, item.reason, "INFO")
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
