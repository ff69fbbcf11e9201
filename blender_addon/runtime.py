"""The add-on's state while Blender runs, and the timer that brings background results in.

Background threads never touch bpy. They put messages on queues; `tick()`, a
bpy.app.timers callback on the main thread, drains them, writes what they say
into window-manager properties (which the panels draw) and asks for a redraw.
It also starts a job-list refresh every few seconds while the job panel is on
screen, and fetches the job types again while they could not be had (the
Server was down), so no error outlives its cause. A load_post handler fills the
window manager's lists again after File > New / Open, which replaces it.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time

import bpy
from bpy.app.handlers import persistent

from . import background, job_types as job_types_mod, scene_data
from .joblist import JobList
from .sharedcode import variables as variables_mod

log = logging.getLogger(__name__)

TICK_SECONDS = 0.25
REFRESH_SECONDS = 5.0
PANEL_VISIBLE_SECONDS = 15.0
JOB_MESSAGE_SECONDS = 120.0
"""How long a job's row shows the outcome of what was done to it (fetched outputs, ...)."""


class State:
    def __init__(self) -> None:
        self.runner = background.Runner(synchronous=bpy.app.background)
        self.joblist = JobList()
        self.job_types: list[job_types_mod.JobType] = []
        self.job_types_error = ""
        self.worker_tags: list[str] | None = None
        """The tags of the project's workers; None until known (then the tag is free text)."""
        self.last_info_fetch = 0.0
        self.job_messages: dict[str, tuple[str, str, float]] = {}
        """job id -> (text, icon, when): shown in that job's row."""
        self.jobs_error_logged = ""
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
    state.last_info_fetch = time.monotonic()
    state.runner.submit("server-info", lambda: background.fetch_server_info(client, *args))


def _info_args() -> tuple[str, str, bool]:
    p = scene_data.prefs()
    if p is None:
        return "", "", False
    return p.project, p.manager, p.file_mode == "shared"


def apply_server_info(msg) -> None:
    if isinstance(msg, background.ServerInfoFailed):
        if msg.message != state.job_types_error:
            log.warning("%s", msg.message)
        state.job_types_error = msg.message
        return
    state.variables = msg.variables
    state.worker_tags = msg.worker_tags
    apply_job_types(msg.job_types)
    p = scene_data.prefs()
    if p is not None and p.connection_unreachable:
        p.connection_message, p.connection_unreachable = "", False  # the Server answers again


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
    optional = spec.type in (job_types_mod.INT, job_types_mod.FLOAT) and not spec.required and spec.default is None
    if item.optional != optional:
        item.optional = optional


def _set_default(item, spec: job_types_mod.SettingSpec) -> None:
    default = spec.default
    if default is None and spec.minimum is not None and spec.type == job_types_mod.INT:
        item.int_value = int(spec.minimum)  # what the field shows once ticked; unticked it is not sent
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

def request_jobs_refresh(apply: bool = True) -> bool:
    """Fetch the job list (the artist's jobs, or everyone's); False when not signed in or busy."""
    p = scene_data.prefs()
    if p is None or not p.token:
        return False
    client = scene_data.make_client()
    wm = bpy.context.window_manager
    mine = not (wm is not None and wm.flamenco_jobs_everyone)
    state.last_refresh = time.monotonic()
    os.makedirs(state.cache_dir, exist_ok=True)
    started = state.runner.submit(
        "jobs", lambda: background.fetch_jobs(client, p.project, state.joblist.limit, state.cache_dir, mine))
    if state.runner.synchronous and apply:
        apply_messages()
    return started


def apply_jobs(msg: background.JobsUpdated) -> None:
    state.joblist.update(msg.docs)
    state.thumbnails.update(msg.thumbnails)
    wm = bpy.context.window_manager
    wm.flamenco_jobs_error = ""
    state.jobs_error_logged = ""
    wm.flamenco_jobs_updated = time.strftime("%H:%M:%S")
    _fill_jobs(wm)
    _load_thumbnails()
    if state.job_types_error or not state.job_types:
        refresh_job_types_async()  # the Server answers again: fetch what failed before


def set_job_message(job_id: str, text: str, icon: str = "INFO") -> None:
    """Show `text` in the job's row (not above the whole list, where it would stay for every job)."""
    state.job_messages[job_id] = (text, icon, time.monotonic())
    if icon == "ERROR":
        log.warning("job %s: %s", job_id, text)
    wm = bpy.context.window_manager
    for item in wm.flamenco_jobs if wm is not None else ():
        if item.job_id == job_id:
            item.message, item.message_icon = text, icon


def _fill_jobs(wm) -> None:
    now = time.monotonic()
    state.job_messages = {k: v for k, v in state.job_messages.items() if now - v[2] < JOB_MESSAGE_SECONDS}
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
        item.user = row.user
        item.message, item.message_icon = state.job_messages.get(row.id, ("", "INFO", 0.0))[:2]


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
            if msg.message != state.jobs_error_logged:
                log.warning("%s", msg.message)
                state.jobs_error_logged = msg.message
        elif isinstance(msg, background.ActionDone):
            if msg.doc is not None:
                state.joblist.replace(msg.doc)
            else:
                state.joblist.set_status_locally(msg.job_id, msg.status)
            state.job_messages.pop(msg.job_id, None)
            _fill_jobs(wm)
        elif isinstance(msg, (background.ActionFailed, background.OutputsFailed)):
            set_job_message(msg.job_id, msg.message, "ERROR")
        elif isinstance(msg, background.OutputsFetched):
            set_job_message(msg.job_id, msg.message)
        elif isinstance(msg, (background.ServerInfo, background.ServerInfoFailed)):
            apply_server_info(msg)
    if msgs:
        redraw()
    return msgs


def tick() -> float:
    try:
        apply_messages()
        now = time.monotonic()
        if now - state.panel_drawn_at < PANEL_VISIBLE_SECONDS:
            if now - state.last_refresh > REFRESH_SECONDS:
                request_jobs_refresh()
            if (state.job_types_error or not state.job_types) and now - state.last_info_fetch > REFRESH_SECONDS:
                refresh_job_types_async()
    except Exception:  # noqa: BLE001 - a timer that raises is unregistered by Blender
        log.exception("flamenco timer")
    return TICK_SECONDS


@persistent
def on_file_loaded(_file) -> None:
    """File > New / Open replaced the window manager and the scenes: give them the lists again."""
    wm = bpy.context.window_manager
    if wm is not None:
        _fill_job_types(wm)
        _fill_jobs(wm)
    for scene in bpy.data.scenes:
        sync_type_settings(scene)
    state.warnings_cache = (0.0, "", [])
    redraw()


# --- the system console ---------------------------------------------------------

_console: logging.Handler | None = None


def _log_to_console() -> None:
    """Warnings and errors (and what the add-on does) go to Blender's system console."""
    global _console
    root = logging.getLogger(__package__)
    if _console is None:
        _console = logging.StreamHandler(sys.stderr)
        _console.setFormatter(logging.Formatter("Flamenco %(levelname)s: %(message)s"))
        root.addHandler(_console)
        root.setLevel(logging.INFO)
        root.propagate = False


def _stop_logging_to_console() -> None:
    global _console
    if _console is not None:
        logging.getLogger(__package__).removeHandler(_console)
        _console = None


def register() -> None:
    global state
    state = State()
    _log_to_console()
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=1.0, persistent=True)
    if on_file_loaded not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(on_file_loaded)
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
    if on_file_loaded in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(on_file_loaded)
    _stop_logging_to_console()
    if state.submission is not None:
        state.submission.cancel()
    if state.previews is not None:
        from bpy.utils import previews
        previews.remove(state.previews)
        state.previews = None
    shutil.rmtree(state.cache_dir, ignore_errors=True)
