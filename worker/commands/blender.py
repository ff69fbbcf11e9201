"""blender_render and blender_render_audio: Blender in the background, its output as progress."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.frames import FrameRangeError, parse_frames
from shared.overrides import OverrideError, check_source

from ..blender_output import BlenderOutputParser
from .base import (Command, CommandContext, CommandError, SettingError, autoexec_arg, autoexec_setting,
                   executable_argv, opt_str, register, req_number, req_str)

FORMAT_ALIASES = {"OPEN_EXR": "EXR", "OPEN_EXR_MULTILAYER": "MULTILAYER"}


def blendfile_setting(settings: dict) -> Path:
    filepath = Path(os.path.expanduser(req_str(settings, "filepath")))
    if filepath.suffix.lower() != ".blend" and not filepath.name.endswith(".blend1"):
        raise SettingError("filepath", f"'{filepath}' is not a .blend file")
    return filepath


def wait_for_blendfile(ctx: CommandContext, filepath: Path) -> None:
    """A blend file on shared storage may appear a moment late: wait once, then fail."""
    if filepath.exists():
        return
    ctx.log(f"{ctx.command_name}: '{filepath}' does not exist yet, waiting {ctx.missing_blendfile_wait:g} s")
    ctx.sleep(ctx.missing_blendfile_wait)
    if not filepath.exists():
        raise CommandError(f"setting 'filepath': blend file '{filepath}' does not exist")


def check_overrides_file(path: Path) -> None:
    """An overrides file next to the blend file is run by Blender: only if it holds nothing but
    literal values assigned to data paths (shared/overrides.py). On shared storage anyone who
    can write next to the .blend could have put anything there."""
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as ex:
        raise CommandError(f"cannot read the overrides file '{path}': {ex}") from None
    try:
        check_source(source)
    except OverrideError as ex:
        raise CommandError(f"refusing to run the overrides file '{path}': {ex}") from None


@dataclass
class RenderParams:
    blender: list[str]
    filepath: Path
    render_output: str | None = None
    format: str | None = None
    frames: str | None = None
    frame_list: list[int] = field(default_factory=list)
    python_expr: str | None = None
    extra_args: list[str] = field(default_factory=list)
    autoexec: bool = False

    @property
    def overrides_file(self) -> Path:
        return self.filepath.with_name(self.filepath.stem + "-overrides.py")

    def argv(self) -> list[str]:
        args = self.blender + [autoexec_arg(self.autoexec), "-noaudio", "--background", str(self.filepath)]
        if self.overrides_file.exists():
            args += ["--python-exit-code", "42", "--python", str(self.overrides_file)]
        if self.python_expr:
            args += ["--python-expr", self.python_expr]
        if self.render_output:
            args += ["--render-output", self.render_output]
        if self.format:
            args += ["--render-format", FORMAT_ALIASES.get(self.format, self.format)]
        if self.frames:
            args += ["--render-frame", self.frames]
        return args + self.extra_args


@register
class BlenderRender(Command):
    name = "blender_render"

    def validate(self, settings):
        blender = executable_argv(settings, "blender_cmd", "blender")
        params = RenderParams(blender, blendfile_setting(settings), autoexec=autoexec_setting(settings))
        params.render_output = opt_str(settings, "render_output")
        params.format = opt_str(settings, "format")
        params.python_expr = opt_str(settings, "python_expr")
        frames = settings.get("frames")
        if frames is not None:
            if isinstance(frames, int) and not isinstance(frames, bool):
                frames = str(frames)
            if not isinstance(frames, str):
                raise SettingError("frames", f"must be a string like '1..10', not {type(frames).__name__}")
            try:
                params.frame_list = parse_frames(frames)
            except FrameRangeError as ex:
                raise SettingError("frames", str(ex)) from None
            params.frames = frames.replace(" ", "")
        return params

    def output_dirs(self, params: RenderParams) -> list[Path]:
        if params.render_output:
            return [Path(params.render_output).parent]
        return []

    def execute(self, ctx: CommandContext, params: RenderParams) -> None:
        wait_for_blendfile(ctx, params.filepath)
        check_overrides_file(params.overrides_file)
        if params.render_output:
            Path(params.render_output).parent.mkdir(parents=True, exist_ok=True)
        parser = BlenderOutputParser(params.frame_list)
        checkpoints = {"starting": time.monotonic()}

        def on_line(line: str) -> None:
            for event in parser.feed(line):
                if event.kind == "activity":
                    ctx.progress(parser.fraction(), event.value)
                elif event.kind == "saved":
                    ctx.output_produced([event.value])
                    ctx.progress(parser.fraction())
                elif event.kind == "warning":
                    ctx.activity(event.value)
                elif event.kind == "checkpoint":
                    checkpoints[event.value] = time.monotonic()

        result = ctx.run(slot_args(params.argv(), len(params.blender), ctx.slot), on_line, check=False)
        _record_timing(ctx, checkpoints, time.monotonic())
        error = parser.state.last_error
        if result.returncode != 0:
            raise CommandError(f"blender exited with code {result.returncode}" + (f": {error}" if error else ""))
        if error.startswith("Cannot read file"):
            raise CommandError(f"blender: {error}")
        if params.frame_list and not parser.state.saved and params.render_output:
            ctx.log("blender_render: Blender reported no saved frames")
        ctx.progress(1.0, f"rendered {len(parser.state.frames_done) or len(params.frame_list)} frame(s)")


def slot_args(argv: list[str], exe_words: int, slot) -> list[str]:
    """Blender's argv with what the task's slot gives it: `--threads N` before anything that
    renders (Blender reads its arguments in order), `--cycles-device D` for Cycles after `--`."""
    if slot is None:
        return argv
    argv = list(argv)
    if slot.threads:
        argv[exe_words:exe_words] = ["--threads", str(slot.threads)]
    if slot.cycles_device:
        if "--" not in argv:
            argv.append("--")
        argv += ["--cycles-device", slot.cycles_device]
    return argv


def _record_timing(ctx: CommandContext, checkpoints: dict, end: float) -> None:
    """Seconds spent starting Blender, loading the file and rendering, as metrics.timing."""
    names = [n for n in ("starting", "loading", "rendering") if n in checkpoints]
    for name, nxt in zip(names, names[1:] + [None]):
        until = checkpoints[nxt] if nxt else end
        ctx.reporter.metric("timing", f"{ctx.command_idx}:{ctx.command_name}:{name}",
                            round(until - checkpoints[name], 3))


@dataclass
class AudioParams:
    blender: list[str]
    filepath: Path
    render_output: Path
    frame_start: int | None
    frame_end: int | None
    autoexec: bool = False


@register
class BlenderRenderAudio(Command):
    name = "blender_render_audio"

    def validate(self, settings):
        blender = executable_argv(settings, "blender_cmd", "blender")
        filepath = blendfile_setting(settings)
        render_output = Path(os.path.expanduser(req_str(settings, "render_output")))
        start = end = None
        if settings.get("frame_start") is not None:
            start = int(req_number(settings, "frame_start"))
        if settings.get("frame_end") is not None:
            end = int(req_number(settings, "frame_end"))
        if start is not None and end is not None and end < start:
            raise SettingError("frame_end", f"{end} is before frame_start {start}")
        return AudioParams(blender, filepath, render_output, start, end, autoexec_setting(settings))

    def output_dirs(self, params: AudioParams) -> list[Path]:
        return [params.render_output.parent]

    def execute(self, ctx: CommandContext, params: AudioParams) -> None:
        wait_for_blendfile(ctx, params.filepath)
        params.render_output.parent.mkdir(parents=True, exist_ok=True)
        lines = ["import bpy", "scene = bpy.context.scene"]
        if params.frame_start is not None:
            lines.append(f"scene.frame_start = {params.frame_start}")
        if params.frame_end is not None:
            lines.append(f"scene.frame_end = {params.frame_end}")
        lines.append(f"bpy.ops.sound.mixdown(filepath={str(params.render_output)!r}, codec='FLAC', "
                     f"container='FLAC', accuracy=128)")
        argv = params.blender + [autoexec_arg(params.autoexec), "-noaudio", "--background", str(params.filepath),
                                 "--python-exit-code", "47", "--python-expr", "; ".join(lines)]
        ctx.activity("rendering audio")
        result = ctx.run(argv, check=False)
        if result.returncode != 0:
            raise CommandError(f"blender exited with code {result.returncode} while rendering audio")
        if not params.render_output.is_file():
            raise CommandError(f"blender_render_audio: Blender wrote no '{params.render_output}'")
        ctx.output_produced([str(params.render_output)])
