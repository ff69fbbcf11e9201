"""blender_bake: one step of a simulation bake, run by Blender with bake_script.py.

The steps ('prepare', 'bake' part k of N, 'finish') and what Blender allows are
described in bake_script.py; the 'blender-bake' job type (backend/server/
compilers/blender_bake.py) puts them in a graph. Here: the settings, the command
line, and Blender's output turned into progress -- `bake: frame N :: M` is
printed for every frame a point cache bake steps through (M is the last frame),
and lines starting with 'flamenco-bake:' become the activity.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .base import (Command, CommandContext, CommandError, SettingError, autoexec_arg, autoexec_setting,
                   executable_argv, register, req_number, req_str)
from .blender import blendfile_setting, wait_for_blendfile

SCRIPT = Path(__file__).with_name("bake_script.py")
ACTIONS = ("prepare", "bake", "finish")
CACHE_TYPES = ("cloth", "soft_body", "particles", "dynamic_paint", "rigid_body", "fluid")
SCRIPT_ERROR_EXIT = 3

_BAKE_FRAME = re.compile(r"^bake: frame (-?\d+) :: (-?\d+)")
_SAY = "flamenco-bake: "
_ERROR = re.compile(r"^Error: (.*)")


@dataclass
class BakeParams:
    blender: list[str]
    filepath: Path
    action: str
    part: int = 1
    parts: int = 1
    cache_types: list[str] = field(default_factory=lambda: list(CACHE_TYPES))
    objects: list[str] = field(default_factory=list)
    frame_end: int | None = None
    mute_unrelated: bool = True
    autoexec: bool = False

    def script_args(self) -> dict:
        args = {"action": self.action, "cache_types": self.cache_types, "objects": self.objects,
                "mute_unrelated": self.mute_unrelated}
        if self.action == "bake":
            args.update(part=self.part, parts=self.parts)
        if self.frame_end is not None:
            args["frame_end"] = self.frame_end
        return args

    def argv(self) -> list[str]:
        return self.blender + [autoexec_arg(self.autoexec), "-noaudio", "--background", str(self.filepath),
                               "--python-exit-code", str(SCRIPT_ERROR_EXIT), "--python", str(SCRIPT),
                               "--", json.dumps(self.script_args(), separators=(",", ":"))]


def _int(settings: dict, key: str, minimum: int | None = None) -> int:
    value = req_number(settings, key, minimum=minimum)
    if value != int(value):
        raise SettingError(key, f"must be a whole number, not {value:g}")
    return int(value)


def _str_list(settings: dict, key: str, choices: tuple[str, ...] | None = None) -> list[str]:
    value = settings.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise SettingError(key, "must be a list of non-empty strings")
    if choices is not None:
        unknown = [v for v in value if v not in choices]
        if unknown:
            raise SettingError(key, f"unknown {', '.join(unknown)}; known are {', '.join(choices)}")
    return value


class BakeProgress:
    """Progress of one command from Blender's 'bake: frame N :: M' lines.

    A command may bake more than once (point caches, then a fluid domain; or
    the rigid body world), so a frame lower than the last one starts a new pass.
    """

    def __init__(self):
        self.first: int | None = None
        self.frame: int | None = None
        self.end: int | None = None
        self.passes = 0

    def feed(self, line: str) -> float | None:
        m = _BAKE_FRAME.match(line)
        if not m:
            return None
        frame, end = int(m.group(1)), int(m.group(2))
        if self.frame is None or frame < self.frame or end != self.end:
            self.first, self.passes = frame, self.passes + 1
        self.frame, self.end = frame, end
        span = end - self.first + 1
        return min(1.0, (frame - self.first + 1) / span) if span > 0 else 1.0


@register
class BlenderBake(Command):
    name = "blender_bake"

    def validate(self, settings):
        blender = executable_argv(settings, "blender_cmd", "blender")
        params = BakeParams(blender, blendfile_setting(settings), req_str(settings, "action"),
                            autoexec=autoexec_setting(settings))
        if params.action not in ACTIONS:
            raise SettingError("action", f"must be one of {', '.join(ACTIONS)}, not '{params.action}'")
        if params.action == "bake":
            params.parts = _int(settings, "parts", 1)
            params.part = _int(settings, "part", 1)
            if params.part > params.parts:
                raise SettingError("part", f"{params.part} is more than parts ({params.parts})")
        params.cache_types = _str_list(settings, "cache_types", CACHE_TYPES) or list(CACHE_TYPES)
        params.objects = _str_list(settings, "objects")
        if settings.get("frame_end") is not None:
            params.frame_end = _int(settings, "frame_end")
        mute = settings.get("mute_unrelated", True)
        if not isinstance(mute, bool):
            raise SettingError("mute_unrelated", f"must be true or false, not {type(mute).__name__}")
        params.mute_unrelated = mute
        return params

    def execute(self, ctx: CommandContext, params: BakeParams) -> None:
        wait_for_blendfile(ctx, params.filepath)
        step = params.action if params.action != "bake" else f"bake part {params.part} of {params.parts}"
        ctx.progress(0.0, f"{step}: starting Blender")
        progress = BakeProgress()
        last_error = [""]

        def on_line(line: str) -> None:
            fraction = progress.feed(line)
            if fraction is not None:
                ctx.progress(fraction, f"{step}: frame {progress.frame} of {progress.end}")
                return
            if line.startswith(_SAY):
                ctx.activity(f"{step}: {line[len(_SAY):]}"[:200])
                return
            m = _ERROR.match(line)
            if m:
                last_error[0] = m.group(1).strip()

        started = time.monotonic()
        result = ctx.run(params.argv(), on_line, check=False)
        ctx.reporter.metric("timing", f"{ctx.command_idx}:{ctx.command_name}:{params.action}",
                            round(time.monotonic() - started, 3))
        if result.returncode != 0:
            reason = last_error[0] or f"Blender exited with code {result.returncode}"
            raise CommandError(f"blender_bake {step}: {reason}")
        ctx.progress(1.0, f"{step}: done")
