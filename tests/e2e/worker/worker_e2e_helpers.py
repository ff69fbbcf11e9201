"""Helpers of the worker's e2e tests: a tiny scene made by Blender's Python, and FFmpeg probes."""

from __future__ import annotations

import json
import subprocess

SCENE_SCRIPT = """
import bpy
s = bpy.context.scene
s.render.engine = 'CYCLES'
s.cycles.samples = 4
s.cycles.use_denoising = {denoise}
s.render.resolution_x, s.render.resolution_y = 160, 120
s.render.resolution_percentage = 100
s.frame_start, s.frame_end = 1, 6
s.render.fps = 24
cube = bpy.data.objects.get('Cube')
if cube:
    cube.rotation_euler = (0, 0, 0)
    cube.keyframe_insert('rotation_euler', frame=1)
    cube.rotation_euler = (0, 0, 1.5)
    cube.keyframe_insert('rotation_euler', frame=6)
sound = {sound!r}
if sound:
    s.sequence_editor_create()
    s.sequence_editor.sequences.new_sound('tone', sound, 1, 1)
bpy.ops.wm.save_as_mainfile(filepath={path!r})
"""


def make_scene(blender_exe, path, denoise=False, sound=""):
    script = SCENE_SCRIPT.format(denoise=denoise, path=str(path), sound=str(sound))
    subprocess.run([blender_exe, "-b", "--factory-startup", "-noaudio", "--python-expr", script],
                   check=True, capture_output=True, timeout=120)
    assert path.exists()
    return path


def ffprobe(path, *entries, stream="v:0"):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", stream, "-show_entries",
                          "stream=" + ",".join(entries), "-of", "json", str(path)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    streams = json.loads(out)["streams"]
    return streams[0] if streams else {}
