"""The 'sleep' job type: a task per frame chunk that echoes and sleeps. For testing a farm."""

from __future__ import annotations

from shared.frames import chunk_frames, chunk_name, parse_frames

from .base import CompileContext, JobType, Setting, TaskSpec, command, register_compiler


@register_compiler("sleep")
class Sleep(JobType):
    label = "Sleep"
    description = "Sleeps per chunk of frames; does nothing useful, which makes it good for testing."
    artist_visible = False
    settings_schema = [
        Setting("frames", "frames", required=True, label="Frames",
                description="Frame range, e.g. '1-10,12'; one task per chunk."),
        Setting("chunk_size", "integer", default=1, minimum=1, label="Chunk size",
                description="Frames per task."),
        Setting("time_in_seconds", "number", default=1.0, minimum=0, maximum=86400,
                label="Seconds", description="How long each task sleeps."),
    ]

    def task_types(self, settings, ctx):
        return {"sleep"}

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        frames = parse_frames(settings["frames"], ctx.max_frames)
        seconds = settings["time_in_seconds"]
        return [
            TaskSpec(f"sleep-{chunk_name(chunk)}", "sleep",
                     [command("echo", message=f"Preparing to sleep (frames {chunk_name(chunk)})"),
                      command("sleep", time_in_seconds=seconds)])
            for chunk in chunk_frames(frames, settings["chunk_size"])
        ]
