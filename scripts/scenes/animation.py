"""Builds a small animated scene and saves it; run with Blender:

    blender -b --factory-startup -noaudio --python scripts/scenes/animation.py -- OUT.blend [FRAMES] [WIDTH HEIGHT [SAMPLES]]

A turning, bouncing cube on a floor under a sun, rendered with Cycles at a few
samples and denoising off (Debian's Blender is built without OpenImageDenoiser),
so a frame takes about a second on a CPU. Used by `make demo` and the e2e tests;
the repository holds no .blend files.
"""

import math
import os
import sys

import bpy

argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
if not argv:
    raise SystemExit("usage: blender -b --python animation.py -- OUT.blend [FRAMES] [WIDTH HEIGHT [SAMPLES]]")
out = argv[0]
frames = int(argv[1]) if len(argv) > 1 else 12
width, height = (int(argv[2]), int(argv[3])) if len(argv) > 3 else (160, 120)
samples = int(argv[4]) if len(argv) > 4 else 4

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = samples
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = width, height
scene.render.resolution_percentage = 100
scene.render.fps = 24
scene.frame_start, scene.frame_end = 1, frames
scene.render.image_settings.file_format = "PNG"

world = bpy.data.worlds.new("World")
world.color = (0.05, 0.05, 0.08)
scene.world = world

bpy.ops.mesh.primitive_plane_add(size=10)
floor = bpy.context.object
floor_mat = bpy.data.materials.new("Floor")
floor_mat.diffuse_color = (0.6, 0.6, 0.6, 1)
floor.data.materials.append(floor_mat)

bpy.ops.mesh.primitive_cube_add(size=1.5, location=(0, 0, 1))
cube = bpy.context.object
cube_mat = bpy.data.materials.new("Cube")
cube_mat.use_nodes = True
cube_mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.9, 0.35, 0.1, 1)
cube.data.materials.append(cube_mat)
for frame in range(1, frames + 1):
    t = (frame - 1) / max(1, frames - 1)
    cube.rotation_euler = (0, 0, 2 * math.pi * t)
    cube.location.z = 1 + 0.8 * abs(math.sin(math.pi * 2 * t))
    cube.keyframe_insert("rotation_euler", frame=frame)
    cube.keyframe_insert("location", frame=frame)

bpy.ops.object.light_add(type="SUN", location=(3, -3, 6))
bpy.context.object.data.energy = 4
bpy.ops.object.camera_add(location=(5, -5, 4), rotation=(math.radians(62), 0, math.radians(45)))
scene.camera = bpy.context.object

os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
bpy.ops.wm.save_as_mainfile(filepath=out)
print(f"saved demo scene {out}: {frames} frames, {width}x{height}")
