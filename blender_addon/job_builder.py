"""From scene data and the panel's fields to the job documents the Server takes.

Pure functions over plain dataclasses: the UI module reads bpy into a
SceneInfo and a PanelSettings, and everything from there on (frames, output
paths, settings per the job type's schema, "bake, then render", warnings) is
decided here, where pytest can see it.
"""

from __future__ import annotations

import os
import posixpath
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from .job_types import JobType, JobTypeError, build_settings
from .sharedcode import frames as frames_mod
from .sharedcode import variables as variables_mod

UPLOAD, SHARED = "upload", "shared"
BAKE_TYPE = "blender-bake"
RENDER_TYPE = "blender-render"
DEFAULT_OUTPUT = "//render/{name}/"
PROJECT_MARKERS = {
    "BLENDER_PROJECT": (".blender_project",),
    "GIT": (".git",),
    "SUBVERSION": (".svn",),
    "AUTO": (".blender_project", ".flamenco_project", ".git", ".svn"),
}
VIDEO_FLAGS = ("video", "create_video", "make_video")
MOVIE_FORMATS = {"FFMPEG", "AVI_JPEG", "AVI_RAW"}
_HASHES = re.compile(r"#+")


class BuildError(ValueError):
    """The job cannot be built from these settings; the message says what to change."""


def local_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "darwin"
    return "linux"


@dataclass
class SceneInfo:
    """What the job needs from the scene; read from bpy by the UI module."""
    blend_path: str = ""
    is_dirty: bool = False
    frame_start: int = 1
    frame_current: int = 1
    frame_end: int = 250
    frame_step: int = 1
    fps: float = 24.0
    image_format: str = "PNG"
    file_extension: str = ".png"
    resolution_x: int = 1920
    resolution_y: int = 1080
    resolution_percentage: int = 100
    dependencies: list[str] = field(default_factory=list)
    """Absolute paths of the external files the scene uses (images, libraries, ...)."""
    has_caches: bool = False

    @property
    def stem(self) -> str:
        return os.path.splitext(os.path.basename(self.blend_path))[0] if self.blend_path else "untitled"

    @property
    def blend_dir(self) -> str:
        return os.path.dirname(self.blend_path)


@dataclass
class PanelSettings:
    """The Flamenco panel's fields (stored per scene)."""
    job_type: str = RENDER_TYPE
    job_name: str = ""
    frame_range: str = ""
    chunk_size: int = 1
    priority: int = 50
    output_path: str = ""
    make_video: bool = False
    worker_tag: str = ""
    start_paused: bool = False
    bake_then_render: bool = False
    generic: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per job type name, that type's own settings as the panel's generic fields hold them."""


@dataclass
class FarmSettings:
    """The add-on preferences that shape a job."""
    project: str = ""
    manager: str = ""
    file_mode: str = UPLOAD
    shared_storage: str = ""
    project_finder: str = "AUTO"
    variables: variables_mod.Variables | None = None
    platform: str = field(default_factory=local_platform)
    username: str = ""


@dataclass
class JobPlan:
    """One job to submit; `filepath` and `files` are filled in once the scene is packed."""
    doc: dict[str, Any]
    depends_on_previous: bool = False


@dataclass
class Plan:
    jobs: list[JobPlan]
    project_root: str
    local_output: str
    """The artist's output pattern, absolute: where fetched outputs go (upload mode)."""
    warnings: list[str] = field(default_factory=list)


# --- paths ----------------------------------------------------------------

def find_project_root(blend_path: str, finder: str = "AUTO", explicit: str = "") -> str:
    """The folder whose layout the pack keeps: an explicit one, the nearest folder with a
    project marker (.blender_project, .git, ...), or the .blend's own folder."""
    blend_dir = os.path.dirname(os.path.abspath(blend_path))
    if explicit:
        root = os.path.abspath(explicit)
        if not _is_within(blend_path, root):
            raise BuildError(f"The .blend file is not inside the project folder {root}.")
        return root
    markers = PROJECT_MARKERS.get(finder, ())
    here = blend_dir
    while markers:
        if any(os.path.exists(os.path.join(here, m)) for m in markers):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    return blend_dir


def _is_within(path: str, root: str) -> bool:
    path, root = os.path.abspath(path), os.path.abspath(root)
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


def blender_abspath(path: str, blend_dir: str) -> str:
    """Blender's '//' (relative to the .blend) made absolute."""
    if path.startswith("//"):
        if not blend_dir:
            raise BuildError(f"The path '{path}' is relative to the .blend file, which was never "
                             "saved. Save the file first.")
        path = os.path.join(blend_dir, path[2:])
    return os.path.normpath(os.path.abspath(path)) + (os.sep if path.endswith(("/", "\\")) else "")


def is_bare_relative(path: str) -> bool:
    """'renders/x': relative, but not to the .blend ('//'): Blender would take it from its working
    directory, which is wherever it was started."""
    return bool(path) and not path.startswith(("//", "/", "\\", "{")) and not re.match(r"^[A-Za-z]:[\\/]", path)


def local_output_pattern(output_path: str, scene: SceneInfo, job_name: str) -> str:
    """The absolute output pattern, always with a '#' frame-number placeholder. A relative path
    without '//' is taken relative to the .blend file too (see is_bare_relative)."""
    raw = (output_path or DEFAULT_OUTPUT).replace("{name}", _safe_name(job_name or scene.stem))
    if is_bare_relative(raw):
        raw = "//" + raw
    path = blender_abspath(raw, scene.blend_dir)
    if path.endswith(("/", "\\")):
        path += "######"
    elif "#" not in os.path.basename(path):
        path += "_######" if not path.endswith(("_", "-", ".")) else "######"
    return path


def farm_output(local_output: str, farm: FarmSettings) -> tuple[str, str | None]:
    """(render_output for the job, a warning or None).

    Upload mode: relative to the job's outputs ('shot/######'); each worker renders
    into its own per-job output folder and uploads, and "Fetch outputs" brings the
    frames back to `local_output`. Shared mode: the local path, with two-way
    variables put in for the farm.
    """
    if farm.file_mode == UPLOAD:
        pattern = os.path.basename(local_output)
        folder = os.path.basename(os.path.dirname(local_output)) or "render"
        return posixpath.join(folder, pattern), None
    return to_farm_path(local_output, farm, what="output path")


def to_farm_path(path: str, farm: FarmSettings, what: str) -> tuple[str, str | None]:
    """A local path as the farm should see it: through two-way variables (shared mode)."""
    if farm.variables is not None:
        translated = farm.variables.to_variables(path, farm.platform, "users")
        if translated != path:
            return translated.replace("\\", "/"), None
    if farm.shared_storage and _is_within(path, farm.shared_storage):
        return path, None
    return path, (f"The {what} {path} is not on a path the farm knows (no two-way variable of the "
                  "Manager matches it), so the workers may not reach it.")


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("_") or "job"


def pack_dir_name(stem: str, username: str, now_iso: str) -> str:
    """The folder a pack gets on shared storage: '<YYYYmmdd-HHMMSS>-<user>-<stem>'."""
    stamp = re.sub(r"[^0-9T]", "", now_iso)[:15].replace("T", "-")
    return "-".join(p for p in (stamp, _safe_name(username) if username else "", _safe_name(stem)) if p)


# --- frames ---------------------------------------------------------------

def frame_spec(panel: PanelSettings, scene: SceneInfo) -> str:
    """The frames to render: the panel's range, or the scene's start-end(xstep)."""
    if panel.frame_range.strip():
        spec = panel.frame_range.strip()
    elif scene.frame_step > 1:
        spec = f"{scene.frame_start}-{scene.frame_end}x{scene.frame_step}"
    else:
        spec = f"{scene.frame_start}-{scene.frame_end}"
    try:
        frames = frames_mod.parse_frames(spec)
    except frames_mod.FrameRangeError as ex:
        raise BuildError(f"Frame range: {ex}.") from None
    return frames_mod.merge_frames(frames)


# --- the plan -------------------------------------------------------------

def _video_flag_key(jt: JobType) -> str | None:
    return next((k for k in VIDEO_FLAGS if jt.has(k)), None)


def computed_settings(jt: JobType, scene: SceneInfo, panel: PanelSettings,
                      render_output: str, frames: str) -> dict[str, Any]:
    """The settings the add-on fills in from the scene (only those the type has are sent)."""
    out: dict[str, Any] = {
        "filepath": os.path.basename(scene.blend_path),
        "frames": frames,
        "frame": scene.frame_current,
        "chunk_size": panel.chunk_size,
        "render_output": render_output,
        "output_file_extension": scene.file_extension,
        "fps": round(scene.fps, 6),
    }
    fmt = jt.spec("format")
    if fmt is not None and (not fmt.choices or scene.image_format in fmt.choices):
        out["format"] = scene.image_format
    spec = jt.spec("blender_cmd")
    if spec is not None and not spec.default:
        out["blender_cmd"] = "{blender}"
    key = _video_flag_key(jt)
    if key:
        out[key] = bool(panel.make_video)
    if jt.has("images_or_video"):
        out["images_or_video"] = "video" if scene.image_format in MOVIE_FORMATS else "images"
    return out


def plan_jobs(scene: SceneInfo, panel: PanelSettings, farm: FarmSettings,
              job_types: list[JobType], project_root_override: str = "") -> Plan:
    """Validate everything that can be checked before packing, and lay out the job(s)."""
    if not scene.blend_path:
        raise BuildError("Save the .blend file first: the farm needs a file name and relative paths.")
    types = {jt.name: jt for jt in job_types}
    jt = types.get(panel.job_type)
    if jt is None:
        known = ", ".join(sorted(types)) or "none (is the Server reachable?)"
        raise BuildError(f"The Server has no job type '{panel.job_type}'. Known types: {known}.")
    if jt.error:
        raise BuildError(f"{jt.error}.")
    if not farm.project:
        raise BuildError("No project is chosen. Pick one in the add-on preferences.")
    if farm.file_mode == SHARED and not farm.shared_storage:
        raise BuildError("Shared-storage mode needs the shared storage path in the add-on preferences.")
    if panel.chunk_size < 1:
        raise BuildError("The chunk size must be 1 or more.")
    if not 1 <= panel.priority <= 100:
        raise BuildError("The priority must be between 1 and 100.")

    name = panel.job_name.strip() or scene.stem
    frames = frame_spec(panel, scene)
    local_output = local_output_pattern(panel.output_path, scene, name)
    render_output, out_warning = farm_output(local_output, farm)
    project_root = find_project_root(scene.blend_path, farm.project_finder, project_root_override)

    warnings = scene_warnings(scene, project_root)
    if is_bare_relative(panel.output_path):
        warnings.append(f"The output path '{panel.output_path}' is relative; it is taken relative to the .blend "
                        f"file's folder, as '//{panel.output_path}'. Start it with // to say so.")
    if out_warning:
        warnings.append(out_warning)
    video = panel.make_video and _video_flag_key(jt) is not None
    if video and farm.file_mode == UPLOAD:
        raise BuildError("Making a video needs shared storage: in upload mode each worker only has "
                         "its own frames. Untick 'Make a Video', or use shared storage.")
    if scene.image_format in MOVIE_FORMATS:
        warnings.append(f"The scene's output is a video ({scene.image_format}); each chunk of frames "
                        "becomes its own video file. Choose an image format to get frames.")
    width = scene.resolution_x * scene.resolution_percentage // 100
    height = scene.resolution_y * scene.resolution_percentage // 100
    if video and (width % 2 or height % 2):
        warnings.append("The resolution is odd; most video codecs need an even width and height.")

    generic = dict(panel.generic.get(jt.name, {}))
    try:
        settings = build_settings(jt, generic, computed_settings(jt, scene, panel, render_output, frames))
    except JobTypeError as ex:
        raise BuildError(f"{ex}.") from None

    jobs = []
    if panel.bake_then_render:
        bake = types.get(BAKE_TYPE)
        if bake is None:
            raise BuildError(f"'Bake, then render' needs the '{BAKE_TYPE}' job type, which this Server "
                             "does not have.")
        bake_generic = dict(panel.generic.get(BAKE_TYPE, {}))
        try:
            bake_settings = build_settings(bake, bake_generic,
                                           computed_settings(bake, scene, panel, render_output, frames))
        except JobTypeError as ex:
            raise BuildError(f"Bake: {ex}.") from None
        jobs.append(JobPlan(_job_doc(f"{name} (bake)", BAKE_TYPE, bake_settings, panel, farm)))
    jobs.append(JobPlan(_job_doc(name, jt.name, settings, panel, farm),
                        depends_on_previous=panel.bake_then_render))
    return Plan(jobs=jobs, project_root=project_root, local_output=local_output, warnings=warnings)


def _job_doc(name: str, type_name: str, settings: dict, panel: PanelSettings,
             farm: FarmSettings) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "type": type_name, "settings": settings,
                           "priority": panel.priority, "project": farm.project}
    if farm.manager:
        doc["manager"] = farm.manager
    if panel.start_paused:
        doc["start_paused"] = True
    if panel.worker_tag.strip():
        doc["worker_tag"] = panel.worker_tag.strip()
    return doc


def finalize(plan: Plan, filepath: str, files: dict[str, dict] | None) -> list[JobPlan]:
    """Put the packed .blend's path (and the upload manifest) into every job of the plan."""
    for job in plan.jobs:
        if "filepath" in job.doc["settings"]:
            job.doc["settings"]["filepath"] = filepath
        if files is not None:
            job.doc["files"] = files
    return plan.jobs


# --- warnings -------------------------------------------------------------

def scene_warnings(scene: SceneInfo, project_root: str) -> list[str]:
    """What the artist should know before submitting (nothing here stops a submit)."""
    out = []
    if scene.is_dirty:
        out.append("The file has unsaved changes; the job uses the scene as it is now "
                   "(a temporary copy is saved and sent).")
    outside, missing = [], []
    for dep in scene.dependencies:
        if not os.path.exists(dep):
            missing.append(dep)
        elif not _is_within(dep, project_root):
            outside.append(dep)
    if outside:
        out.append(f"{_count(outside, 'file')} outside the project folder {project_root} "
                   f"(e.g. {outside[0]}); they are sent under '_outside_project' in the job.")
    if missing:
        out.append(f"{_count(missing, 'file')} missing (e.g. {missing[0]}); the farm cannot use them.")
    return out


def _count(items: list, what: str) -> str:
    return f"1 {what} is" if len(items) == 1 else f"{len(items)} {what}s are"
