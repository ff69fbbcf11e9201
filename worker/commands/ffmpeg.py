"""FFmpeg commands: create_video, encode_video, concatenate_videos, encode_audio, mux_audio.

FFmpeg runs with `-nostats -progress pipe:1`, so its progress arrives as
'key=value' lines on stdout; those turn into progress and stay out of the log.
The argument lists are built by pure functions (`*_argv`), tested without FFmpeg.

`encode_video` encodes part of an image sequence (a chunk of frames) with a
chosen codec; `concatenate_videos` joins such chunks without re-encoding. The
concat demuxer offsets each file by its container duration, which MP4 rounds
to milliseconds (a 24 fps chunk of 8 frames lasts 0.334 s there), so the
chunks drift apart; given `durations`, the exact ones are written into the
concat list instead.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from shared.frames import FrameRangeError, parse_frames
from shared.video import (CONTAINERS, PRORES_PROFILES, VIDEO_CODECS, FramePattern, VideoSettingError,
                          check_video_codec, frame_number, parse_frame_pattern)

from .base import Command, CommandContext, CommandError, SettingError, executable_argv, register, req_number, req_str

_PROGRESS_LINE = re.compile(r"^(frame|fps|stream_\d+_\d+_q|bitrate|total_size|out_time_us|out_time_ms|out_time|"
                            r"dup_frames|drop_frames|speed|progress)=")
BASE_ARGS = ["-hide_banner", "-nostdin", "-nostats", "-progress", "pipe:1", "-y"]
EVEN_SIZE = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
LOSSLESS_AUDIO = ("flac", "alac")
FASTSTART_SUFFIXES = (".mp4", ".mov", ".m4v", ".m4a")


def _ffmpeg(settings: dict) -> list[str]:
    return executable_argv(settings, "ffmpeg_cmd", "ffmpeg")


def _out_path(settings: dict, key: str) -> Path:
    return Path(os.path.expanduser(req_str(settings, key)))


def _faststart(output: Path) -> list[str]:
    return ["-movflags", "+faststart"] if output.suffix.lower() in FASTSTART_SUFFIXES else []


def _run_ffmpeg(ctx: CommandContext, argv: list[str], total_frames: int = 0, activity: str = "") -> None:
    """Run FFmpeg; a failure names FFmpeg's own last message ('... does not contain any stream')."""
    ctx.activity(activity or f"{ctx.command_name}: running FFmpeg")
    frame = [0]
    last = [""]

    def on_line(line: str) -> None:
        if line.startswith("frame=") and total_frames:
            try:
                frame[0] = int(line[6:])
            except ValueError:
                return
            ctx.progress(min(frame[0] / total_frames, 1.0), f"{activity} frame {frame[0]}/{total_frames}")
        elif line.strip() and not _PROGRESS_LINE.match(line):
            last[0] = line.strip()

    result = ctx.run(argv, on_line, check=False, log_filter=lambda line: not _PROGRESS_LINE.match(line))
    if result.returncode != 0:
        raise CommandError(f"ffmpeg exited with code {result.returncode}" + (f": {last[0]}" if last[0] else ""))


def _matching(pattern: str, setting: str = "input_files") -> list[str]:
    files = sorted(glob.glob(os.path.expanduser(pattern)))
    if not files:
        raise CommandError(f"setting '{setting}': no files match '{pattern}'")
    return files


# --- which encoders this worker's FFmpeg has ------------------------------------------

_ENCODERS: dict[tuple[str, float], frozenset[str]] = {}
_ENCODERS_LOCK = threading.Lock()
_ENCODER_LINE = re.compile(r"^\s*[VAS][F.][S.][X.][B.][D.]\s+(\S+)\s")


def parse_encoders(lines: list[str]) -> frozenset[str]:
    """Encoder names from `ffmpeg -encoders` output (' V....D libx264  libx264 H.264 ...')."""
    return frozenset(m.group(1) for line in lines if (m := _ENCODER_LINE.match(line)) and m.group(1) != "=")


def ffmpeg_encoders(ctx: CommandContext, ffmpeg: list[str]) -> frozenset[str]:
    """The encoders of this FFmpeg, asked once per executable (and again when it changes)."""
    try:
        key = (ffmpeg[0], os.stat(ffmpeg[0]).st_mtime)
    except OSError:
        key = (ffmpeg[0], 0.0)
    with _ENCODERS_LOCK:
        if key in _ENCODERS:
            return _ENCODERS[key]
    lines: list[str] = []
    result = ctx.run(ffmpeg + ["-hide_banner", "-nostdin", "-encoders"], lines.append, check=False,
                     log_filter=lambda line: False)
    if result.returncode != 0:
        raise CommandError(f"setting 'ffmpeg_cmd': '{ffmpeg[0]} -encoders' exited with code {result.returncode}")
    found = parse_encoders(lines)
    with _ENCODERS_LOCK:
        _ENCODERS[key] = found
    return found


def require_encoder(ctx: CommandContext, ffmpeg: list[str], encoder: str, key: str, what: str) -> None:
    """SettingError naming `key` when this worker's FFmpeg lacks the encoder (ProRes is optional in builds)."""
    encoders = ffmpeg_encoders(ctx, ffmpeg)
    if encoder not in encoders:
        hint = ""
        if what != "audio":
            usable = [name for name, c in VIDEO_CODECS.items() if c.encoder in encoders]
            hint = f"; video codecs it can encode: {', '.join(usable)}" if usable else ""
        raise SettingError(key, f"this worker's FFmpeg ({ffmpeg[0]}) has no '{encoder}' encoder for {what}{hint}")


# --- create_video: the reference's one-go H.264 of a glob -------------------------------

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
            "-c:v", "h264", "-crf", "20", "-g", "18", "-vf", EVEN_SIZE,
            "-pix_fmt", "yuv420p", "-r", fps, "-bf", "0", str(p.output_file)]
        _run_ffmpeg(ctx, argv, len(files), f"encoding {len(files)} frames")
        ctx.output_produced([str(p.output_file)])


# --- encode_video: (a chunk of) an image sequence with a chosen codec ----------------------

@dataclass
class EncodeParams:
    ffmpeg: list[str]
    pattern: FramePattern
    input_files: str
    frames: list[int] | None
    output_file: Path
    fps: float
    codec: str
    container: str
    crf: int | None
    prores_profile: str


def container_of(path: Path, key: str = "output_file") -> str:
    ext = path.suffix.lower().lstrip(".")
    if ext not in CONTAINERS:
        raise SettingError(key, f"'{path.name}' must end in one of .{', .'.join(CONTAINERS)} (the container)")
    return ext


def _int_setting(settings: dict, key: str) -> int | None:
    value = settings.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise SettingError(key, f"must be an integer, not {value!r}")
    return int(value)


def _frames_setting(settings: dict, key: str = "frames") -> list[int] | None:
    raw = settings.get(key)
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise SettingError(key, f"must be a frame range like '1-10', not {type(raw).__name__}")
    try:
        return parse_frames(raw)
    except FrameRangeError as ex:
        raise SettingError(key, str(ex)) from None


def select_frames(pattern: FramePattern, frames: list[int] | None, listing: list[str] | None = None,
                  key: str = "input_files") -> list[tuple[int, str]]:
    """(frame, path) of the images to encode, in frame order; pure: a glob gets the directory's names.

    A '#'/printf pattern names each frame's file, so `frames` is needed; a glob
    matches file names and takes the frame number from each (the last number
    in the name), optionally keeping only `frames`.
    """
    if pattern.kind != "glob":
        if not frames:
            raise SettingError("frames", f"is required with a frame-number pattern such as '{pattern.head}"
                                         f"{'#' * (pattern.digits or 4)}{pattern.tail}'")
        return [(f, pattern.path(f)) for f in frames]
    by_frame: dict[int, str] = {}
    for name in listing or []:
        if not pattern.matches(name):
            continue
        number = frame_number(name)
        if number is None:
            raise CommandError(f"setting '{key}': '{name}' has no frame number in its name")
        if number in by_frame:
            raise CommandError(f"setting '{key}': frame {number} is both '{by_frame[number]}' and '{name}'")
        by_frame[number] = name
    if not by_frame:
        raise CommandError(f"setting '{key}': no files match '{pattern.glob}' in '{pattern.directory or '.'}'")
    wanted = frames if frames is not None else sorted(by_frame)
    missing = [f for f in wanted if f not in by_frame]
    if missing:
        raise CommandError(f"setting '{key}': {len(missing)} frame(s) missing, e.g. "
                           f"{', '.join(map(str, missing[:5]))}")
    return [(f, pattern.join(by_frame[f])) for f in wanted]


def is_consecutive(frames: list[int]) -> bool:
    return all(b - a == 1 for a, b in zip(frames, frames[1:]))


def video_codec_args(codec: str, container: str, crf: int | None, prores_profile: str = "hq") -> list[str]:
    """-c:v ... for a codec in a container; the CRF defaults per codec."""
    vc = VIDEO_CODECS[codec]
    args = ["-c:v", vc.encoder]
    pix_fmt = vc.pix_fmt
    if codec == "prores":
        profile = PRORES_PROFILES[prores_profile]
        args += ["-profile:v", str(profile)]
        if profile == 4:
            pix_fmt = "yuv444p10le"
    else:
        args += ["-crf", str(vc.default_crf if crf is None else crf)]
    args += list(vc.args) + ["-pix_fmt", pix_fmt]
    if vc.mp4_tag and container in ("mp4", "mov"):
        args += ["-tag:v", vc.mp4_tag]
    return args


def encode_video_argv(ffmpeg: list[str], input_pattern: str, start: int, count: int, fps: float, codec: str,
                      container: str, crf: int | None, prores_profile: str, output: Path) -> list[str]:
    """FFmpeg reading `count` images of a printf pattern from frame `start` at `fps`."""
    rate = f"{fps:g}"
    return (ffmpeg + BASE_ARGS
            + ["-framerate", rate, "-start_number", str(start), "-i", input_pattern, "-frames:v", str(count),
               "-vf", EVEN_SIZE]
            + video_codec_args(codec, container, crf, prores_profile)
            + _faststart(output) + [str(output)])


def link_frames(files: list[str], directory: Path) -> str:
    """Number the images 1..n in `directory` (hard links, else symlinks, else copies); the printf pattern."""
    suffixes = {Path(f).suffix.lower() for f in files}
    if len(suffixes) != 1:
        raise CommandError("setting 'input_files': the images have different extensions "
                           f"({', '.join(sorted(suffixes))})")
    suffix = suffixes.pop()
    for i, src in enumerate(files, 1):
        dest = directory / f"{i:08d}{suffix}"
        try:
            os.link(src, dest)
        except OSError:
            try:
                dest.symlink_to(os.path.abspath(src))
            except OSError:
                shutil.copyfile(src, dest)
    return str(directory).replace("%", "%%") + f"/%08d{suffix}"


@register
class EncodeVideo(Command):
    """Images (all of a sequence, or a chunk of its frames) to one video file."""

    name = "encode_video"

    def validate(self, settings):
        input_files = req_str(settings, "input_files")
        try:
            pattern = parse_frame_pattern(os.path.expanduser(input_files), "input_files")
        except VideoSettingError as ex:
            raise SettingError(ex.key, str(ex)) from None
        frames = _frames_setting(settings)
        output = _out_path(settings, "output_file")
        container = container_of(output)
        codec = settings.get("codec", "h264")
        if not isinstance(codec, str):
            raise SettingError("codec", f"must be a string, not {type(codec).__name__}")
        crf = _int_setting(settings, "crf")
        profile = settings.get("prores_profile", "hq")
        if profile not in PRORES_PROFILES:
            raise SettingError("prores_profile", f"must be one of {', '.join(PRORES_PROFILES)}, not {profile!r}")
        try:
            check_video_codec(codec, container, crf)
        except VideoSettingError as ex:
            raise SettingError("output_file" if ex.key == "container" else ex.key, str(ex)) from None
        if pattern.kind != "glob" and frames is None:
            raise SettingError("frames", "is required with a frame-number pattern")
        return EncodeParams(_ffmpeg(settings), pattern, input_files, frames, output,
                            req_number(settings, "fps", minimum=0.001), codec, container, crf, profile)

    def output_dirs(self, p: EncodeParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: EncodeParams) -> None:
        vc = VIDEO_CODECS[p.codec]
        require_encoder(ctx, p.ffmpeg, vc.encoder, "codec", vc.label)
        listing = None
        if p.pattern.kind == "glob":
            directory = p.pattern.directory or "."
            try:
                listing = os.listdir(directory)
            except OSError as ex:
                raise CommandError(f"setting 'input_files': cannot list '{directory}': {ex.strerror}") from None
        selected = select_frames(p.pattern, p.frames, listing)
        missing = [(f, path) for f, path in selected if not os.path.isfile(path)]
        if missing:
            raise CommandError(f"setting 'input_files': {len(missing)} of {len(selected)} frames do not exist, "
                               f"e.g. frame {missing[0][0]}: '{missing[0][1]}'")
        numbers = [f for f, _ in selected]
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        activity = f"encoding {len(selected)} frames ({vc.label})"
        ctx.log(f"encode_video: frames {numbers[0]}..{numbers[-1]} ({len(numbers)}) of {p.input_files} "
                f"-> {p.output_file}")
        if p.pattern.kind != "glob" and is_consecutive(numbers):
            argv = encode_video_argv(p.ffmpeg, p.pattern.ffmpeg_pattern(), numbers[0], len(numbers), p.fps,
                                     p.codec, p.container, p.crf, p.prores_profile, p.output_file)
            _run_ffmpeg(ctx, argv, len(numbers), activity)
        else:
            with tempfile.TemporaryDirectory(prefix=f".{p.output_file.name}-frames-",
                                             dir=p.output_file.parent) as tmp:
                linked = link_frames([path for _, path in selected], Path(tmp))
                argv = encode_video_argv(p.ffmpeg, linked, 1, len(numbers), p.fps, p.codec, p.container, p.crf,
                                         p.prores_profile, p.output_file)
                _run_ffmpeg(ctx, argv, len(numbers), activity)
        ctx.output_produced([str(p.output_file)])


# --- concatenate_videos -------------------------------------------------------------

@dataclass
class ConcatParams:
    ffmpeg: list[str]
    input_files: str | list[str]
    output_file: Path
    durations: list[float] | None = None


def concat_list(files: list[str], durations: list[float] | None = None) -> str:
    """The concat demuxer's input: one 'file' line per video, with its exact duration when known."""
    out = []
    for i, f in enumerate(files):
        out.append("file '{}'\n".format(os.path.abspath(f).replace("'", "'\\''")))
        if durations:
            out.append(f"duration {durations[i]!r}\n")
    return "".join(out)


def concatenate_argv(ffmpeg: list[str], index: Path, output: Path) -> list[str]:
    return ffmpeg + BASE_ARGS + ["-f", "concat", "-safe", "0", "-i", str(index), "-map", "0", "-c", "copy"] \
        + _faststart(output) + [str(output)]


@register
class ConcatenateVideos(Command):
    name = "concatenate_videos"

    def validate(self, settings):
        raw = settings.get("input_files")
        if isinstance(raw, list):
            if not raw or not all(isinstance(f, str) and f.strip() for f in raw):
                raise SettingError("input_files", "must be a glob or a non-empty list of paths")
            inputs: str | list[str] = [os.path.expanduser(f) for f in raw]
        else:
            inputs = req_str(settings, "input_files")
        durations = settings.get("durations")
        if durations is not None:
            if not isinstance(durations, list) or not all(
                    isinstance(d, (int, float)) and not isinstance(d, bool) and d > 0 for d in durations):
                raise SettingError("durations", "must be a list of positive numbers (seconds)")
            if isinstance(inputs, list) and len(durations) != len(inputs):
                raise SettingError("durations", f"has {len(durations)} entries for {len(inputs)} input files")
        return ConcatParams(_ffmpeg(settings), inputs, _out_path(settings, "output_file"),
                            [float(d) for d in durations] if durations is not None else None)

    def output_dirs(self, p: ConcatParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: ConcatParams) -> None:
        if isinstance(p.input_files, list):
            files = p.input_files
            missing = [f for f in files if not os.path.isfile(f)]
            if missing:
                raise CommandError(f"setting 'input_files': '{missing[0]}' does not exist"
                                   + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        else:
            files = _matching(p.input_files)
        if p.durations is not None and len(p.durations) != len(files):
            raise CommandError(f"setting 'durations': has {len(p.durations)} entries for {len(files)} input files")
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        index = p.output_file.with_name(p.output_file.name + ".ffmpeg-input.txt")
        index.write_text(concat_list(files, p.durations))
        try:
            _run_ffmpeg(ctx, concatenate_argv(p.ffmpeg, index, p.output_file), 0,
                        f"concatenating {len(files)} videos")
        finally:
            index.unlink(missing_ok=True)
        ctx.output_produced([str(p.output_file)])


# --- audio ----------------------------------------------------------------------------

@dataclass
class AudioParams:
    ffmpeg: list[str]
    input_file: Path
    codec: str
    bitrate: str
    output_file: Path
    duration: float | None = None


def encode_audio_argv(ffmpeg: list[str], input_file: Path, codec: str, bitrate: str, output: Path,
                      duration: float | None = None) -> list[str]:
    """The first audio stream of `input_file` (a video is fine), re-encoded, cut to `duration`."""
    args = ffmpeg + BASE_ARGS + ["-i", str(input_file), "-vn", "-map", "0:a:0", "-c:a", codec]
    if not (codec in LOSSLESS_AUDIO or codec.startswith("pcm_")):
        args += ["-b:a", bitrate]
    if duration:
        args += ["-t", f"{duration:.6f}"]
    return args + [str(output)]


@register
class EncodeAudio(Command):
    name = "encode_audio"

    def validate(self, settings):
        bitrate = settings.get("bitrate", "192k")
        if isinstance(bitrate, int) and not isinstance(bitrate, bool):
            bitrate = str(bitrate)
        if not isinstance(bitrate, str) or not re.match(r"^\d+(\.\d+)?[kM]?$", bitrate):
            raise SettingError("bitrate", f"must be like '192k', not {bitrate!r}")
        duration = None
        if settings.get("duration") is not None:
            duration = req_number(settings, "duration", minimum=0.001)
        return AudioParams(_ffmpeg(settings), _out_path(settings, "input_file"), req_str(settings, "codec"),
                           bitrate, _out_path(settings, "output_file"), duration)

    def output_dirs(self, p: AudioParams) -> list[Path]:
        return [p.output_file.parent]

    def execute(self, ctx: CommandContext, p: AudioParams) -> None:
        if not p.input_file.is_file():
            raise CommandError(f"setting 'input_file': '{p.input_file}' does not exist")
        require_encoder(ctx, p.ffmpeg, p.codec, "codec", "audio")
        p.output_file.parent.mkdir(parents=True, exist_ok=True)
        argv = encode_audio_argv(p.ffmpeg, p.input_file, p.codec, p.bitrate, p.output_file, p.duration)
        _run_ffmpeg(ctx, argv, 0, f"encoding audio to {p.codec}")
        ctx.output_produced([str(p.output_file)])


@dataclass
class MuxParams:
    ffmpeg: list[str]
    audio_file: Path
    video_file: Path
    output_file: Path


def mux_argv(ffmpeg: list[str], audio: Path, video: Path, output: Path) -> list[str]:
    return ffmpeg + BASE_ARGS + ["-i", str(audio), "-i", str(video), "-map", "1:v:0", "-map", "0:a:0",
                                 "-c", "copy"] + _faststart(output) + [str(output)]


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
        _run_ffmpeg(ctx, mux_argv(p.ffmpeg, p.audio_file, p.video_file, p.output_file), 0, "muxing audio and video")
        ctx.output_produced([str(p.output_file)])
