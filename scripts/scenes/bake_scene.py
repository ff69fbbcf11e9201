"""Builds a small scene with simulations to bake and saves it; run with Blender:

    blender -b --factory-startup -noaudio --python scripts/scenes/bake_scene.py -- OUT.blend [FRAMES] [WIDTH HEIGHT [SAMPLES]]

A rigid body cube tumbles onto a floor (passive rigid body); a cloth sheet falls
onto the cube and drapes over it (it collides with the cube, so its simulation
depends on the rigid body one); a second cloth, a flag pinned at one edge,
flaps on its own; a small particle emitter sprays drops. Four caches of
three kinds -- cloth, cloth, particles, rigid body -- with one real dependency
between two of them. Cycles at a few samples, denoising off (Debian's Blender
has no OpenImageDenoiser). None of the caches is baked or on disk: that is the
farm's job. The repository holds no .blend files.
"""

import math
import os
import sys

import bpy

argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
if not argv:
    raise SystemExit("usage: blender -b --python bake_scene.py -- OUT.blend [FRAMES] [WIDTH HEIGHT [SAMPLES]]")
out = argv[0]
frames = int(argv[1]) if len(argv) > 1 else 12
width, height = (int(argv[2]), int(argv[3])) if len(argv) > 3 else (96, 72)
samples = int(argv[4]) if len(argv) > 4 else 4

bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, frames
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = samples
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y = width, height
scene.render.resolution_percentage = 100
scene.render.image_settings.file_format = "PNG"
world = bpy.data.worlds.new("World")
world.color = (0.05, 0.05, 0.08)
scene.world = world


def material(name, rgb):
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*rgb, 1)
    mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1)
    return mat


def grid(name, size, cuts, location, rgb):
    bpy.ops.mesh.primitive_grid_add(x_subdivisions=cuts, y_subdivisions=cuts, size=size, location=location)
    obj = bpy.context.object
    obj.name = obj.data.name = name
    obj.data.materials.append(material(name, rgb))
    return obj


floor = grid("Floor", 12, 2, (0, 0, 0), (0.5, 0.5, 0.5))
bpy.ops.rigidbody.object_add()
floor.rigid_body.type = "PASSIVE"
floor.modifiers.new("Collision", "COLLISION")

bpy.ops.mesh.primitive_cube_add(size=1.2, location=(0, 0, 1.1), rotation=(0.4, 0.3, 0.2))
cube = bpy.context.object
cube.name = "Cube"
cube.data.materials.append(material("Cube", (0.9, 0.35, 0.1)))
bpy.ops.rigidbody.object_add()
cube.modifiers.new("Collision", "COLLISION")
scene.rigidbody_world.point_cache.frame_end = frames

sheet = grid("Sheet", 2.4, 14, (0.2, 0, 2.3), (0.3, 0.6, 1.0))
cloth = sheet.modifiers.new("Cloth", "CLOTH")
cloth.settings.quality = 4
cloth.collision_settings.distance_min = 0.02
cloth.point_cache.frame_end = frames

flag = grid("Flag", 1.6, 10, (3.2, 0.5, 2.0), (0.9, 0.8, 0.2))
flag.rotation_euler = (math.radians(90), 0, 0)
pin = flag.vertex_groups.new(name="pin")
pin.add([v.index for v in flag.data.vertices if v.co.x < -0.79], 1.0, "REPLACE")
flag_cloth = flag.modifiers.new("Cloth", "CLOTH")
flag_cloth.settings.quality = 3
flag_cloth.settings.vertex_group_mass = "pin"
flag_cloth.point_cache.frame_end = frames

bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=1, radius=0.25, location=(-3, -1, 0.5))
emitter = bpy.context.object
emitter.name = "Emitter"
emitter.data.materials.append(material("Emitter", (0.2, 0.8, 0.3)))
emitter.modifiers.new("Particles", "PARTICLE_SYSTEM")
psettings = emitter.particle_systems[0].settings
psettings.count = 60
psettings.frame_start, psettings.frame_end = 1, frames
psettings.lifetime = frames * 2
psettings.normal_factor = 3.0
bpy.ops.mesh.primitive_ico_sphere_add(subdivisions=1, radius=0.07, location=(0, 0, -5))
drop = bpy.context.object
drop.name = "Drop"
drop.data.materials.append(material("Drop", (0.2, 0.8, 0.3)))
psettings.render_type = "OBJECT"
psettings.instance_object = drop
psettings.particle_size = 1.0
emitter.particle_systems[0].seed = 7

bpy.ops.object.light_add(type="SUN", location=(3, -3, 6))
bpy.context.object.data.energy = 4
bpy.ops.object.camera_add(location=(6.5, -6.5, 5), rotation=(math.radians(62), 0, math.radians(45)))
scene.camera = bpy.context.object

os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
bpy.ops.wm.save_as_mainfile(filepath=out)
print(f"saved bake scene {out}: {frames} frames, {width}x{height}")
