"""Reads what the logic modules need out of bpy: scene, panel fields, preferences.

This is the one place that turns Blender data into the plain dataclasses of
job_builder, so everything after it is testable without Blender.
"""

from __future__ import annotations

import os

import bpy

from . import job_types as job_types_mod
from .client import Client
from .job_builder import FarmSettings, PanelSettings, SceneInfo
from .sharedcode import variables as variables_mod

ADDON_ID = __package__
"""'flamenco' as a legacy add-on, 'bl_ext.<repo>.flamenco' as an extension."""

_DEPENDENCY_COLLECTIONS = ("images", "libraries", "sounds", "movieclips", "fonts", "cache_files", "volumes")


def prefs():
    addon = bpy.context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


def make_client(timeout: float | None = None) -> Client:
    p = prefs()
    if p is None:
        return Client("")
    if timeout is None:
        return Client(p.server_url, p.token)
    return Client(p.server_url, p.token, timeout=timeout)


def dependencies() -> list[str]:
    """Absolute paths of the external files the open file uses (not packed ones)."""
    out = []
    for coll_name in _DEPENDENCY_COLLECTIONS:
        for datablock in getattr(bpy.data, coll_name, ()):
            path = getattr(datablock, "filepath", "")
            if not path or path.startswith("<"):
                continue
            if getattr(datablock, "packed_file", None) is not None:
                continue
            if getattr(datablock, "source", "FILE") in ("GENERATED", "VIEWER", "MOVIE_CLIP"):
                continue
            try:
                absolute = bpy.path.abspath(path, library=getattr(datablock, "library", None))
            except TypeError:
                absolute = bpy.path.abspath(path)
            if "<UDIM>" in absolute or "#" in os.path.basename(absolute):
                continue
            out.append(os.path.normpath(absolute))
    return sorted(set(out))


def _has_caches(scene) -> bool:
    if scene.rigidbody_world is not None:
        return True
    for ob in scene.objects:
        for mod in ob.modifiers:
            if getattr(mod, "point_cache", None) is not None:
                return True
        for psys in getattr(ob, "particle_systems", ()):
            if psys.point_cache is not None:
                return True
    return False


def scene_info(scene=None, with_dependencies: bool = True) -> SceneInfo:
    scene = scene or bpy.context.scene
    render = scene.render
    return SceneInfo(
        blend_path=bpy.data.filepath,
        is_dirty=bpy.data.is_dirty,
        frame_start=scene.frame_start,
        frame_current=scene.frame_current,
        frame_end=scene.frame_end,
        frame_step=scene.frame_step,
        fps=render.fps / (render.fps_base or 1.0),
        image_format=render.image_settings.file_format,
        file_extension=render.file_extension,
        resolution_x=render.resolution_x,
        resolution_y=render.resolution_y,
        resolution_percentage=render.resolution_percentage,
        dependencies=dependencies() if with_dependencies else [],
        has_caches=_has_caches(scene),
    )


def setting_value(item):
    """The value of one generic job-type setting in the scene's collection (None: left out)."""
    kind = item.kind
    if item.optional and not item.use_value:
        return None
    if kind == job_types_mod.INT:
        return item.int_value
    if kind == job_types_mod.FLOAT:
        return item.float_value
    if kind == job_types_mod.BOOL:
        return item.bool_value
    if kind == job_types_mod.LIST:
        text = item.text_value
        return [line.body for line in text.lines if line.body.strip()] if text else []
    return item.str_value


def panel_settings(scene=None) -> PanelSettings:
    scene = scene or bpy.context.scene
    s = scene.flamenco
    generic: dict[str, dict] = {}
    for item in s.type_settings:
        generic.setdefault(item.job_type, {})[item.key] = setting_value(item)
    return PanelSettings(
        job_type=s.job_type, job_name=s.job_name, frame_range=s.frame_range,
        chunk_size=s.chunk_size, priority=s.priority, output_path=s.output_path,
        make_video=s.make_video, worker_tag=s.worker_tag, start_paused=s.start_paused,
        bake_then_render=s.bake_then_render, generic=generic)


def farm_settings(variables: variables_mod.Variables | None = None) -> FarmSettings:
    p = prefs()
    return FarmSettings(
        project=p.project, manager=p.manager, file_mode=p.file_mode,
        shared_storage=bpy.path.abspath(p.shared_storage_path) if p.shared_storage_path else "",
        project_finder=p.project_finder, variables=variables, username=p.username)
