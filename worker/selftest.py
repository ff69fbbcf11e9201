"""`flamenco-worker --test`: one built-in job, run here without a Manager (Flamenco 2's test mode).

Blender makes a tiny scene (the factory cube, Cycles on the CPU, a few
samples, no denoising) and the worker renders one frame of it through its
own `blender_render` command and task machinery, the way a farm task runs:
same command line, same output parsing, same subprocess handling. What would
go to the Manager is kept here instead, so the log can be shown when it fails.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.documents import Task

from .config import WorkerConfig
from .runner import SubprocessRunner
from .task_execution import COMPLETED, TaskExecution
from .upstream_queue import QueuedRequest, UpstreamQueue

log = logging.getLogger(__name__)

SCENE_SCRIPT = """
import sys
import bpy
scene = bpy.context.scene
scene.render.engine = "CYCLES"
scene.cycles.device = "CPU"
scene.cycles.samples = 4
scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 160, 90, 100
scene.frame_start = scene.frame_end = 1
scene.render.image_settings.file_format = "PNG"
bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])
"""


@dataclass
class TestResult:
    ok: bool
    seconds: float
    message: str
    output: str = ""
    log: list[str] = field(default_factory=list)


class _LocalManager:
    """Where the task's updates go in test mode: kept, in order, and always accepted."""

    def __init__(self):
        self.updates: list[dict] = []

    def __call__(self, item: QueuedRequest) -> int:
        if item.json:
            self.updates.append(item.json)
        return 204

    def log_lines(self) -> list[str]:
        return [line for u in self.updates if u.get("log") for line in u["log"].splitlines()]


def make_scene(blender: str, path: Path, timeout: float = 120) -> None:
    out = subprocess.run([blender, "--background", "--factory-startup", "-noaudio", "--python-expr",
                          SCENE_SCRIPT, "--", str(path)], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0 or not path.exists():
        raise RuntimeError(f"Blender could not make the test scene (exit code {out.returncode}): "
                           f"{(out.stderr or out.stdout).strip()[-500:]}")


def run_test_job(config: WorkerConfig, blender: str = "blender", workdir: str | Path | None = None) -> TestResult:
    """Make the scene and render it as a task; the result says how it went and how long it took."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flamenco-worker-test-") as tmp:
        root = Path(workdir) if workdir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        try:
            make_scene(blender, root / "test.blend")
        except (OSError, subprocess.SubprocessError, RuntimeError) as ex:
            return TestResult(False, time.monotonic() - started, str(ex))
        task = Task.from_dict({
            "_id": "local-test-000001", "job": "local-test", "name": "test render", "status": "active",
            "task_type": "blender-render", "job_type": "blender-render",
            "commands": [{"name": "blender_render", "settings": {
                "blender_cmd": blender, "filepath": str(root / "test.blend"), "frames": "1",
                "render_output": str(root / "render" / "######"), "format": "PNG"}}]})
        sink = _LocalManager()
        local = dataclasses.replace(config, output_watch=False, push_act_interval_seconds=0.5,
                                    push_log_interval_seconds=0.5)
        queue = UpstreamQueue(root / "updates.sqlite", sink)
        try:
            execution = TaskExecution(task, local, queue, SubprocessRunner(root / "subprocess.pid",
                                                                           config.abort_grace_seconds))
            render_started = time.monotonic()
            outcome = execution.run()
            render_seconds = time.monotonic() - render_started
            queue.flush()
        finally:
            queue.close()
        seconds = time.monotonic() - started
        frame = root / "render" / "000001.png"
        if outcome.status != COMPLETED:
            return TestResult(False, seconds, f"the test render {outcome.status}: {outcome.message}",
                              log=sink.log_lines())
        if not frame.is_file() or frame.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            return TestResult(False, seconds, f"Blender finished but wrote no PNG at {frame}", log=sink.log_lines())
        return TestResult(True, seconds, f"the render task took {render_seconds:.1f} s, making the scene "
                                         f"{seconds - render_seconds:.1f} s",
                          output=str(frame) if workdir else "", log=sink.log_lines())
