"""FFmpeg commands: create_video, concatenate_videos, encode_audio, mux_audio.

FFmpeg runs with `-nostats -progress pipe:1`, so its progress arrives as
'key=value' lines on stdout; those turn into progress and stay out of the log.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .base import Command, CommandContext, CommandError, SettingError, executable_argv, register, req_number, req_str

_PROGRESS_LINE = re.compile(r"^(frame|fps|stream_\d+_\d+_q|bitrate|total_size|out_time_us|out_time_ms|out_time|"
                            r"dup_frames|drop_frames|speed|progress)=")
BASE_ARGS = ["-hide_banner", "-nostdin", "-nostats", "-progress", "pipe:1", "-y"]


def _ffmpeg(settings: dict) -> list[str]:
    return executable_argv(settings, "ffmpeg_cmd", "ffmpeg")


def _out_path(settings: dict, key: str) -> Path:
    return Path(os.path.expanduser(req_str(settings, key)))


def _run_ffmpeg(ctx: CommandContext, argv: list[str], total_frames: int = 0, activity: str = "") -> None:
    ctx.activity(activity or f"{ctx.command_name}: running FFmpeg")
    frame = [0]

    def on_line(line: str) -> None:
        if line.startswith("frame=") and total_frames:
            try:
                frame[0] = int(line[6:])
            except ValueError:
                return
            ctx.progress(min(frame[0] / total_frames, 1.0), f"{activity} frame {frame[0]}/{total_frames}")

    result = ctx.run(argv, on_line, check=False, log_filter=lambda line: not _PROGRESS_LINE.match(line))
    if result.returncode != 0:
        raise CommandError(f"ffmpeg exited with code {result.returncode}")


def _matching(pattern: str, setting: str = "input_files") -> list[str]:
    files = sorted(glob.glob(os.path.expanduser(pattern)))
    if not files:
        raise CommandError(f"setting '{setting}': no files match '{pattern}'")
    return files


@dataclass
class VideoParams:
    ffmpeg: list[str]
    input_files: str
    output_file: Path
    fps: float


@register
class CreateVideo(Command):
    name = "create_video"

    def validate(self, settings):
        return VideoParams(_ffmpeg(settings), req_str(settings, "input_files"), _out_path(settings, "output_file"),
                           req_number(settings, "fps", minimum=0.001))

    def output_dirs(self, p: VideoParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: VideoParams) -> None:
        files = _matching(p.input_files)
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        fps = f"{p.fps:g}"
        argv = p.ffmpeg + BASE_ARGS + [
            "-r", fps, "-pattern_type", "glob", "-i", os.path.expanduser(p.input_files),
            "-c:v", "h264", "-crf", "20", "-g", "18", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-pix_fmt", "yuv420p", "-r", fps, "-bf", "0", str(p.output_file)]
        _run_ffmpeg(ctx, argv, len(files), f"encoding {len(files)} frames")
        ctx.output_produced([str(p.output_file)])


@dataclass
class ConcatParams:
    ffmpeg: list[str]
    input_files: str
    output_file: Path


@register
class ConcatenateVideos(Command):
    name = "concatenate_videos"

    def validate(self, settings):
        return ConcatParams(_ffmpeg(settings), req_str(settings, "input_files"), _out_path(settings, "output_file"))

    def output_dirs(self, p: ConcatParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: ConcatParams) -> None:
        files = _matching(p.input_files)
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        index = p.output_file.with_name(p.output_file.name + ".ffmpeg-input.txt")
        index.write_text("".join("file '{}'\n".format(f.replace("'", "'\\''")) for f in files))
        try:
            argv = p.ffmpeg + BASE_ARGS + ["-f", "concat", "-safe", "0", "-i", str(index), "-c", "copy",
                                           str(p.output_file)]
            _run_ffmpeg(ctx, argv, 0, f"concatenating {len(files)} videos")
        finally:
            index.unlink(missing_ok=True)
        ctx.output_produced([str(p.output_file)])


@dataclass
class AudioParams:
    ffmpeg: list[str]
    input_file: Path
    codec: str
    bitrate: str
    output_file: Path


@register
class EncodeAudio(Command):
    name = "encode_audio"

    def validate(self, settings):
        bitrate = settings.get("bitrate", "192k")
        if isinstance(bitrate, int) and not isinstance(bitrate, bool):
            bitrate = str(bitrate)
        if not isinstance(bitrate, str) or not re.match(r"^\d+(\.\d+)?[kM]?$", bitrate):
            raise SettingError("bitrate", f"must be like '192k', not {bitrate!r}")
        return AudioParams(_ffmpeg(settings), _out_path(settings, "input_file"), req_str(settings, "codec"),
                           bitrate, _out_path(settings, "output_file"))

    def output_dirs(self, p: AudioParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: AudioParams) -> None:
        if not p.input_file.is_file():
            raise CommandError(f"setting 'input_file': '{p.input_file}' does not exist")
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        argv = p.ffmpeg + BASE_ARGS + ["-i", str(p.input_file), "-c:a", p.codec, "-b:a", p.bitrate,
                                       str(p.output_file)]
        _run_ffmpeg(ctx, argv, 0, f"encoding audio to {p.codec}")
        ctx.output_produced([str(p.output_file)])


@dataclass
class MuxParams:
    ffmpeg: list[str]
    audio_file: Path
    video_file: Path
    output_file: Path


@register
class MuxAudio(Command):
    name = "mux_audio"

    def validate(self, settings):
        return MuxParams(_ffmpeg(settings), _out_path(settings, "audio_file"), _out_path(settings, "video_file"),
                         _out_path(settings, "output_file"))

    def output_dirs(self, p: MuxParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: MuxParams) -> None:
        for key, path in (("audio_file", p.audio_file), ("video_file", p.video_file)):
            if not path.is_file():
                raise CommandError(f"setting '{key}': '{path}' does not exist")
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        argv = p.ffmpeg + BASE_ARGS + ["-i", str(p.audio_file), "-i", str(p.video_file),
                                       "-map", "1:v:0", "-map", "0:a:0", "-c", "copy", str(p.output_file)]
        _run_ffmpeg(ctx, argv, 0, "muxing audio and video")
        ctx.output_produced([str(p.output_file)])
