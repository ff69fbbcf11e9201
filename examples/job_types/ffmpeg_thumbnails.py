"""An example of a studio's own job type: a poster image for each of a list of videos.

Load it by naming this directory in the Server's config (`job_types_dirs =
["/path/to/examples/job_types"]`) or with `flamenco-server serve
--job-types-dir examples/job_types`. Every `*.py` here not starting with '_'
is imported at start-up; its classes marked `@register_compiler` become job
types, served by `GET /api/job-types` and accepted by `POST /api/jobs` like
the built-in ones.

A job type only describes work; the workers do it with the commands they
already have. This one needs no new worker code: each task runs FFmpeg
through the `exec` command, with '{ffmpeg}' filled in by the Manager for the
worker's platform. The images are written next to each video
('shot1.mp4' -> 'shot1-thumb.jpg'), one task per video, so a farm makes
them in parallel.
"""

from __future__ import annotations

import shlex

from backend.server.compilers import (CompileContext, JobType, Setting, SettingError, TaskSpec, command,
                                      register_compiler)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def thumbnail_path(video: str, suffix: str) -> str:
    cut = max(video.rfind("/"), video.rfind("\\"))
    dot = video.rfind(".")
    stem = video[:dot] if dot > cut + 1 else video
    return stem + suffix


@register_compiler("ffmpeg-thumbnails")
class FFmpegThumbnails(JobType):
    label = "Video thumbnails"
    description = "Makes a poster image of each video (or image), next to it, one task per file."
    files_modes = ("shared",)  # the images are written next to the videos, wherever they are
    settings_schema = [
        Setting("inputs", "list", required=True, label="Videos",
                description="Absolute paths (or paths starting with a variable such as '{render}') of the "
                            "videos or images."),
        Setting("at_seconds", "number", default=0.0, minimum=0, label="At (seconds)",
                description="Where in each video the image is taken."),
        Setting("width", "integer", default=320, minimum=16, maximum=7680, label="Width",
                description="Width of the images in pixels; the height keeps the aspect ratio."),
        Setting("suffix", "string", default="-thumb.jpg", label="Suffix",
                description="Replaces each input's extension: 'shot1.mp4' -> 'shot1-thumb.jpg'. Ends in "
                            ".jpg, .png or .webp."),
        Setting("ffmpeg_cmd", "string", default="{ffmpeg}", label="FFmpeg command",
                description="The FFmpeg executable; '{ffmpeg}' is set per platform by the Manager."),
    ]

    def task_types(self, settings, ctx: CompileContext) -> set[str]:
        return {"video-encoding"}

    def check(self, settings, ctx: CompileContext) -> None:
        if ctx.files_mode == "upload":
            raise SettingError("inputs", "needs shared storage: the images are written next to the videos")
        if not settings["inputs"]:
            raise SettingError("inputs", "needs at least one video")
        for i, path in enumerate(settings["inputs"], 1):
            if not path.startswith(("/", "{")) and not (len(path) > 2 and path[1] == ":"):
                raise SettingError("inputs", f"item {i} ('{path}') must be an absolute path")
        suffix = settings["suffix"]
        if not suffix.lower().endswith(IMAGE_SUFFIXES) or "/" in suffix or "\\" in suffix:
            raise SettingError("suffix", f"must be a file name ending such as '-thumb.jpg', not '{suffix}'")
        outputs = [thumbnail_path(p, suffix) for p in settings["inputs"]]
        if len(set(outputs)) != len(outputs):
            raise SettingError("inputs", "two inputs would get the same image (same name, other extension)")

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        tasks = []
        for i, video in enumerate(settings["inputs"], 1):
            argv = [settings["ffmpeg_cmd"], "-hide_banner", "-nostdin", "-y", "-ss", f"{settings['at_seconds']:g}",
                    "-i", video, "-frames:v", "1", "-vf", f"scale={settings['width']}:-2",
                    thumbnail_path(video, settings["suffix"])]
            # Quoted words stay quoted after the Manager replaces '{ffmpeg}' or '{render}' inside them,
            # so a path with spaces survives the worker's shell-style split.
            tasks.append(TaskSpec(f"thumbnail-{i}", "video-encoding",
                                  [command("exec", cmd=shlex.join(argv))]))
        return tasks
