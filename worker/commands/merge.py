"""merge_tiles and merge_samples: the parts of a distributed still merged into one image.

Both run Blender on the scene's .blend with merge_script.py, which places
(tiles) or averages (samples) the float EXR parts and writes the result through
the scene's compositor and output settings. Blender rather than FFmpeg or a
Python image library because only Blender applies the scene's view transform,
look, dither, compositing and stamp exactly as a single-machine render does
(and Debian's Blender has no numpy, but the arrays are summed with
`array`/`map`, fast enough for production sizes: about a second per 1080p part).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .base import (Command, CommandContext, CommandError, SettingError, autoexec_arg, autoexec_setting,
                   executable_argv, opt_str, register, req_number, req_str)
from .blender import blendfile_setting, wait_for_blendfile

SCRIPT = Path(__file__).with_name("merge_script.py")
FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "TARGA", "OPEN_EXR", "HDR", "JPEG2000", "WEBP")
SCRIPT_ERROR_EXIT = 3
_SAY = "flamenco-merge: "


@dataclass
class MergeParams:
    blender: list[str]
    filepath: Path
    output_file: Path
    frame: int
    format: str | None = None
    tiles: list[list[str]] = field(default_factory=list)
    input_files: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    samples: int | None = None
    autoexec: bool = False

    @property
    def mode(self) -> str:
        return "tiles" if self.tiles else "samples"

    def inputs(self) -> list[str]:
        return [p for row in self.tiles for p in row] if self.tiles else list(self.input_files)

    def script_args(self) -> dict:
        args = {"mode": self.mode, "output": str(self.output_file), "format": self.format, "frame": self.frame}
        if self.tiles:
            args["tiles"] = self.tiles
        else:
            args.update(inputs=self.input_files, weights=self.weights, samples=self.samples)
        return args

    def argv(self) -> list[str]:
        return self.blender + [autoexec_arg(self.autoexec), "-noaudio", "--background", str(self.filepath),
                               "--python-exit-code", str(SCRIPT_ERROR_EXIT), "--python", str(SCRIPT),
                               "--", json.dumps(self.script_args(), separators=(",", ":"))]


def _paths(value, key: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise SettingError(key, "must be a non-empty list of file paths")
    if not all(isinstance(p, str) and p.strip() for p in value):
        raise SettingError(key, "must be a list of file paths (non-empty strings)")
    for p in value:
        if not os.path.isabs(os.path.expanduser(p)):
            raise SettingError(key, f"'{p}' is not an absolute path")
    return [os.path.expanduser(p) for p in value]


def _common(settings: dict) -> MergeParams:
    blender = executable_argv(settings, "blender_cmd", "blender")
    output = Path(os.path.expanduser(req_str(settings, "output_file")))
    if not output.is_absolute():
        raise SettingError("output_file", f"must be an absolute path, not '{output}'")
    frame = req_number(settings, "frame")
    if frame != int(frame):
        raise SettingError("frame", f"must be a whole number, not {frame:g}")
    fmt = opt_str(settings, "format")
    if fmt is not None and fmt not in FORMATS:
        raise SettingError("format", f"must be one of {', '.join(FORMATS)}, not '{fmt}'")
    return MergeParams(blender, blendfile_setting(settings), output, int(frame), fmt,
                       autoexec=autoexec_setting(settings))


class _Merge(Command):
    def output_dirs(self, params: MergeParams) -> list[Path]:
        return [params.output_file.parent]

    def execute(self, ctx: CommandContext, params: MergeParams) -> None:
        wait_for_blendfile(ctx, params.filepath)
        missing = [p for p in params.inputs() if not os.path.isfile(p)]
        if missing:
            raise CommandError(f"{self.name}: {len(missing)} part(s) missing, e.g. '{missing[0]}'")
        inputs = params.inputs()
        ctx.progress(0.0, f"merging {len(inputs)} {params.mode}")
        last_error = [""]
        seen = [0]

        def on_line(line: str) -> None:
            if line.startswith(_SAY):
                text = line[len(_SAY):]
                if text.startswith("added "):
                    seen[0] += 1
                    ctx.progress(0.8 * seen[0] / len(inputs), text)
                else:
                    ctx.activity(text[:200])
            elif line.startswith("Saved: '"):
                ctx.output_produced([line[len("Saved: '"):-1]])
            elif line.startswith("Error: "):
                last_error[0] = line[len("Error: "):].strip()

        result = ctx.run(params.argv(), on_line, check=False)
        if result.returncode != 0:
            raise CommandError(f"{self.name}: " + (last_error[0] or f"Blender exited with code {result.returncode}"))
        if not params.output_file.is_file():
            raise CommandError(f"{self.name}: Blender wrote no '{params.output_file}'")
        ctx.progress(1.0, f"merged into {params.output_file.name}")


@register
class MergeTiles(_Merge):
    name = "merge_tiles"

    def validate(self, settings):
        params = _common(settings)
        rows = settings.get("tiles")
        if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
            raise SettingError("tiles", "must be a non-empty list of rows, each a list of tile files (top row first)")
        params.tiles = [_paths(row, "tiles") for row in rows]
        widths = {len(row) for row in params.tiles}
        if len(widths) != 1:
            raise SettingError("tiles", f"every row needs the same number of tiles, not {sorted(widths)}")
        return params


@register
class MergeSamples(_Merge):
    name = "merge_samples"

    def validate(self, settings):
        params = _common(settings)
        params.input_files = _paths(settings.get("input_files"), "input_files")
        weights = settings.get("weights")
        if weights is not None:
            if not isinstance(weights, list) or len(weights) != len(params.input_files) or not all(
                    isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in weights):
                raise SettingError("weights", f"must be {len(params.input_files)} positive numbers, one per input")
            params.weights = [float(w) for w in weights]
        if settings.get("samples") is not None:
            samples = req_number(settings, "samples", minimum=len(params.input_files))
            if samples != int(samples):
                raise SettingError("samples", f"must be a whole number, not {samples:g}")
            params.samples = int(samples)
        return params
