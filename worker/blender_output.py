"""Understanding what Blender prints while it renders.

Blender 3.x (Cycles) prints, per status change:

    Fra:1 Mem:10.57M (Peak 10.83M) | Time:00:00.04 | Remaining:00:00.01 | Mem:1.42M, Peak:1.42M | Scene, ViewLayer | Sample 1/4
    Saved: '/out/frame_00001.png'

EEVEE says `Rendering 12 / 64 samples`, older Cycles `Rendered 110/135 Tiles` or
`Path Tracing Tile 110/135`. The parser keeps the latest state and turns it into
a progress fraction: frames done out of the frames of the command, refined by
the samples (and tiles) of the frame being rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FRA = re.compile(r"^Fra:(-?\d+) Mem:(\S+) \(.*?Peak (\S+?)\)")
_TIME = re.compile(r"\| Time:([\d:.]+)")
_REMAINING = re.compile(r"\| Remaining:([\d:.]+)")
_SAMPLE = re.compile(r"\bSample (\d+)/(\d+)")
_EEVEE_SAMPLES = re.compile(r"\bRendering (\d+) / (\d+) samples")
_TILES = re.compile(r"\b(?:Rendered (\d+)/(\d+) Tiles|Tiles? (\d+)/(\d+))")
_SAVED = re.compile(r"^Saved: '(.*)'")
_WARNING = re.compile(r"^Warning: (?:Unable to open|Path '.*' not found)")
_ERROR = re.compile(r"^Error: (.*)")


@dataclass
class Event:
    kind: str  # 'saved', 'activity', 'warning', 'error', 'checkpoint'
    value: str


@dataclass
class RenderState:
    frame: int | None = None
    mem: str = ""
    peak: str = ""
    time: str = ""
    remaining: str = ""
    status: str = ""
    sample: int = 0
    samples: int = 0
    tile: int = 0
    tiles: int = 0
    frames_done: set[int] = field(default_factory=set)
    saved: list[str] = field(default_factory=list)
    last_error: str = ""


class BlenderOutputParser:
    """Feed it Blender's output line by line; read `state`, `fraction()` and `activity()`."""

    def __init__(self, frames: list[int] | None = None):
        self.frames = list(frames) if frames else []
        self._frame_set = set(self.frames)
        self._frame_index = {f: i for i, f in enumerate(self.frames)}
        self.state = RenderState()
        self._seen_read = False
        self._seen_frame = False

    def feed(self, line: str) -> list[Event]:
        events: list[Event] = []
        st = self.state
        if not self._seen_read and line.startswith("Read blend:"):
            self._seen_read = True
            events.append(Event("checkpoint", "loading"))
        match = _FRA.match(line)
        if match:
            if not self._seen_frame:
                self._seen_frame = True
                events.append(Event("checkpoint", "rendering"))
            frame = int(match.group(1))
            if st.frame is not None and frame != st.frame:
                st.frames_done.add(st.frame)
                st.sample = st.samples = st.tile = st.tiles = 0
                st.remaining = ""
            st.frame = frame
            st.mem, st.peak = match.group(2), match.group(3)
            t = _TIME.search(line)
            st.time = t.group(1) if t else st.time
            r = _REMAINING.search(line)
            st.remaining = r.group(1) if r else ""
            st.status = line.rsplit("|", 1)[-1].strip()
            s = _SAMPLE.search(line) or _EEVEE_SAMPLES.search(line)
            if s:
                st.sample, st.samples = int(s.group(1)), int(s.group(2))
            tiles = _TILES.search(line)
            if tiles:
                nums = [g for g in tiles.groups() if g is not None]
                st.tile, st.tiles = int(nums[0]), int(nums[1])
            events.append(Event("activity", self.activity()))
            return events
        match = _SAVED.match(line)
        if match:
            path = match.group(1)
            st.saved.append(path)
            if st.frame is not None:
                st.frames_done.add(st.frame)
            events.append(Event("saved", path))
            return events
        if _WARNING.match(line):
            events.append(Event("warning", line))
            return events
        match = _ERROR.match(line)
        if match:
            st.last_error = match.group(1).strip()
            events.append(Event("error", st.last_error))
        return events

    def frame_fraction(self) -> float:
        """How far the current frame is, from its samples and tiles (0..1)."""
        st = self.state
        if st.frame is None or st.frame in st.frames_done:
            return 0.0
        sample = st.sample / st.samples if st.samples else 0.0
        if st.tiles:
            done_tiles = max(st.tile - 1, 0) + sample if st.samples else st.tile
            return min(done_tiles / st.tiles, 1.0)
        return min(sample, 1.0)

    def fraction(self) -> float:
        """Progress of the whole command (0..1); frames done count whole."""
        st = self.state
        total = len(self.frames)
        if not total:
            return self.frame_fraction()  # frames unknown: the frame in progress is all we know
        done = len(st.frames_done & self._frame_set)
        if done >= total:
            return 1.0
        return min((done + self.frame_fraction()) / total, 1.0)

    def activity(self) -> str:
        st = self.state
        if st.frame is None:
            return ""
        parts = [f"Fra:{st.frame}"]
        if st.frame in self._frame_index:
            parts[0] += f" ({self._frame_index[st.frame] + 1}/{len(self.frames)})"
        parts.append(f"Mem:{st.mem} (Peak {st.peak})")
        if st.time:
            parts.append(f"Time:{st.time}")
        if st.remaining:
            parts.append(f"Remaining:{st.remaining}")
        if st.status:
            parts.append(st.status)
        return " | ".join(parts)
