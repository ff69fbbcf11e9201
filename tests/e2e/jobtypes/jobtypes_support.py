"""Helpers of the job-type e2e tests: an HTTP client for the Server's API, the farm launcher
with job-type directories, scenes made by Blender's Python, and FFmpeg probes.
Import them as `from tests.e2e.jobtypes.jobtypes_support import ...`; the farm
fixture is in conftest.py. Extend rather than replace: other job types' tests use it too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


from flamenco_cli.farm import Farm, _module_cmd
from tests.conftest import ROOT
from tests.farm_api import Api  # noqa: F401 - re-exported for the job-type tests

EXAMPLE_JOB_TYPES = ROOT / "examples" / "job_types"


class JobTypesFarm(Farm):
    """The farm launcher, with the Server also loading job types from directories."""

    job_types_dirs: tuple[Path, ...] = (EXAMPLE_JOB_TYPES,)

    def start_server(self) -> None:
        listen = self.server_url.split("//", 1)[1]
        cmd = [*_module_cmd("backend.server.cli"), "serve", "--data-dir", str(self.server_dir), "--listen", listen]
        for directory in self.job_types_dirs:
            cmd += ["--job-types-dir", str(directory)]
        self._spawn("server", cmd)
        self._wait_http("server", f"{self.server_url}/api/version")


# --- scenes and files ------------------------------------------------------------------

def make_scene(blender: str, path: Path, frames: int, width=64, height=48, samples=4) -> Path:
    """The demo scene (a turning, bouncing cube; Cycles on the CPU, denoising off)."""
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(ROOT / "scripts" / "scenes" / "animation.py"), "--", str(path), str(frames),
                    str(width), str(height), str(samples)], check=True, capture_output=True, timeout=120)
    assert path.exists()
    return path


def make_sound_scene(blender: str, path: Path, sound: Path, frames: int = 48, fps: int = 24) -> Path:
    """A .blend whose sequencer plays `sound` from frame 1, for audio rendered by Blender."""
    script = (f"import bpy; s = bpy.context.scene; s.render.fps = {fps}; s.frame_start, s.frame_end = 1, {frames}; "
              f"s.sequence_editor_create(); s.sequence_editor.sequences.new_sound('tone', {str(sound)!r}, 1, 1); "
              f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})")
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python-expr",
                    script], check=True, capture_output=True, timeout=120)
    assert path.exists()
    return path


def make_frames(ffmpeg: str, directory: Path, count: int, size="64x48", rate=24, pattern="%06d.png") -> Path:
    """`count` test-pattern images numbered from 1."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}",
                    "-frames:v", str(count), "-start_number", "1", str(directory / pattern)],
                   check=True, timeout=60)
    return directory


def make_tone(ffmpeg: str, path: Path, seconds: float = 3.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    str(path)], check=True, timeout=60)
    return path


def ffprobe(path: Path, count_frames: bool = True) -> dict:
    """{format: {...}, streams: [...]} with decoded frame counts."""
    args = ["ffprobe", "-v", "error", "-of", "json", "-show_entries",
            "stream=index,codec_type,codec_name,width,height,avg_frame_rate,r_frame_rate,nb_read_frames,"
            "duration,sample_rate,channels:format=duration,format_name"]
    if count_frames:
        args.append("-count_frames")
    out = subprocess.run(args + [str(path)], check=True, capture_output=True, text=True, timeout=60).stdout
    return json.loads(out)


def framemd5(path: Path) -> list[str]:
    """Per-frame MD5 of the decoded pixels, for pixel-identity checks."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "framemd5", "-"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


def image_size(path: Path) -> tuple[int, int]:
    (stream,) = ffprobe(path, count_frames=False)["streams"]
    return stream["width"], stream["height"]
