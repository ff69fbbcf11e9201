"""Video codecs, containers and image-sequence patterns: what the Server accepts in a job's
settings and what the Worker turns into FFmpeg arguments, defined once.

Frame patterns name one image per frame: Blender's '#' run (`frames/######.png`,
the frame number zero-padded to the number of '#'), a printf field
(`frames/%06d.png`) or a glob (`frames/*.png`, the frame number being the last
number in each file name). Codec x container combinations were checked with
FFmpeg 5.1 (a '-c copy' mux that FFmpeg refuses is not offered).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VideoCodec:
    name: str
    label: str
    encoder: str
    pix_fmt: str
    crf_max: int | None = None
    """None: the codec has no CRF (ProRes is chosen by profile)."""
    default_crf: int | None = None
    args: tuple[str, ...] = ()
    mp4_tag: str | None = None


VIDEO_CODECS: dict[str, VideoCodec] = {
    # No B-frames for H.264/H.265: a chunk of 1-2 frames gets none anyway, so its decoding
    # timeline would start differently from its neighbours' and the copy-joined video's
    # timestamps would jump there (ffprobe then reports 144/7 fps for a 24 fps video).
    "h264": VideoCodec("h264", "H.264", "libx264", "yuv420p", 51, 20, ("-bf", "0")),
    "h265": VideoCodec("h265", "H.265 / HEVC", "libx265", "yuv420p", 51, 24,
                       ("-bf", "0", "-x265-params", "log-level=warning"), mp4_tag="hvc1"),
    "vp9": VideoCodec("vp9", "VP9", "libvpx-vp9", "yuv420p", 63, 31, ("-b:v", "0", "-row-mt", "1")),
    "prores": VideoCodec("prores", "Apple ProRes", "prores_ks", "yuv422p10le", args=("-vendor", "apl0")),
}

PRORES_PROFILES = {"proxy": 0, "lt": 1, "standard": 2, "hq": 3, "4444": 4}


@dataclass(frozen=True)
class AudioCodec:
    name: str
    encoder: str


AUDIO_CODECS: dict[str, AudioCodec] = {
    "aac": AudioCodec("aac", "aac"),
    "opus": AudioCodec("opus", "libopus"),
    "mp3": AudioCodec("mp3", "libmp3lame"),
    "flac": AudioCodec("flac", "flac"),
    "pcm": AudioCodec("pcm", "pcm_s16le"),
}


@dataclass(frozen=True)
class Container:
    name: str
    video: frozenset[str]
    audio: frozenset[str]


CONTAINERS: dict[str, Container] = {
    "mp4": Container("mp4", frozenset({"h264", "h265", "vp9"}), frozenset({"aac", "mp3", "opus"})),
    "mov": Container("mov", frozenset({"h264", "h265", "prores"}), frozenset({"aac", "mp3", "pcm"})),
    "mkv": Container("mkv", frozenset(VIDEO_CODECS), frozenset(AUDIO_CODECS)),
    "webm": Container("webm", frozenset({"vp9"}), frozenset({"opus"})),
}

_BITRATE = re.compile(r"^\d+(\.\d+)?[kM]?$")


class VideoSettingError(ValueError):
    """A codec, container or pattern that cannot work; `key` names the setting."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def check_video_codec(codec: str, container: str, crf: int | None = None, key_codec: str = "codec",
                      key_crf: str = "crf") -> VideoCodec:
    if codec not in VIDEO_CODECS:
        raise VideoSettingError(key_codec, f"unknown codec '{codec}'; known are {', '.join(VIDEO_CODECS)}")
    if container not in CONTAINERS:
        raise VideoSettingError("container", f"unknown container '{container}'; known are {', '.join(CONTAINERS)}")
    vc = VIDEO_CODECS[codec]
    if codec not in CONTAINERS[container].video:
        fits = sorted(c for c, ct in CONTAINERS.items() if codec in ct.video)
        raise VideoSettingError(key_codec, f"{vc.label} cannot go into {container}; use {' or '.join(fits)}")
    if crf is not None:
        if vc.crf_max is None:
            raise VideoSettingError(key_crf, f"{vc.label} has no CRF; its quality is set by the ProRes profile")
        if not 0 <= crf <= vc.crf_max:
            raise VideoSettingError(key_crf, f"must be between 0 and {vc.crf_max} for {vc.label}, not {crf}")
    return vc


def check_audio_codec(codec: str, container: str, key: str = "audio_codec") -> AudioCodec:
    if codec not in AUDIO_CODECS:
        raise VideoSettingError(key, f"unknown audio codec '{codec}'; known are {', '.join(AUDIO_CODECS)}")
    if container in CONTAINERS and codec not in CONTAINERS[container].audio:
        allowed = ", ".join(sorted(CONTAINERS[container].audio))
        raise VideoSettingError(key, f"{codec} audio cannot go into {container}; {container} takes {allowed}")
    return AUDIO_CODECS[codec]


def check_bitrate(value: str, key: str = "audio_bitrate") -> str:
    if not isinstance(value, str) or not _BITRATE.match(value):
        raise VideoSettingError(key, f"must be like '192k', not {value!r}")
    return value


# --- image-sequence patterns ----------------------------------------------------

_PRINTF = re.compile(r"%(0?\d*)d")
_HASHES = re.compile(r"#+")
_GLOB_CHARS = re.compile(r"[*?\[]")
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass(frozen=True)
class FramePattern:
    """An image-sequence pattern: 'hash' and 'printf' name each frame's file, 'glob' matches them."""
    kind: str
    directory: str
    head: str = ""
    digits: int = 0
    tail: str = ""
    glob: str = ""

    def path(self, frame: int) -> str:
        if self.kind == "glob":
            raise ValueError("a glob pattern does not name frames")
        number = f"{frame:0{self.digits}d}" if self.digits else str(frame)
        return self.join(f"{self.head}{number}{self.tail}")

    def ffmpeg_pattern(self) -> str:
        """The printf form FFmpeg's image2 demuxer reads ('%' in names doubled)."""
        if self.kind == "glob":
            raise ValueError("a glob pattern has no printf form")
        field = f"%0{self.digits}d" if self.digits else "%d"
        return self.join(self.head.replace("%", "%%") + field + self.tail.replace("%", "%%"), ffmpeg=True)

    def matches(self, name: str) -> bool:
        return self.kind == "glob" and fnmatch.fnmatchcase(name, self.glob)

    def join(self, name: str, ffmpeg: bool = False) -> str:
        """`name` in the pattern's directory."""
        directory = self.directory.replace("%", "%%") if ffmpeg else self.directory
        return f"{directory}/{name}" if directory else name


def split_path(path: str) -> tuple[str, str]:
    cut = max(path.rfind("/"), path.rfind("\\"))
    return (path[:cut] or path[:1], path[cut + 1:]) if cut >= 0 else ("", path)


def parse_frame_pattern(path: str, key: str = "input") -> FramePattern:
    """The pattern of an image sequence; VideoSettingError naming `key` when it names no frames."""
    directory, name = split_path(path)
    if not name:
        raise VideoSettingError(key, f"'{path}' ends in a directory; add a file pattern such as '######.png'")
    if "#" in directory or _PRINTF.search(directory):
        raise VideoSettingError(key, f"'{path}': the frame number may only be in the file name")
    if _GLOB_CHARS.search(directory):
        raise VideoSettingError(key, f"'{path}': wildcards may only be in the file name")
    hashes = _HASHES.findall(name)
    printf = _PRINTF.findall(name)
    if hashes and printf:
        raise VideoSettingError(key, f"'{name}' mixes '#' and a '%d' field")
    if len(hashes) > 1 or len(printf) > 1:
        raise VideoSettingError(key, f"'{name}' has more than one frame-number field")
    if hashes or printf:
        if _GLOB_CHARS.search(name):
            raise VideoSettingError(key, f"'{name}' mixes a frame-number field and wildcards")
        if hashes:
            m = _HASHES.search(name)
            return FramePattern("hash", directory, name[:m.start()], len(m.group()), name[m.end():])
        m = _PRINTF.search(name)
        width = m.group(1)
        return FramePattern("printf", directory, name[:m.start()], int(width) if width else 0, name[m.end():])
    if _GLOB_CHARS.search(name):
        return FramePattern("glob", directory, glob=name)
    raise VideoSettingError(key, f"'{name}' names no frames: use '#' for the frame number "
                                 f"('######.png'), a printf field ('%06d.png') or a wildcard ('*.png')")


def frame_number(filename: str) -> int | None:
    """The frame number in an image's file name: the last number before the extension."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    m = _LAST_NUMBER.search(stem)
    return int(m.group(1)) if m else None
