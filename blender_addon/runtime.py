"""The add-on's state while Blender runs, and the timer that brings background results in.

Background threads never touch bpy. They put messages on queues; `tick()`, a
bpy.app.timers callback on the main thread, drains them, writes what they say
into window-manager properties (which the panels draw) and asks for a redraw.
It also starts a job-list refresh every few seconds while the job panel is on
screen.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time

import bpy

from . import background, job_types as job_types_mod, scene_data
from .joblist import JobList
from .sharedcode import variables as variables_mod

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
REFRESH_SECONDS = 5.0
PANEL_VISIBLE_SECONDS = 15.0


class State:
    def __init__(self) -> None:
        self.runner = background.Runner(synchronous=bpy.app.background)
        self.joblist = JobList()
        self.job_types: list[job_types_mod.JobType] = []
        self.job_types_error = ""
        self.variables: variables_mod.Variables | None = None
        """The Manager's path variables (shared-storage mode), as last fetched."""
        self.submission = None
        self.saved_once = False
        self.local_outputs: dict[str, str] = {}
        self.panel_drawn_at = 0.0
        self.last_refresh = 0.0
        self.previews = None
        self.thumbnails: dict[str, str] = {}
        self.warnings_cache: tuple[float, str, list[str]] = (0.0, "", [])
        self.cache_dir = os.path.join(tempfile.gettempdir(), f"flamenco-addon-{os.getpid()}")

    def job_type(self, name: str) -> job_types_mod.JobType | None:
        return next((jt for jt in self.job_types if jt.name == name), None)


state = State()


def redraw() -> None:
    wm = bpy.context.window_manager
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ("PROPERTIES", "PREFERENCES"):
                area.tag_redraw()


# --- job types ---------------------------------------------------------------

def fetch_job_types_now(timeout: float = 10.0) -> str:
    """Fetch job types (and variables) on this thread: sign-in, submit, background mode.

    '' on success, else the error in words."""
    msg = background.fetch_server_info(scene_data.make_client(timeout), *_info_args())
    apply_server_info(msg)
    return msg.message if isinstance(msg, background.ServerInfoFailed) else ""


def refresh_job_types_async() -> None:
    client = scene_data.make_client()
    if not client.url or not client.token:
        return
    args = _info_args()
    state.runner.submit("server-info", lambda: background.fetch_server_info(client, *args))


def _info_args() -> tuple[str, str, bool]:
    p = scene_data.prefs()
    if p is None:
        return "", "", False
    return p.project, p.manager, p.file_mode == "shared"


def apply_server_info(msg) -> None:
    if isinstance(msg, background.ServerInfoFailed):
        state.job_types_error = msg.message
        return
    state.variables = msg.variables
    apply_job_types(msg.job_types)


def apply_job_types(types: list[job_types_mod.JobType]) -> None:
    state.job_types = types
    state.job_types_error = ""
    wm = bpy.context.window_manager
    if wm is not None:
        _fill_job_types(wm)
    for scene in bpy.data.scenes:
        sync_type_settings(scene)
    redraw()


def _fill_job_types(wm) -> None:
    wm.flamenco_job_types.clear()
    for jt in state.job_types:
        item = wm.flamenco_job_types.add()
        item.name = jt.name
        item.label = jt.title
        item.description = jt.description


class session_props_unset:
    """Takes the window manager's Flamenco properties out of the file while it is saved.

    Blender saves window-manager properties into the .blend. Without this, every
    temporary copy would differ by the last status text or job id, and the Server
    would get the same scene as a new file each time.
    """

    def __init__(self, wm, names):
        self.wm, self.names = wm, list(names)
        self.values: dict = {}

    def __enter__(self):
        # Write every one the way __exit__ will, then empty them: the file then sees the
        # same state (down to Blender's queue of pending notifiers, whose list pointers
        # the window manager writes) whatever happened before.
        for name in self.names:
            prop = self.wm.bl_rna.properties.get(name)
            if prop is not None and prop.type != "COLLECTION":
                self.values[name] = getattr(self.wm, name)
                setattr(self.wm, name, self.values[name])
        _fill_job_types(self.wm)
        _fill_jobs(self.wm)
        for name in self.names:
            prop = self.wm.bl_rna.properties.get(name)
            if prop is not None and prop.type == "COLLECTION":
                getattr(self.wm, name).clear()
            self.wm.property_unset(name)
        return self

    def __exit__(self, *exc):
        for name, value in self.values.items():
            setattr(self.wm, name, value)
        _fill_job_types(self.wm)
        _fill_jobs(self.wm)
        return False


def sync_type_settings(scene) -> None:
    """Give the scene a field for every generic setting of its chosen job type (and the bake's)."""
    s = scene.flamenco
    names = [s.job_type] + (["blender-bake"] if s.bake_then_render else [])
    for name in names:
        jt = state.job_type(name)
        if jt is None:
            continue
        have = {(i.job_type, i.key) for i in s.type_settings}
        for spec in jt.generic_settings:
            if (jt.name, spec.key) in have:
                item = next(i for i in s.type_settings if i.job_type == jt.name and i.key == spec.key)
                _describe(item, spec)
                continue
            item = s.type_settings.add()
            item.job_type = jt.name
            item.key = spec.key
            item.name = f"{jt.name}/{spec.key}"
            _describe(item, spec)
            _set_default(item, spec)


def _describe(item, spec: job_types_mod.SettingSpec) -> None:
    kind = "choice" if spec.choices and spec.type == job_types_mod.STRING else spec.type
    if item.kind != kind:
        item.kind = kind
    if item.label != spec.title:
        item.label = spec.title
    if item.description != spec.description:
        item.description = spec.description
    choices = ",".join(map(str, spec.choices))
    if item.choices != choices:
        item.choices = choices
    if item.required != spec.required:
        item.required = spec.required


def _set_default(item, spec: job_types_mod.SettingSpec) -> None:
    default = spec.default
    if default is None:
        return
    try:
        if spec.type == job_types_mod.INT:
            item.int_value = int(default)
        elif spec.type == job_types_mod.FLOAT:
            item.float_value = float(default)
        elif spec.type == job_types_mod.BOOL:
            item.bool_value = bool(default)
        elif spec.type == job_types_mod.STRING:
            item.str_value = str(default)
            if spec.choices:
                item.enum_value = str(default)
    except (TypeError, ValueError):
        log.info("default %r of %s does not fit", default, spec.key)


# --- the job list ------------------------------------------------------------

def request_jobs_refresh() -> bool:
    p = scene_data.prefs()
    if p is None or not p.token:
        return False
    client = scene_data.make_client()
    state.last_refresh = time.monotonic()
    os.makedirs(state.cache_dir, exist_ok=True)
    started = state.runner.submit(
        "jobs", lambda: background.fetch_jobs(client, p.project, state.joblist.limit, state.cache_dir))
    if state.runner.synchronous:
        apply_messages()
    return started


def apply_jobs(msg: background.JobsUpdated) -> None:
    state.joblist.update(msg.docs)
    state.thumbnails.update(msg.thumbnails)
    _fill_jobs(bpy.context.window_manager)
    wm = bpy.context.window_manager
    wm.flamenco_jobs_error = ""
    wm.flamenco_jobs_updated = time.strftime("%H:%M:%S")
    _load_thumbnails()


def _fill_jobs(wm) -> None:
    wm.flamenco_jobs.clear()
    for row in state.joblist.rows:
        item = wm.flamenco_jobs.add()
        item.job_id = row.id
        item.name = row.name
        item.job_type = row.type
        item.status = row.status
        item.progress = row.progress
        item.eta = row.eta_text
        item.reason = row.status_reason
        item.actions = ",".join(row.actions)


def _load_thumbnails() -> None:
    if bpy.app.background:
        return
    if state.previews is None:
        from bpy.utils import previews
        state.previews = previews.new()
    for job_id, path in state.thumbnails.items():
        key = f"{job_id}:{os.path.basename(path)}"
        if key not in state.previews and os.path.exists(path):
            state.previews.load(key, path, "IMAGE")


def thumbnail_icon(job_id: str) -> int:
    path = state.thumbnails.get(job_id)
    if not path or state.previews is None:
        return 0
    key = f"{job_id}:{os.path.basename(path)}"
    preview = state.previews.get(key)
    return preview.icon_id if preview else 0


# --- the timer -----------------------------------------------------------------

def apply_messages() -> list:
    """Apply what background work reported; the messages, for callers that want them."""
    msgs = state.runner.drain()
    wm = bpy.context.window_manager
    for msg in msgs:
        if isinstance(msg, background.JobsUpdated):
            apply_jobs(msg)
        elif isinstance(msg, background.JobsFailed):
            state.joblist.error = msg.message
            wm.flamenco_jobs_error = msg.message
        elif isinstance(msg, background.ActionDone):
            state.joblist.set_status_locally(msg.job_id, msg.status)
            for item in wm.flamenco_jobs:
                if item.job_id == msg.job_id:
                    item.status = msg.status
            wm.flamenco_jobs_error = ""
        elif isinstance(msg, background.ActionFailed):
            wm.flamenco_jobs_error = msg.message
        elif isinstance(msg, background.OutputsFetched):
            wm.flamenco_jobs_error = ""
            wm.flamenco_jobs_message = msg.message
        elif isinstance(msg, background.OutputsFailed):
            wm.flamenco_jobs_error = msg.message
        elif isinstance(msg, (background.ServerInfo, background.ServerInfoFailed)):
            apply_server_info(msg)
    if msgs:
        redraw()
    return msgs


def tick() -> float:
    try:
        apply_messages()
        now = time.monotonic()
        if now - state.panel_drawn_at < PANEL_VISIBLE_SECONDS and now - state.last_refresh > REFRESH_SECONDS:
            request_jobs_refresh()
    except Exception:  # noqa: BLE001 - a timer that raises is unregistered by Blender
        log.exception("flamenco timer")
    return TICK_SECONDS


def register() -> None:
    global state
    state = State()
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=1.0, persistent=True)
    if not bpy.app.background:
        bpy.app.timers.register(_initial_fetch, first_interval=0.5)


def _initial_fetch() -> None:
    try:
        refresh_job_types_async()
    except Exception:  # noqa: BLE001
        log.exception("flamenco: fetching job types")
    return None


def unregister() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    if state.submission is not None:
        state.submission.cancel()
    if state.previews is not None:
        from bpy.utils import previews
        previews.remove(state.previews)
        state.previews = None
    shutil.rmtree(state.cache_dir, ignore_errors=True)
