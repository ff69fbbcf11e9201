"""The job panel's buttons: refresh, cancel/pause/resume/requeue, web page, outputs.

The requests run through runtime.state.runner: on a thread in the UI (the
timer applies the answer), at once in background mode, so a script sees the
result when the operator returns.
"""

from __future__ import annotations

import logging
import os
import webbrowser

import bpy
from bpy.props import EnumProperty, StringProperty

from . import background, job_builder, outputs, runtime, scene_data
from .client import ClientError
from .joblist import ACTIONS, job_page_url

log = logging.getLogger(__name__)

ACTION_ITEMS = [(name, name.capitalize(), f"Ask the Server to {name} the job") for name in ACTIONS]


def _local_output(context, job_id: str) -> str:
    known = runtime.state.local_outputs.get(job_id)
    if known:
        return known
    scene = scene_data.scene_info(context.scene, with_dependencies=False)
    panel = scene_data.panel_settings(context.scene)
    row = runtime.state.joblist.row(job_id)
    name = row.name if row else (panel.job_name or scene.stem)
    return job_builder.local_output_pattern(panel.output_path, scene, name)


def _sync_result(op) -> set[str]:
    """Background mode: apply what the runner did, and report it."""
    msgs = runtime.apply_messages()
    for msg in msgs:
        if isinstance(msg, (background.JobsFailed, background.ActionFailed, background.OutputsFailed)):
            op.report({"ERROR"}, msg.message)
            return {"CANCELLED"}
        if isinstance(msg, (background.ActionDone, background.OutputsFetched)):
            op.report({"INFO"}, msg.message)
    return {"FINISHED"}


class FLAMENCO_OT_refresh_jobs(bpy.types.Operator):
    """Fetch your recent jobs from the Server"""
    bl_idname = "flamenco.refresh_jobs"
    bl_label = "Refresh Jobs"

    def execute(self, context):
        p = scene_data.prefs()
        if p is None or not p.token:
            self.report({"ERROR"}, "Not signed in to Flamenco.")
            return {"CANCELLED"}
        runtime.request_jobs_refresh(apply=False)
        if runtime.state.runner.synchronous:
            return _sync_result(self)
        return {"FINISHED"}


class FLAMENCO_OT_job_action(bpy.types.Operator):
    """Ask the Server to change the job's status"""
    bl_idname = "flamenco.job_action"
    bl_label = "Job Action"

    job_id: StringProperty()
    action: EnumProperty(items=ACTION_ITEMS)

    @classmethod
    def description(cls, context, properties):
        return f"Ask the Server to {properties.action} this job"

    def execute(self, context):
        if not self.job_id:
            self.report({"ERROR"}, "No job given.")
            return {"CANCELLED"}
        client = scene_data.make_client()
        job_id, action = self.job_id, self.action
        runtime.state.runner.submit(f"action-{job_id}", lambda: background.job_action(client, job_id, action))
        if runtime.state.runner.synchronous:
            return _sync_result(self)
        return {"FINISHED"}


class FLAMENCO_OT_open_job_page(bpy.types.Operator):
    """Open the job's page on the Server in a web browser"""
    bl_idname = "flamenco.open_job_page"
    bl_label = "Open Job Page"

    job_id: StringProperty()

    def execute(self, context):
        p = scene_data.prefs()
        row = runtime.state.joblist.row(self.job_id)
        url = job_page_url(p.server_url if p else "", self.job_id, row.doc if row else None)
        try:
            opened = webbrowser.get().open(url)  # the default browser ($BROWSER, xdg-open, ...), no other
        except webbrowser.Error:
            opened = False
        if opened:
            return {"FINISHED"}
        context.window_manager.clipboard = url
        message = f"No web browser could be started; the job's address is on the clipboard: {url}"
        runtime.set_job_message(self.job_id, message, "ERROR")
        self.report({"WARNING"}, message)
        return {"CANCELLED"}


class FLAMENCO_OT_fetch_outputs(bpy.types.Operator):
    """Download the job's outputs (upload mode), or open its output folder (shared storage)"""
    bl_idname = "flamenco.fetch_outputs"
    bl_label = "Fetch Outputs"

    job_id: StringProperty()

    def execute(self, context):
        p = scene_data.prefs()
        client = scene_data.make_client()
        job_id = self.job_id
        if p.file_mode == "shared":
            return self._open_folder(client, p, job_id)
        try:
            local_output = _local_output(context, job_id)
        except job_builder.BuildError as ex:
            self.report({"ERROR"}, str(ex))
            return {"CANCELLED"}
        runtime.state.runner.submit(
            f"outputs-{job_id}", lambda: background.fetch_job_outputs(client, job_id, local_output))
        if runtime.state.runner.synchronous:
            return _sync_result(self)
        self.report({"INFO"}, f"Fetching outputs into {os.path.dirname(local_output)}")
        return {"FINISHED"}

    def _open_folder(self, client, p, job_id):
        try:
            doc = client.job(job_id)
            variables = background.farm_variables(client, p.project, p.manager)
            folder = outputs.shared_output_folder(doc, variables, job_builder.local_platform())
        except (ClientError, outputs.OutputError) as ex:
            self.report({"ERROR"}, str(ex))
            return {"CANCELLED"}
        if not os.path.isdir(folder):
            runtime.set_job_message(job_id, f"The output folder {folder} does not exist (yet).", "ERROR")
            self.report({"WARNING"}, f"The output folder {folder} does not exist (yet).")
            return {"CANCELLED"}
        if not bpy.app.background:
            bpy.ops.wm.path_open(filepath=folder)
        runtime.set_job_message(job_id, f"Output folder: {folder}")
        self.report({"INFO"}, f"Output folder: {folder}")
        return {"FINISHED"}


classes = (FLAMENCO_OT_refresh_jobs, FLAMENCO_OT_job_action, FLAMENCO_OT_open_job_page,
           FLAMENCO_OT_fetch_outputs)
register, unregister = bpy.utils.register_classes_factory(classes)
