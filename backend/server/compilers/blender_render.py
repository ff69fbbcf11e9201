"""The 'blender-render' job type: render frames in chunks, optionally make a video, publish.

Shared storage (Flamenco 2's graph): chunks render into an intermediate
directory next to the final one (`<final>__intermediate-<job created>-<job>`),
an optional 'create-video' task encodes the frames there, and 'move-to-final'
moves the whole directory into place once everything is done (an existing
final directory is renamed out of the way first), so a half-rendered sequence
never replaces a good one and a rerun never mixes its frames with old ones.

Render-setting overrides (`rna_overrides`: literal values assigned to Blender
data paths, checked by shared/overrides.py here and again on the worker) become a file
`<blend stem>-overrides.py` next to the .blend, written by an 'rna-overrides'
task that all render tasks depend on; the worker's blender_render runs such a
file with `--python-exit-code 42 --python <file>` before rendering. The file is
removed again by 'move-to-final', so a later job on the same .blend without
overrides does not pick it up.

Upload mode (no shared disk): the same graph inside the job's tree
(`render_output` relative to it). The frames each render task makes are sent to
the Manager; 'create-video' and 'move-to-final' fetch the intermediate
directory from there first (TaskSpec inputs/outputs). Each render task writes
the overrides file into its own copy of the job's files, so it need not travel.

With `gpu` each render task needs a GPU of a worker with slots (shared/slots.py);
the other tasks need what their task types need.
"""

from __future__ import annotations

from shared.frames import blender_frames, chunk_frames, chunk_name, merge_frames, parse_frames
from shared.overrides import OverrideError, check_lines
from shared.slots import GPU

from .base import CompileContext, JobType, Setting, SettingError, TaskSpec, command, register_compiler

FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "TARGA", "TARGA_RAW", "IRIS", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "HDR",
           "JPEG2000", "CINEON", "DPX", "WEBP")
"""Blender's image format names (scene.render.image_settings.file_format), as the add-on sends them."""
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "BMP": ".bmp", "TIFF": ".tif", "TARGA": ".tga", "TARGA_RAW": ".tga",
              "IRIS": ".rgb", "OPEN_EXR": ".exr", "OPEN_EXR_MULTILAYER": ".exr", "HDR": ".hdr", "JPEG2000": ".jp2",
              "CINEON": ".cin", "DPX": ".dpx", "WEBP": ".webp"}
RENDER_FORMAT_ARGS = {"TARGA": "TGA", "TARGA_RAW": "RAWTGA", "JPEG2000": "JP2"}
"""Names `--render-format` knows under another name; Blender 3.4 ignores an unknown one and writes PNG."""
NO_VIDEO_FORMATS = frozenset({"OPEN_EXR", "OPEN_EXR_MULTILAYER", "HDR"})
RNA_PRIORITY = 80


def chunk_frames_arg(chunk: list[int]) -> str:
    """The Blender '--render-frame' form of a chunk; consecutive chunks (the usual case) quickly."""
    first, last = chunk[0], chunk[-1]
    if last - first == len(chunk) - 1:
        if first == last:
            return str(first)
        return f"{first},{last}" if last - first == 1 else f"{first}..{last}"
    return blender_frames(chunk)


def split_dir(path: str) -> tuple[str, str]:
    """('/a/b', 'name') for '/a/b/name', with '/' or '\\' as separator."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    if cut < 0:
        return "", path
    return path[:cut] or path[:1], path[cut + 1:]


def blend_stem(filepath: str) -> str:
    name = split_dir(filepath)[1]
    stem = name[:-len(".blend")] if name.lower().endswith(".blend") else name
    return stem[:-len(".flamenco")] if stem.endswith(".flamenco") else stem


def overrides_path(blendfile: str) -> str:
    """'<dir>/<stem>-overrides.py' next to the blend file: where blender_render looks for it."""
    directory, name = split_dir(blendfile)
    stem = name[:-len(".blend")] if name.lower().endswith(".blend") else name
    return f"{directory}/{stem}-overrides.py" if directory else f"{stem}-overrides.py"


def check_rna_overrides(lines: list[str], key: str = "rna_overrides") -> None:
    """Only literal values assigned to Blender data paths (shared/overrides.py); the error names the line."""
    try:
        check_lines(lines)
    except OverrideError as ex:
        raise SettingError(key, str(ex)) from None


def overrides_contents(lines: list[str], ctx: CompileContext) -> str:
    header = [f"# Render-setting overrides of Flamenco job {ctx.job_id} ({ctx.job_name}),",
              "# run by Blender before it renders (blender --python-exit-code 42 --python <this file>).",
              "import bpy", ""]
    return "\n".join(header + lines) + "\n"


@register_compiler("blender-render")
class BlenderRender(JobType):
    label = "Blender render"
    description = "Renders an animation (or a single frame) in chunks of frames, optionally encoding a video."
    settings_schema = [
        Setting("filepath", "path", required=True, label="Blend file",
                description="The .blend file; in upload mode its path among the job's files."),
        Setting("frames", "frames", required=True, label="Frames", description="Frame range, e.g. '1-250'."),
        Setting("chunk_size", "integer", default=1, minimum=1, label="Chunk size",
                description="Frames per render task."),
        Setting("render_output", "path", required=True, label="Render output",
                description="Output path with the frame number as '#', e.g. '{render}/shot1/frames/######'. "
                            "In upload mode relative to the job's outputs, e.g. 'frames/######'."),
        Setting("format", "choice", choices=FORMATS, label="File format",
                description="Image format; empty keeps the format saved in the blend file."),
        Setting("blender_cmd", "string", default="{blender}", label="Blender command",
                description="The Blender executable (and arguments); '{blender}' is set per platform "
                            "by the Manager."),
        Setting("create_video", "boolean", default=False, label="Create video",
                description="Encode the frames into a video (needs fps, at least 2 frames and a non-EXR "
                            "format)."),
        Setting("fps", "number", minimum=0.001, label="Frames per second", description="For the video."),
        Setting("output_file_extension", "string", label="Image extension",
                description="Extension of the rendered images, e.g. '.png'; derived from the format "
                            "when that is given."),
        Setting("images_or_video", "choice", default="images", choices=("images", "video"),
                label="Images or video", description="What the blend file's own output is set to write."),
        Setting("rna_overrides", "list", label="Overrides",
                description="Values set by Blender before rendering, one assignment of a literal to a data "
                            "path per line, e.g. 'bpy.context.scene.render.resolution_percentage = 50'."),
        Setting("gpu", "boolean", default=False, label="Render on a GPU",
                description="Each render task takes one of a worker's GPUs to itself (workers that "
                            "declare GPUs); without, a render takes a share of a worker's CPU threads."),
    ]

    def task_types(self, settings, ctx: CompileContext):
        types = {"blender-render", "file-management"}
        if settings.get("create_video"):
            types.add("video-encoding")
        return types

    def image_extension(self, settings) -> str | None:
        ext = settings.get("output_file_extension")
        if ext:
            return ext if ext.startswith(".") else "." + ext
        fmt = settings.get("format")
        return EXTENSIONS.get(fmt) if fmt else None

    def check(self, settings, ctx: CompileContext):
        ctx.job_file("filepath", settings["filepath"])
        output = settings["render_output"]
        if output.endswith(("/", "\\")):
            raise SettingError("render_output", "must end in a file name pattern such as '######'")
        directory, pattern = split_dir(output)
        if "#" not in pattern:
            raise SettingError("render_output", f"the file name '{pattern}' needs '#' for the frame number, "
                                                "e.g. '######' or 'shot_####'")
        if "#" in directory:
            raise SettingError("render_output", "'#' may only be in the file name, not in a directory")
        if ctx.upload:
            ctx.relpath("render_output", output)
            if not directory:
                raise SettingError("render_output", "must include a directory, e.g. 'frames/######'")
        elif not directory:
            raise SettingError("render_output", "must include a directory, e.g. '{render}/shot1/######'")
        if settings.get("rna_overrides"):
            check_rna_overrides(settings["rna_overrides"])
        if settings.get("create_video"):
            if settings.get("images_or_video") != "images":
                raise SettingError("create_video", "needs images_or_video 'images'")
            if not settings.get("fps"):
                raise SettingError("fps", "is required to create a video")
            if settings.get("format") in NO_VIDEO_FORMATS:
                raise SettingError("format", f"{settings['format']} images cannot be encoded into a video")
            if not self.image_extension(settings):
                raise SettingError("output_file_extension", "is required to create a video when no "
                                                            "format is given")
            if len(parse_frames(settings["frames"], ctx.max_frames)) < 2:
                raise SettingError("frames", "a video needs at least 2 frames")

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        frames = parse_frames(settings["frames"], ctx.max_frames)
        blendfile = ctx.job_file("filepath", settings["filepath"])
        output = ctx.relpath("render_output", settings["render_output"]) if ctx.upload \
            else settings["render_output"]
        fmt = settings.get("format")
        blender_cmd = settings["blender_cmd"]
        overrides = settings.get("rna_overrides") or []
        if overrides:
            check_rna_overrides(overrides)
        final_dir, pattern = split_dir(output)
        parent, final_name = split_dir(final_dir)
        interm_name = f"{final_name}__intermediate-{ctx.created:%Y-%m-%d_%H%M%S}-{ctx.job_id[-6:]}"
        interm_dir = f"{parent.rstrip('/')}/{interm_name}" if parent else interm_name
        # Upload mode: the same directories inside the job's tree ('{job_output}/...'), and each
        # task says which of them it reads and writes, so that they travel through the Manager.
        farm_interm, farm_final = ctx.output_path("render_output", interm_dir), \
            ctx.output_path("render_output", final_dir)
        render_output = f"{farm_interm}/{pattern}"

        tasks: list[TaskSpec] = []
        parents: list[TaskSpec] = []
        pre_commands: list[dict] = []
        py_file = overrides_path(blendfile)
        write_overrides = command("create_python_file", filepath=py_file,
                                  contents=overrides_contents(overrides, ctx)) if overrides else None
        if write_overrides and not ctx.upload:
            rna = TaskSpec("rna-overrides", "file-management", [write_overrides], priority=RNA_PRIORITY)
            tasks.append(rna)
            parents = [rna]
        elif write_overrides:
            pre_commands = [write_overrides]

        base = {"blender_cmd": blender_cmd, "filepath": blendfile, "render_output": render_output}
        if fmt:
            base["format"] = RENDER_FORMAT_ARGS.get(fmt, fmt)
        io = {"outputs": [interm_dir]} if ctx.upload else {}
        renders = []
        for chunk in chunk_frames(frames, settings["chunk_size"]):
            renders.append(TaskSpec(f"blender-render-{chunk_name(chunk)}", "blender-render",
                                    pre_commands + [{"name": "blender_render",
                                                     "settings": {**base, "frames": chunk_frames_arg(chunk)}}],
                                    parents=list(parents), needs=GPU if settings.get("gpu") else "", **io))
        tasks += renders

        last = renders
        if settings.get("create_video"):
            ext = self.image_extension(settings)
            video_name = f"{blend_stem(settings['filepath'])}-{merge_frames(frames)}.mkv"
            io = {"inputs": [interm_dir], "outputs": [f"{interm_dir}/{video_name}"]} if ctx.upload else {}
            video = TaskSpec("create-video", "video-encoding",
                             [command("create_video", input_files=f"{farm_interm}/*{ext}",
                                      output_file=f"{farm_interm}/{video_name}",
                                      fps=settings["fps"], ffmpeg_cmd="{ffmpeg}")],
                             parents=renders, **io)
            tasks.append(video)
            last = [video]
        publish = [command("move_to_final", src=farm_interm, dest=farm_final)]
        if overrides and not ctx.upload:
            publish.append(command("remove_file", path=py_file))
        io = {"inputs": [interm_dir], "outputs": [interm_dir, final_dir]} if ctx.upload else {}
        tasks.append(TaskSpec("move-to-final", "file-management", publish, parents=last, **io))
        return tasks
