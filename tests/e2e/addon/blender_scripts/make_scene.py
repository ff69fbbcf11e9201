"""Makes the add-on tests' project, in Blender: `blender -b --factory-startup --python make_scene.py -- ROOT`.

    ROOT/.blender_project/            the project marker
    ROOT/textures/checker.png         an external texture (written here, not stored in the repo)
    ROOT/libs/props.blend             a library with the collection 'Props' (a cube using the texture)
    ROOT/scenes/shot.blend            links 'Props', has a plane with the texture; 3 tiny Cycles frames
"""

import os
import struct
import sys
import zlib

import bpy


def write_png(path, width=16, height=16):
    """A small checkerboard PNG, written with zlib only."""
    rows = b""
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            on = (x // 4 + y // 4) % 2
            row += bytes((230, 80, 40) if on else (30, 30, 200))
        rows += bytes(row)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def textured_material(name, image):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    bsdf = nodes.get("Principled BSDF")
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def main(root):
    bpy.context.preferences.filepaths.save_version = 0
    for sub in ("textures", "libs", "scenes", ".blender_project"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    texture = os.path.join(root, "textures", "checker.png")
    write_png(texture)

    # The library: a cube in the collection 'Props', textured with a relative path.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0
    lib_path = os.path.join(root, "libs", "props.blend")
    bpy.ops.wm.save_as_mainfile(filepath=lib_path)
    image = bpy.data.images.load(texture)
    image.filepath = "//../textures/checker.png"
    props = bpy.data.collections.new("Props")
    bpy.context.scene.collection.children.link(props)
    mesh = bpy.data.meshes.new("CubeMesh")
    mesh.from_pydata([(x, y, z) for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (0, 1)], [],
                     [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)])
    mesh.materials.append(textured_material("PropMaterial", image))
    cube = bpy.data.objects.new("PropCube", mesh)
    props.objects.link(cube)
    bpy.ops.wm.save_as_mainfile(filepath=lib_path, compress=False)

    # The shot: links the library's collection, has its own textured plane, camera and light.
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0
    shot_path = os.path.join(root, "scenes", "shot.blend")
    bpy.ops.wm.save_as_mainfile(filepath=shot_path)
    scene = bpy.context.scene
    with bpy.data.libraries.load(lib_path, link=True, relative=True) as (src, dst):
        dst.collections = ["Props"]
    instance = bpy.data.objects.new("PropsInstance", None)
    instance.instance_type = "COLLECTION"
    instance.instance_collection = dst.collections[0]
    scene.collection.objects.link(instance)

    image = bpy.data.images.load(texture)
    image.filepath = "//../textures/checker.png"
    plane_mesh = bpy.data.meshes.new("PlaneMesh")
    plane_mesh.from_pydata([(-3, -3, 0), (3, -3, 0), (3, 3, 0), (-3, 3, 0)], [], [(0, 1, 2, 3)])
    plane_mesh.materials.append(textured_material("FloorMaterial", image))
    scene.collection.objects.link(bpy.data.objects.new("Floor", plane_mesh))

    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.location = (4, -4, 3)
    cam.rotation_euler = (1.1, 0, 0.785)
    scene.collection.objects.link(cam)
    scene.camera = cam
    light = bpy.data.objects.new("Light", bpy.data.lights.new("Light", "SUN"))
    light.location = (0, 0, 5)
    scene.collection.objects.link(light)

    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.frame_start, scene.frame_end = 1, 3
    bpy.ops.wm.save_as_mainfile(filepath=shot_path, compress=False)
    print("MADE", shot_path, sorted(lib.filepath for lib in bpy.data.libraries),
          sorted(img.filepath for img in bpy.data.images))


if __name__ == "__main__":
    main(os.path.abspath(sys.argv[sys.argv.index("--") + 1]))
