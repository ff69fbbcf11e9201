"""Builds a small still-image scene and saves it; run with Blender:

    blender -b --factory-startup -noaudio --python scripts/scenes/still_scene.py -- OUT.blend [WIDTH HEIGHT [SAMPLES [ADAPTIVE]]]

A glossy sphere, a diffuse cube and an emissive ring on a floor under an area
light and a soft sky, rendered with Cycles on the CPU: soft shadows and glossy
reflections, so the noise of a few samples is easy to see (what the 'samples'
strategy of a distributed still averages away). The compositor blurs the image
slightly, a filter that reads neighbouring pixels (what tiles must not be
composited one by one). Denoising is off (Debian's Blender has no
OpenImageDenoiser); ADAPTIVE (0 or 1, default 0) switches Cycles' adaptive
sampling. The repository holds no .blend files.
"""

import math
import os
import sys

import bpy

argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
if not argv:
    raise SystemExit("usage: blender -b --python still_scene.py -- OUT.blend [WIDTH HEIGHT [SAMPLES [ADAPTIVE]]]")
out = argv[0]
width, height = (int(argv[1]), int(argv[2])) if len(argv) > 2 else (160, 120)
samples = int(argv[3]) if len(argv) > 3 else 32
adaptive = bool(int(argv[4])) if len(argv) > 4 else False

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = samples
scene.cycles.use_adaptive_sampling = adaptive
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = width, height
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
scene.frame_start = scene.frame_end = scene.frame_current = 1

world = bpy.data.worlds.new("World")
world.use_nodes = True
world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.25, 0.3, 0.4, 1)
world.node_tree.nodes["Background"].inputs["Strength"].default_value = 0.6
scene.world = world


def material(name, rgb, roughness=0.5, metallic=0.0, emission=0.0):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = mat.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*rgb, 1)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    if emission:
        bsdf.inputs["Emission"].default_value = (*rgb, 1)
        bsdf.inputs["Emission Strength"].default_value = emission
    return mat


bpy.ops.mesh.primitive_plane_add(size=12)
bpy.context.object.data.materials.append(material("Floor", (0.6, 0.6, 0.55), roughness=0.8))
bpy.ops.mesh.primitive_uv_sphere_add(radius=1, location=(-0.9, 0, 1), segments=32, ring_count=16)
bpy.ops.object.shade_smooth()
bpy.context.object.data.materials.append(material("Chrome", (0.9, 0.9, 0.9), roughness=0.15, metallic=1.0))
bpy.ops.mesh.primitive_cube_add(size=1.2, location=(1.3, 0.6, 0.6), rotation=(0, 0, 0.5))
bpy.context.object.data.materials.append(material("Clay", (0.8, 0.3, 0.15), roughness=0.9))
bpy.ops.mesh.primitive_torus_add(location=(0.6, -1.6, 0.25), major_radius=0.45, minor_radius=0.08)
bpy.context.object.data.materials.append(material("Neon", (0.2, 0.9, 0.5), emission=4.0))

bpy.ops.object.light_add(type="AREA", location=(2.5, -2.5, 4), rotation=(math.radians(40), 0, math.radians(45)))
light = bpy.context.object.data
light.energy = 400
light.size = 2.0
bpy.ops.object.camera_add(location=(5.5, -5.5, 3.6), rotation=(math.radians(68), 0, math.radians(45)))
scene.camera = bpy.context.object

scene.use_nodes = True
tree = scene.node_tree
layers = tree.nodes["Render Layers"]
composite = tree.nodes["Composite"]
blur = tree.nodes.new("CompositorNodeBlur")
blur.size_x = blur.size_y = 2
blur.filter_type = "GAUSS"
tree.links.new(layers.outputs["Image"], blur.inputs["Image"])
tree.links.new(blur.outputs["Image"], composite.inputs["Image"])
scene.render.use_compositing = True

os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
bpy.ops.wm.save_as_mainfile(filepath=out)
print(f"saved still scene {out}: {width}x{height}, {samples} samples, adaptive sampling {'on' if adaptive else 'off'}")
