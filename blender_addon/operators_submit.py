"""Render on Flamenco: the submit operator, and Cancel.

From the button it runs modal: the scene is saved to a temporary copy on the
main thread, then a Submission packs, uploads and submits on a thread while a
timer event drains its messages into the panel's progress bar. From a script,
or in background mode (`blender -b`), execute() runs the same steps to the end
and returns FINISHED only once the job exists on the Server; its id is then in
`context.window_manager.flamenco_last_job_id`.
"""

from __future__ import annotations

import logging
import os

import bpy

from . import background, job_builder, props, runtime, scene_data
from .client import ClientError
from .submission import Canceled, Failed, Note, Progress, Submission, Submitted

log = logging.getLogger(__name__)

TEMP_SUFFIX = ".flamenco.blend"


class PrepareError(Exception):
    pass


def _prepare(context) -> Submission:
    """Everything that needs bpy: settings, plan, the temporary copy. Raises PrepareError."""
    p = scene_data.prefs()
    if p is None or not p.token:
        raise PrepareError("Not signed in to Flamenco. Sign in in the add-on preferences.")
    client = scene_data.make_client()
    if not runtime.state.job_types:
        error = runtime.fetch_job_types_now()
        if error:
            raise PrepareError(f"Could not get the job types from the Server: {error}")
    runtime.sync_type_settings(context.scene)
    variables = None
    if p.file_mode == "shared":
        try:
            variables = background.farm_variables(client, p.project, p.manager)
            runtime.state.variables = variables
        except ClientError as ex:
            raise PrepareError(f"Could not get the Manager's path variables: {ex}") from None
    farm = scene_data.farm_settings(variables)
    scene = scene_data.scene_info(context.scene)
    try:
        plan = job_builder.plan_jobs(scene, scene_data.panel_settings(context.scene), farm,
                                     runtime.state.job_types)
    except job_builder.BuildError as ex:
        raise PrepareError(str(ex)) from None

    temp = os.path.join(scene.blend_dir, scene.stem + TEMP_SUFFIX)
    try:
        _save_copy(context, temp)
    except RuntimeError as ex:
        raise PrepareError(f"Could not save a temporary copy of the file next to it ({temp}): {ex}") from None
    return Submission(client, plan, farm, temp, blend_name=os.path.basename(scene.blend_path),
                      cleanup=[temp])


def _save_copy(context, path: str) -> None:
    """Save the scene as it is now to `path`, the same bytes for the same scene.

    The Server stores files by content, so an unchanged scene must give an identical
    .blend or it is uploaded again. Two things in the file are not the scene: the
    window manager's Flamenco properties (taken out while saving) and, in background
    mode, where Blender never processes its notifier queue, the pointers of that queue:
    the first save of a session queues a "file saved" notifier that every later save
    then has. So in background mode the first save is done twice.
    """
    times = 2 if bpy.app.background and not runtime.state.saved_once else 1
    for _ in range(times):
        with runtime.session_props_unset(context.window_manager, props.WM_PROP_NAMES):
            bpy.ops.wm.save_as_mainfile(filepath=path, copy=True, compress=False, relative_remap=True,
                                        check_existing=False)
    runtime.state.saved_once = True


def _apply(context, op, sub: Submission, msg) -> None:
    wm = context.window_manager
    if isinstance(msg, Progress):
        wm.flamenco_status = "SUBMITTING"
        if msg.fraction is not None:
            wm.flamenco_progress = msg.fraction
        wm.flamenco_status_text = f"{msg.stage}: {msg.text}" if msg.text else msg.stage
    elif isinstance(msg, Note):
        op.report({"WARNING"}, msg.text)
    elif isinstance(msg, Submitted):
        wm.flamenco_status = "DONE"
        wm.flamenco_progress = 1.0
        wm.flamenco_status_text = msg.summary()
        wm.flamenco_last_job_id = msg.job_id
        wm.flamenco_last_job_ids = ",".join(msg.job_ids)
        wm.flamenco_last_uploaded_files = msg.uploaded_files
        wm.flamenco_last_packed_files = msg.files
        for job_id in msg.job_ids:
            runtime.state.local_outputs[job_id] = sub.plan.local_output
        op.report({"INFO"}, msg.summary())
    elif isinstance(msg, Failed):
        log.error("submitting failed: %s", msg.message)
        wm.flamenco_status = "FAILED"
        wm.flamenco_status_text = msg.message
        op.report({"ERROR"}, msg.message)
    elif isinstance(msg, Canceled):
        wm.flamenco_status = "CANCELED"
        wm.flamenco_status_text = msg.message
        op.report({"WARNING"}, msg.message)


class FLAMENCO_OT_submit_job(bpy.types.Operator):
    """Pack this scene and submit it as a job to the Flamenco Server"""
    bl_idname = "flamenco.submit_job"
    bl_label = "Render on Flamenco"
    bl_options = {"REGISTER"}

    _timer = None
    _submission: Submission | None = None

    @classmethod
    def poll(cls, context):
        sub = runtime.state.submission
        return sub is None or sub.done

    def _start(self, context) -> Submission | None:
        wm = context.window_manager
        wm.flamenco_status, wm.flamenco_progress = "SUBMITTING", 0.0
        wm.flamenco_status_text = "Saving a temporary copy"
        try:
            sub = _prepare(context)
        except PrepareError as ex:
            log.error("cannot submit: %s", ex)
            wm.flamenco_status, wm.flamenco_status_text = "FAILED", str(ex)
            self.report({"ERROR"}, str(ex))
            return None
        for warning in sub.plan.warnings:
            self.report({"WARNING"}, warning)
        runtime.state.submission = sub
        return sub

    def _finish(self, context, sub: Submission) -> set[str]:
        for msg in sub.drain():
            _apply(context, self, sub, msg)
        runtime.redraw()
        if isinstance(sub.result, Submitted):
            runtime.request_jobs_refresh()
            p = scene_data.prefs()
            if p.open_browser_after_submit and not bpy.app.background:
                bpy.ops.flamenco.open_job_page(job_id=sub.result.job_id)
            return {"FINISHED"}
        return {"CANCELLED"}

    def execute(self, context):
        sub = self._start(context)
        if sub is None:
            return {"CANCELLED"}
        sub.run()
        return self._finish(context, sub)

    def invoke(self, context, event):
        if bpy.app.background:
            return self.execute(context)
        sub = self._start(context)
        if sub is None:
            return {"CANCELLED"}
        self._submission = sub
        sub.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        sub = self._submission
        if event.type != "TIMER" or sub is None:
            return {"PASS_THROUGH"}
        if not sub.done:
            for msg in sub.drain():
                _apply(context, self, sub, msg)
            runtime.redraw()
            return {"PASS_THROUGH"}
        if sub.thread is not None:
            sub.thread.join(timeout=5.0)
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context, sub)


class FLAMENCO_OT_cancel_submission(bpy.types.Operator):
    """Stop the running submission; nothing is submitted"""
    bl_idname = "flamenco.cancel_submission"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        sub = runtime.state.submission
        return sub is not None and not sub.done

    def execute(self, context):
        runtime.state.submission.cancel()
        context.window_manager.flamenco_status_text = "Canceling..."
        return {"FINISHED"}


classes = (FLAMENCO_OT_submit_job, FLAMENCO_OT_cancel_submission)
register, unregister = bpy.utils.register_classes_factory(classes)
