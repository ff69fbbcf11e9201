"""Runs inside Blender (`blender -b scene.blend --python merge_script.py -- JSON`): merges the
parts of a distributed still into one image. Not imported by the worker.

The parts are scene-linear float EXRs rendered without compositing, so the
merge works on the radiance itself: `tiles` places cropped border renders at
their offsets, `samples` takes the sample-weighted mean of renders made with
different seeds. The merged buffer then goes through Blender's own render
pipeline -- an Image node feeding the scene's compositor in place of the Render
Layers node, rendered with `bpy.ops.render.render()` and saved from the Render
Result -- so the view transform, look, dither, compositing and stamp are applied
exactly as a single-machine render would apply them.

Lines starting with 'flamenco-merge:' are for the worker's log and activity;
failures print 'Error: ...' and exit with code 3.
"""

import array
import itertools
import json
import operator
import os
import sys

import bpy

PREFIX = "flamenco-merge:"


class MergeError(Exception):
    pass


def say(message):
    print(f"{PREFIX} {message}", flush=True)


def sample_shares(total, parts):
    """How many samples each part renders: the same split as the part renders use."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def render_size(scene):
    r = scene.render
    return r.resolution_x * r.resolution_percentage // 100, r.resolution_y * r.resolution_percentage // 100


def load_pixels(path):
    """(width, height, float RGBA buffer, bottom row first) of an image file."""
    if not os.path.isfile(path):
        raise MergeError(f"part '{path}' does not exist")
    try:
        image = bpy.data.images.load(path, check_existing=False)
    except RuntimeError as ex:
        raise MergeError(f"cannot read part '{path}': {ex}") from None
    width, height = image.size
    if width == 0 or height == 0:
        raise MergeError(f"part '{path}' is empty or not an image")
    buf = array.array("f", bytes(width * height * 4 * 4))
    image.pixels.foreach_get(buf)
    bpy.data.images.remove(image)
    return width, height, buf


def merge_tiles(rows, width, height):
    """Tiles in rows (top row first) placed into one buffer; their sizes must add up."""
    loaded = [[load_pixels(path) for path in row] for row in rows]
    for r, row in enumerate(loaded):
        heights = {h for _, h, _ in row}
        if len(heights) != 1:
            raise MergeError(f"the tiles of row {r} differ in height: {sorted(heights)}")
        row_width = sum(w for w, _, _ in row)
        if row_width != width:
            raise MergeError(f"the tiles of row {r} are {row_width} pixels wide together, the frame {width}")
    columns = {tuple(w for w, _, _ in row) for row in loaded}
    if len(columns) != 1:
        raise MergeError("the tile columns differ in width from row to row")
    total_height = sum(row[0][1] for row in loaded)
    if total_height != height:
        raise MergeError(f"the tile rows are {total_height} pixels high together, the frame {height}")
    out = array.array("f", bytes(width * height * 4 * 4))
    y0 = height  # Blender's buffers start at the bottom row; the top row of tiles ends at `height`.
    for row in loaded:
        tile_h = row[0][1]
        y0 -= tile_h
        x0 = 0
        for w, h, buf in row:
            stride = w * 4
            for y in range(h):
                dst = ((y0 + y) * width + x0) * 4
                out[dst:dst + stride] = buf[y * stride:(y + 1) * stride]
            x0 += w
    return out


def merge_samples(paths, weights, width, height):
    """The weighted mean of the parts, pixel by pixel (premultiplied RGBA, scene linear)."""
    total = float(sum(weights))
    acc = None
    for path, weight in zip(paths, weights):
        w, h, buf = load_pixels(path)
        if (w, h) != (width, height):
            raise MergeError(f"part '{path}' is {w}x{h}, the frame {width}x{height}")
        scale = weight / total
        scaled = map(operator.mul, buf, itertools.repeat(scale)) if scale != 1.0 else buf
        acc = array.array("f", scaled) if acc is None else array.array("f", map(operator.add, acc, scaled))
        say(f"added '{os.path.basename(path)}' with weight {weight:g}")
    return acc


def compositor_inputs(scene):
    """The Render Layers nodes whose image the merged buffer stands in for; refuse what it cannot."""
    if not (scene.render.use_compositing and scene.use_nodes and scene.node_tree):
        return None
    nodes = [n for n in scene.node_tree.nodes if n.bl_idname == "CompositorNodeRLayers" and not n.mute]
    view_layer = bpy.context.view_layer.name
    for node in nodes:
        other = [o.name for o in node.outputs if o.is_linked and o.name not in ("Image", "Alpha")]
        if other:
            raise MergeError(f"the compositor uses the render pass(es) {', '.join(other)} of node '{node.name}'; "
                             "a distributed still has only the combined image (disable compositing or those nodes)")
        if (node.scene and node.scene != scene) or node.layer != view_layer:
            raise MergeError(f"the compositor node '{node.name}' reads view layer '{node.layer}' of scene "
                             f"'{node.scene.name if node.scene else scene.name}'; only the active view layer "
                             f"'{view_layer}' is rendered")
    return nodes


def feed_compositor(scene, image):
    """Put `image` where the render would be: into the scene's compositor, or a minimal tree."""
    nodes = compositor_inputs(scene)
    if nodes is None:
        scene.render.use_compositing = True
        scene.use_nodes = True
        tree = scene.node_tree
        tree.nodes.clear()
        source = tree.nodes.new("CompositorNodeImage")
        source.image = image
        composite = tree.nodes.new("CompositorNodeComposite")
        tree.links.new(source.outputs["Image"], composite.inputs["Image"])
        tree.links.new(source.outputs["Alpha"], composite.inputs["Alpha"])
        return
    tree = scene.node_tree
    for node in nodes:
        source = tree.nodes.new("CompositorNodeImage")
        source.image = image
        for name in ("Image", "Alpha"):
            for link in list(node.outputs[name].links):
                tree.links.new(source.outputs[name], link.to_socket)
        tree.nodes.remove(node)


def write(scene, buf, width, height, output, fmt, frame):
    image = bpy.data.images.new("flamenco-merged", width, height, alpha=True, float_buffer=True)
    image.alpha_mode = "PREMUL"  # a render's own pixels are premultiplied
    image.pixels.foreach_set(buf)
    r = scene.render
    scene.frame_current = frame
    r.use_border = False
    r.use_sequencer = False
    r.use_single_layer = True
    if fmt:
        r.image_settings.file_format = fmt
    feed_compositor(scene, image)
    say("compositing and writing the merged image")
    bpy.ops.render.render()
    result = bpy.data.images["Render Result"]
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    root, ext = os.path.splitext(output)
    partial = f"{root}.merging-{os.getpid()}{ext}"
    result.save_render(partial, scene=scene)
    if not os.path.isfile(partial):
        raise MergeError(f"Blender wrote no '{partial}'")
    os.replace(partial, output)
    print(f"Saved: '{output}'", flush=True)


def main(args):
    scene = bpy.context.scene
    width, height = render_size(scene)
    if args["mode"] == "tiles":
        rows = args["tiles"]
        say(f"placing {sum(len(r) for r in rows)} tiles ({len(rows[0])}x{len(rows)}) into {width}x{height}")
        buf = merge_tiles(rows, width, height)
    else:
        paths = args["inputs"]
        weights = args.get("weights")
        if not weights:
            total = args.get("samples") or scene.cycles.samples
            weights = sample_shares(total, len(paths))
            say(f"weights from {total} samples over {len(paths)} parts: {weights}")
        buf = merge_samples(paths, weights, width, height)
    write(scene, buf, width, height, args["output"], args.get("format"), args["frame"])


if __name__ == "__main__":
    try:
        main(json.loads(sys.argv[sys.argv.index("--") + 1]))
    except MergeError as ex:
        print(f"Error: {ex}", flush=True)
        sys.exit(3)
