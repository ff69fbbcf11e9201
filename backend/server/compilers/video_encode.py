"""The 'video-encode' job type: an image sequence to a video, encoded in parallel chunks.

    video-chunk-<a-b> (one per chunk) --> concatenate-videos --+
    [render-audio -->] encode-audio --------------------------+--> mux-audio-video --> publish-video

Each chunk of frames is encoded to its own file by a different worker
(`encode_video`); 'concatenate-videos' joins them with FFmpeg's concat demuxer
and '-c copy', so nothing is encoded twice. Each chunk starts with a key frame
of its own and carries the same codec parameters, which is what makes the
copy-join valid; the exact chunk durations (frames / fps) are passed along
because MP4 rounds its own to milliseconds. Audio comes from a .blend's
sequencer (rendered by Blender to FLAC) or from any audio or video file; it is
encoded once, cut to the video's length and muxed in without re-encoding the
video. Everything happens in an intermediate directory next to the output,
and 'publish-video' moves the result into place at the end (an existing video
is renamed out of the way first) and removes the intermediate directory.

Upload mode (no shared disk): `input`, `output` and `audio_source` are paths
in the job's tree (job files, or outputs of a job this one depends on, e.g.
the frames of a render job). The chunk files, the audio and the joined video
are scratch outputs that reach the next task through the Manager; only the
published video goes on to the Server.
"""

from __future__ import annotations

from shared.frames import chunk_frames, chunk_name, merge_frames, parse_frames
from shared.video import (AUDIO_CODECS, CONTAINERS, PRORES_PROFILES, VIDEO_CODECS, VideoSettingError, check_audio_codec,
                          check_bitrate, check_video_codec, parse_frame_pattern, split_path)

from .base import CompileContext, JobType, Setting, SettingError, TaskSpec, command, register_compiler


def _is_absolute(path: str) -> bool:
    return (path.startswith(("/", "\\", "{")) or (len(path) > 2 and path[1] == ":" and path[2] in "/\\"))


def _ext(name: str) -> str:
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


@register_compiler("video-encode")
class VideoEncode(JobType):
    label = "Video encode"
    description = ("Encodes an image sequence into a video: chunks of frames in parallel, joined without "
                   "re-encoding, with optional audio.")
    settings_schema = [
        Setting("input", "path", required=True, label="Images",
                description="The image sequence: '#' for the frame number ('{render}/shot1/frames/######.png'), "
                            "a printf field ('.../%06d.png') or a wildcard ('.../*.png', the frame number being "
                            "the last number in each file name)."),
        Setting("frames", "frames", required=True, label="Frames",
                description="The frames to encode, in order, e.g. '1-250'."),
        Setting("chunk_size", "integer", default=100, minimum=1, label="Chunk size",
                description="Frames per encoding task; the chunks are encoded in parallel."),
        Setting("fps", "number", default=24.0, minimum=0.001, maximum=1000, label="Frames per second",
                description="Frame rate of the video, e.g. 24, 25 or 29.97."),
        Setting("codec", "choice", default="h264", choices=tuple(VIDEO_CODECS), label="Video codec",
                description="h264, h265, vp9, or prores (ProRes needs an FFmpeg with prores_ks on the workers; "
                            "a worker without it fails the task naming the codec)."),
        Setting("crf", "integer", minimum=0, maximum=63, label="Quality (CRF)",
                description="Constant rate factor, lower is better: 0-51 for H.264/H.265 (default 20 and 24), "
                            "0-63 for VP9 (default 31). Not used by ProRes."),
        Setting("prores_profile", "choice", default="hq", choices=tuple(PRORES_PROFILES), label="ProRes profile",
                description="Only for codec 'prores'."),
        Setting("container", "choice", choices=tuple(CONTAINERS), label="Container",
                description="mp4, mov, mkv or webm; empty: taken from the output's extension (mp4 if it has none)."),
        Setting("output", "path", required=True, label="Output file",
                description="The video file, e.g. '{render}/shot1/shot1.mp4'. An existing file is renamed "
                            "out of the way, not overwritten."),
        Setting("audio_source", "path", label="Audio",
                description="Optional: a .blend whose sequencer sound is rendered, or an audio (or video) file "
                            "whose first audio stream is used. Cut to the video's length."),
        Setting("audio_codec", "choice", default="aac", choices=tuple(AUDIO_CODECS), label="Audio codec",
                description="aac, opus, mp3, flac or pcm; the container must take it (webm: opus only)."),
        Setting("audio_bitrate", "string", default="192k", label="Audio bitrate",
                description="For the lossy audio codecs, e.g. '192k'."),
        Setting("ffmpeg_cmd", "string", default="{ffmpeg}", label="FFmpeg command",
                description="The FFmpeg executable; '{ffmpeg}' is set per platform by the Manager."),
        Setting("blender_cmd", "string", default="{blender}", label="Blender command",
                description="Blender, for rendering the audio of a .blend."),
    ]

    @staticmethod
    def _audio_from_blend(settings) -> bool:
        return bool(settings.get("audio_source")) and settings["audio_source"].lower().endswith(".blend")

    def task_types(self, settings, ctx: CompileContext):
        types = {"video-encoding", "file-management"}
        if self._audio_from_blend(settings):
            types.add("blender-render")
        return types

    def container(self, settings) -> str:
        return settings.get("container") or (_ext(settings["output"]) if _ext(settings["output"]) in CONTAINERS
                                             else "mp4")

    def output_file(self, settings) -> str:
        out = settings["output"]
        container = self.container(settings)
        return out if _ext(split_path(out)[1]) == container else f"{out}.{container}"

    def check(self, settings, ctx: CompileContext):
        for key in ("input", "output", "audio_source"):
            value = settings.get(key)
            if value and ctx.upload:
                ctx.relpath(key, value)
            elif value and not _is_absolute(value):
                raise SettingError(key, f"'{value}' must be an absolute path or start with a variable such as "
                                        "'{render}'")
        try:
            parse_frame_pattern(settings["input"], "input")
            container = self.container(settings)
            ext = _ext(split_path(settings["output"])[1])
            if settings.get("container") and ext in CONTAINERS and ext != settings["container"]:
                raise SettingError("output", f"ends in '.{ext}' but the container is {settings['container']}")
            check_video_codec(settings["codec"], container, settings.get("crf"))
            if settings.get("audio_source"):
                check_audio_codec(settings["audio_codec"], container)
                check_bitrate(settings["audio_bitrate"])
        except VideoSettingError as ex:
            raise SettingError(ex.key, str(ex)) from None
        out_dir, out_name = split_path(settings["output"])
        if not out_name or (not out_dir and not ctx.upload):
            raise SettingError("output", "must be a file path with a directory, e.g. '{render}/shot1/shot1.mp4'")
        if settings["output"].rstrip("/\\") == settings["input"].rstrip("/\\"):
            raise SettingError("output", "is the same as the input")

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        frames = parse_frames(settings["frames"], ctx.max_frames)
        fps = settings["fps"]
        container = self.container(settings)
        output = self.output_file(settings)
        if ctx.upload:
            output = ctx.relpath("output", output)
        out_dir, out_name = split_path(output)
        stem = out_name.rsplit(".", 1)[0]
        interm_rel = _join(out_dir, f"{stem}__intermediate-{ctx.created:%Y-%m-%d_%H%M%S}-{ctx.job_id[-6:]}")
        interm = ctx.output_path("output", interm_rel)
        audio = settings.get("audio_source")
        if audio:
            audio = ctx.tree_path("audio_source", audio)
        images = ctx.tree_path("input", settings["input"])
        ffmpeg = settings["ffmpeg_cmd"]

        def io(inputs: list[str], outputs: list[str]) -> dict:
            """Upload mode: what a task reads of the intermediate directory and what it writes there."""
            if not ctx.upload:
                return {}
            rel = [f"{interm_rel}/{p.rsplit('/', 1)[1]}" for p in outputs]
            return {"inputs": [f"{interm_rel}/{p.rsplit('/', 1)[1]}" for p in inputs], "outputs": rel,
                    "scratch": True}

        codec_settings = {"fps": fps, "codec": settings["codec"]}
        if settings.get("crf") is not None:
            codec_settings["crf"] = settings["crf"]
        if settings["codec"] == "prores":
            codec_settings["prores_profile"] = settings["prores_profile"]

        chunks = list(chunk_frames(frames, settings["chunk_size"]))
        video_file = f"{interm}/video.{container}" if audio else f"{interm}/{out_name}"
        tasks: list[TaskSpec] = []
        for chunk in chunks:
            out = video_file if len(chunks) == 1 else \
                f"{interm}/chunk-{chunk[0]:06d}-{chunk[-1]:06d}.{container}"
            tasks.append(TaskSpec(f"video-chunk-{chunk_name(chunk)}", "video-encoding",
                                  [command("encode_video", ffmpeg_cmd=ffmpeg, input_files=images,
                                           frames=merge_frames(chunk), output_file=out, **codec_settings)],
                                  **io([], [out])))
        video_task = tasks[0]
        if len(chunks) > 1:
            chunk_files = [t.commands[0]["settings"]["output_file"] for t in tasks]
            video_task = TaskSpec("concatenate-videos", "video-encoding",
                                  [command("concatenate_videos", ffmpeg_cmd=ffmpeg, input_files=chunk_files,
                                           durations=[len(c) / fps for c in chunks], output_file=video_file)],
                                  parents=list(tasks), **io(chunk_files, [video_file]))
            tasks.append(video_task)
        last = video_task
        if audio:
            audio_input, audio_parents = audio, []
            if self._audio_from_blend(settings):
                flac = f"{interm}/audio.flac"
                render_audio = TaskSpec("render-audio", "blender-render",
                                        [command("blender_render_audio", blender_cmd=settings["blender_cmd"],
                                                 filepath=audio, render_output=flac,
                                                 frame_start=frames[0], frame_end=frames[-1])],
                                        **io([], [flac]))
                tasks.append(render_audio)
                audio_input, audio_parents = flac, [render_audio]
            # The audio's own container is the video's: MP4 keeps AAC's encoder delay in an edit list,
            # Matroska would drop it and the muxed audio would run 20-40 ms long.
            encoded = f"{interm}/audio.{'mka' if container == 'mkv' else container}"
            encode_audio = TaskSpec("encode-audio", "video-encoding",
                                    [command("encode_audio", ffmpeg_cmd=ffmpeg, input_file=audio_input,
                                             codec=AUDIO_CODECS[settings["audio_codec"]].encoder,
                                             bitrate=settings["audio_bitrate"], duration=len(frames) / fps,
                                             output_file=encoded)],
                                    parents=audio_parents, **io([flac] if audio_parents else [], [encoded]))
            tasks.append(encode_audio)
            last = TaskSpec("mux-audio-video", "video-encoding",
                            [command("mux_audio", ffmpeg_cmd=ffmpeg, audio_file=encoded, video_file=video_file,
                                     output_file=f"{interm}/{out_name}")],
                            parents=[video_task, encode_audio],
                            **io([encoded, video_file], [f"{interm}/{out_name}"]))
            tasks.append(last)
        publish_io = {"inputs": [f"{interm_rel}/{out_name}"], "outputs": [output, interm_rel]} if ctx.upload else {}
        tasks.append(TaskSpec("publish-video", "file-management",
                              [command("move_to_final", src=f"{interm}/{out_name}",
                                       dest=ctx.output_path("output", output)),
                               command("remove_tree", path=interm)],
                              parents=[last], **publish_io))
        return tasks


def _join(directory: str, name: str) -> str:
    return f"{directory.rstrip('/')}/{name}" if directory else name
