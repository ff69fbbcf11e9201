"""The 'blender-render-still' job type: one frame rendered by several workers, then merged.

    render-tile-r0-c0 --+
    render-tile-r0-c1 --+--> merge-tiles        (strategy 'tiles': N border renders, stitched)
    ...               --+
    render-samples-1  --+
    render-samples-2  --+--> merge-samples      (strategy 'samples': K renders with different seeds
    ...               --+                         and a share of the samples each, averaged)

Every part is a plain `blender_render` of the frame with a `python_expr` that
sets the part up: a cropped render border (tiles), or a seed and a sample count
(samples). Parts are written as 32-bit float OpenEXR, scene linear, with
compositing, sequencer and burn-in stamp off, so the merge works on the
radiance itself. The merge ('exr-merge' task, run by Blender on the worker,
see worker/commands/merge.py) places or averages the parts and sends the result
through the scene's own compositor and output settings, so the view transform,
dither, compositing and stamp are applied once, to the whole image, as on a
single machine. It writes `render_output` atomically and removes the parts.

Tile borders are computed by the part itself from the scene's resolution
(the Server does not read .blend files): tile column c of C spans pixels
[c*W//C, (c+1)*W//C), and the border fractions are put half a pixel inside
those edges, because Blender truncates `border * width` to whole pixels.

Upload mode (no shared disk): `render_output` is a path in the job's tree; the
parts are scratch outputs that reach the merging worker through the Manager
(kept parts are published with the image).
"""

from __future__ import annotations

import math
import re

from .base import CompileContext, JobType, Setting, SettingError, TaskSpec, command, register_compiler

STRATEGIES = ("tiles", "samples")
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "TARGA", "OPEN_EXR", "HDR", "JPEG2000", "WEBP")
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "TARGA": ".tga", "OPEN_EXR": ".exr",
              "HDR": ".hdr", "JPEG2000": ".jp2", "WEBP": ".webp"}
MAX_PARTS = 64
RENDER_TASK_TYPE = "blender-render"
MERGE_TASK_TYPE = "exr-merge"
"""Flamenco 2's task type for merging renders; every worker takes it by default."""

PART_ERROR_EXIT = 3


def grid(parts: int) -> tuple[int, int]:
    """(columns, rows) for `parts` tiles: as square as the count allows, never more rows than columns."""
    rows = max(d for d in range(1, math.isqrt(parts) + 1) if parts % d == 0)
    return parts // rows, rows


def sample_shares(total: int, parts: int) -> list[int]:
    """Samples per part; the merge weighs each part by its share (worker/commands/merge_script.py)."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _expr(body: list[str], samples: int | None) -> str:
    """A python_expr for blender_render: sets a part up, or exits with a clear error."""
    lines = [
        "import bpy, sys",
        "def _part():",
        "    s = bpy.context.scene",
        "    r = s.render",
        "    if r.use_multiview:",
        "        raise ValueError('stereo/multi-view scenes cannot be rendered as distributed stills')",
        "    for n in (s.node_tree.nodes if r.use_compositing and s.use_nodes and s.node_tree else ()):",
        "        if n.bl_idname != 'CompositorNodeRLayers' or n.mute:",
        "            continue",
        "        used = [o.name for o in n.outputs if o.is_linked and o.name not in ('Image', 'Alpha')]",
        "        if used:",
        "            raise ValueError('the compositor uses render pass(es) ' + ', '.join(used) + ' of node ' + n.name +"
        " '; a distributed still has only the combined image')",
        "        if (n.scene and n.scene != s) or n.layer != bpy.context.view_layer.name:",
        "            raise ValueError('the compositor node ' + n.name + ' reads another scene or view layer; only '"
        " 'the active view layer is rendered')",
        "    W = r.resolution_x * r.resolution_percentage // 100",
        "    H = r.resolution_y * r.resolution_percentage // 100",
    ]
    if samples is not None:
        lines.append(f"    s.cycles.samples = {samples}")
    lines += ["    " + line for line in body]
    lines += [
        "    r.use_compositing = False",
        "    r.use_sequencer = False",
        "    r.use_stamp = False",
        "    r.use_single_layer = True",
        "    im = r.image_settings",
        "    im.file_format = 'OPEN_EXR'",
        "    im.color_depth = '32'",
        "    im.color_mode = 'RGBA'",
        "    im.exr_codec = 'ZIP'",
        "    im.use_preview = False",
        "try:",
        "    _part()",
        "except Exception as ex:",
        "    print('Error: distributed still: %s' % ex, flush=True)",
        f"    sys.exit({PART_ERROR_EXIT})",
    ]
    return "\n".join(lines)


def tile_expr(column: int, row: int, columns: int, rows: int, samples: int | None = None) -> str:
    """Set up tile (row, column) of a columns x rows grid; row 0 is the top row."""
    return _expr([
        f"C, R, c, rt = {columns}, {rows}, {column}, {row}",
        "if W < C or H < R:",
        "    raise ValueError('%dx%d pixels cannot be cut into %dx%d tiles' % (W, H, C, R))",
        "rb = R - 1 - rt",
        "x0, x1 = c * W // C, (c + 1) * W // C",
        "y0, y1 = rb * H // R, (rb + 1) * H // R",
        "r.use_border = True",
        "r.use_crop_to_border = True",
        "r.border_min_x, r.border_max_x = (x0 + 0.5) / W, min(1.0, (x1 + 0.5) / W)",
        "r.border_min_y, r.border_max_y = (y0 + 0.5) / H, min(1.0, (y1 + 0.5) / H)",
    ], samples)


def samples_expr(index: int, parts: int, samples: int | None = None) -> str:
    """Set up part `index` (0-based) of `parts`: its share of the samples and a seed of its own."""
    return _expr([
        "if r.engine != 'CYCLES':",
        "    raise ValueError('the samples strategy needs Cycles; this scene renders with ' + r.engine)",
        f"i, K = {index}, {parts}",
        "S = s.cycles.samples",
        "if S < K:",
        "    raise ValueError('%d samples cannot be shared by %d parts' % (S, K))",
        "s.cycles.samples = S // K + (1 if i < S % K else 0)",
        "s.cycles.seed = s.cycles.seed + i",
        "s.cycles.use_denoising = False",
        "r.use_border = False",
    ], samples)


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "\\", "{")) or (len(path) > 2 and path[1] == ":" and path[2] in "/\\")


def _split_dir(path: str) -> tuple[str, str]:
    cut = max(path.rfind("/"), path.rfind("\\"))
    return (path[:cut] or path[:1], path[cut + 1:]) if cut >= 0 else ("", path)


def final_path(render_output: str, frame: int, fmt: str) -> str:
    """The merged image's path: the '#' run becomes the zero-padded frame, the extension follows the format."""
    directory, name = _split_dir(render_output)
    start = name.find("#")
    if start >= 0:
        end = start
        while end < len(name) and name[end] == "#":
            end += 1
        name = name[:start] + f"{frame:0{end - start}d}" + name[end:]
    ext = EXTENSIONS[fmt]
    if not name.lower().endswith(ext):
        name += ext
    return f"{directory}/{name}" if directory else name


@register_compiler("blender-render-still")
class BlenderRenderStill(JobType):
    label = "Distributed still"
    description = ("Renders one frame on several workers, as tiles of the image or as renders with a share "
                   "of the samples each, and merges them into one image.")
    settings_schema = [
        Setting("filepath", "path", required=True, label="Blend file", description="The .blend file."),
        Setting("frame", "integer", required=True, minimum=0, label="Frame", description="The frame to render."),
        Setting("render_output", "path", required=True, label="Render output",
                description="Path of the merged image; a run of '#' becomes the frame number and the extension "
                            "follows the format, e.g. '{render}/stills/shot1-####' -> shot1-0012.png."),
        Setting("format", "choice", default="PNG", choices=FORMATS, label="File format",
                description="Format of the merged image (the parts are always float OpenEXR). "
                            "The color depth, codec and color mode come from the blend file."),
        Setting("strategy", "choice", default="tiles", choices=STRATEGIES, label="Split by",
                description="'tiles': each worker renders a region of the image (any engine; identical to a "
                            "single-machine render when Cycles' adaptive sampling is off). 'samples': each worker "
                            "renders the whole image with its own seed and a share of the samples, averaged "
                            "(Cycles only; denoising is off in the parts)."),
        Setting("parts", "integer", default=4, minimum=2, maximum=MAX_PARTS, label="Parts",
                description="Number of render tasks: tiles (laid out as a grid as square as the number allows, "
                            "e.g. 6 -> 3x2) or sample shares."),
        Setting("samples", "integer", minimum=1, maximum=1 << 24, label="Samples",
                description="Total Cycles samples of the image; empty keeps the blend file's. With 'samples' "
                            "each part renders about samples/parts of them."),
        Setting("keep_parts", "boolean", default=False, label="Keep parts",
                description="Keep the directory of part renders after the merge (for inspection)."),
        Setting("blender_cmd", "string", default="{blender}", label="Blender command",
                description="The Blender executable; '{blender}' is set per platform by the Manager."),
    ]

    def task_types(self, settings, ctx: CompileContext):
        return {RENDER_TASK_TYPE, MERGE_TASK_TYPE}

    def check(self, settings, ctx: CompileContext):
        if not settings["filepath"].lower().endswith(".blend"):
            raise SettingError("filepath", f"'{settings['filepath']}' is not a .blend file")
        ctx.job_file("filepath", settings["filepath"])
        output = settings["render_output"]
        directory, name = _split_dir(output)
        if not name:
            raise SettingError("render_output", "must end in a file name, e.g. '{render}/stills/shot1-####'")
        if ctx.upload:
            ctx.relpath("render_output", output)
        elif not _is_absolute(directory):
            raise SettingError("render_output", "must be an absolute path or start with a variable, "
                                                "e.g. '{render}/stills/shot1-####'")
        if "#" in directory:
            raise SettingError("render_output", "'#' may only appear in the file name")
        if "#" in name and not re.fullmatch(r"[^#]*#+[^#]*", name):
            raise SettingError("render_output", "may contain one run of '#' only, e.g. 'shot1-####'")
        strategy, parts = settings["strategy"], settings["parts"]
        if strategy == "samples" and settings.get("samples") is not None and settings["samples"] < parts:
            raise SettingError("samples", f"{settings['samples']} samples cannot be shared by {parts} parts")

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        frame, fmt, parts = settings["frame"], settings["format"], settings["parts"]
        samples = settings.get("samples")
        blendfile, blender_cmd = ctx.job_file("filepath", settings["filepath"]), settings["blender_cmd"]
        output = ctx.relpath("render_output", settings["render_output"]) if ctx.upload \
            else settings["render_output"]
        final_rel = final_path(output, frame, fmt)
        directory, name = _split_dir(final_rel)
        stem = name.rsplit(".", 1)[0]
        parts_rel = f"{directory}/{stem}__parts-{ctx.created:%Y-%m-%d_%H%M%S}-{ctx.job_id[-6:]}" if directory \
            else f"{stem}__parts-{ctx.created:%Y-%m-%d_%H%M%S}-{ctx.job_id[-6:]}"
        final, parts_dir = ctx.output_path("render_output", final_rel), ctx.output_path("render_output", parts_rel)
        keep = settings["keep_parts"]

        def render(task_name: str, part_name: str, expr: str) -> TaskSpec:
            io = {"outputs": [f"{parts_rel}/{part_name}-{frame:06d}.exr"], "scratch": not keep} if ctx.upload \
                else {}
            return TaskSpec(task_name, RENDER_TASK_TYPE, [command(
                "blender_render", blender_cmd=blender_cmd, filepath=blendfile, python_expr=expr,
                render_output=f"{parts_dir}/{part_name}-######", frames=str(frame))], **io)

        def part_file(part_name: str) -> str:
            return f"{parts_dir}/{part_name}-{frame:06d}.exr"

        merge_common = {"blender_cmd": blender_cmd, "filepath": blendfile, "output_file": final, "format": fmt,
                        "frame": frame}
        if settings["strategy"] == "tiles":
            columns, rows = grid(parts)
            renders, tiles = [], []
            for r in range(rows):
                tiles.append([])
                for c in range(columns):
                    part = f"tile-r{r}-c{c}"
                    renders.append(render(f"render-{part}", part, tile_expr(c, r, columns, rows, samples)))
                    tiles[-1].append(part_file(part))
            merge = command("merge_tiles", tiles=tiles, **merge_common)
            merge_name = "merge-tiles"
        else:
            renders, inputs = [], []
            for i in range(parts):
                part = f"samples-{i + 1:02d}"
                renders.append(render(f"render-{part}", part, samples_expr(i, parts, samples)))
                inputs.append(part_file(part))
            merge = command("merge_samples", input_files=inputs, samples=samples, **merge_common)
            merge_name = "merge-samples"
        commands = [merge]
        if not keep:
            commands.append(command("remove_tree", path=parts_dir))
        io = {"inputs": [parts_rel], "outputs": [final_rel] + ([] if keep else [parts_rel])} if ctx.upload else {}
        return renders + [TaskSpec(merge_name, MERGE_TASK_TYPE, commands, parents=list(renders), **io)]
