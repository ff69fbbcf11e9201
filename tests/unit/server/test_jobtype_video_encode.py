"""video-encode: settings checks and task graphs, without FFmpeg."""

from __future__ import annotations

import pytest

from backend.server.compilers import SettingError
from tests.unit.server.compile_helpers import JobTypeCase, by_name

TYPES = frozenset({"blender-render", "file-management", "video-encoding"})
INTERM = "/render/shot1/shot1__intermediate-2024-03-05_140709-abc123"
CASE = JobTypeCase("video-encode", "Shot one video", TYPES,
                   {"input": "/render/shot1/frames/######.png", "frames": "1-10", "chunk_size": 4, "fps": 24,
                    "output": "/render/shot1/shot1.mp4"})
ctx, settings, compile_ = CASE.ctx, CASE.settings, CASE.compile


def test_chunks_encode_in_parallel_then_join_without_reencoding(jt):
    tasks = compile_(jt, settings())
    assert [t.name for t in tasks] == ["video-chunk-1-4", "video-chunk-5-8", "video-chunk-9-10",
                                       "concatenate-videos", "publish-video"]
    chunks = tasks[:3]
    assert all(t.task_type == "video-encoding" and t.parents == [] for t in chunks)
    first = chunks[0].commands[0]
    assert first == {"name": "encode_video", "settings": {
        "ffmpeg_cmd": "{ffmpeg}", "input_files": "/render/shot1/frames/######.png", "frames": "1-4",
        "output_file": f"{INTERM}/chunk-000001-000004.mp4", "fps": 24.0, "codec": "h264"}}
    assert [c.commands[0]["settings"]["frames"] for c in chunks] == ["1-4", "5-8", "9,10"]
    concat = tasks[3]
    assert concat.parents == chunks
    assert concat.commands[0]["name"] == "concatenate_videos"
    s = concat.commands[0]["settings"]
    assert s["input_files"] == [f"{INTERM}/chunk-000001-000004.mp4", f"{INTERM}/chunk-000005-000008.mp4",
                                f"{INTERM}/chunk-000009-000010.mp4"]
    assert s["durations"] == [4 / 24, 4 / 24, 2 / 24]
    assert s["output_file"] == f"{INTERM}/shot1.mp4"
    publish = tasks[-1]
    assert publish.task_type == "file-management" and publish.parents == [concat]
    assert publish.commands == [
        {"name": "move_to_final", "settings": {"src": f"{INTERM}/shot1.mp4", "dest": "/render/shot1/shot1.mp4"}},
        {"name": "remove_tree", "settings": {"path": INTERM}}]
    assert jt.task_types(jt.validate(settings()), ctx()) == {"video-encoding", "file-management"}


def test_one_chunk_encodes_straight_to_the_result(jt):
    tasks = compile_(jt, settings(chunk_size=100))
    assert [t.name for t in tasks] == ["video-chunk-1-10", "publish-video"]
    assert tasks[0].commands[0]["settings"]["output_file"] == f"{INTERM}/shot1.mp4"
    assert tasks[1].parents == [tasks[0]]


def test_audio_from_a_blend_is_rendered_encoded_and_muxed(jt):
    tasks = by_name(compile_(jt, settings(audio_source="/shots/shot1.blend", audio_codec="aac",
                                          audio_bitrate="128k", frames="101-148", chunk_size=24)))
    assert list(tasks) == ["video-chunk-101-124", "video-chunk-125-148", "concatenate-videos", "render-audio",
                           "encode-audio", "mux-audio-video", "publish-video"]
    render = tasks["render-audio"]
    assert render.task_type == "blender-render" and render.parents == []
    assert render.commands[0] == {"name": "blender_render_audio", "settings": {
        "blender_cmd": "{blender}", "filepath": "/shots/shot1.blend", "render_output": f"{INTERM}/audio.flac",
        "frame_start": 101, "frame_end": 148}}
    enc = tasks["encode-audio"]
    assert enc.parents == [render] and enc.task_type == "video-encoding"
    assert enc.commands[0]["settings"] == {"ffmpeg_cmd": "{ffmpeg}", "input_file": f"{INTERM}/audio.flac",
                                           "codec": "aac", "bitrate": "128k", "duration": 2.0,
                                           "output_file": f"{INTERM}/audio.mp4"}
    concat = tasks["concatenate-videos"]
    assert concat.commands[0]["settings"]["output_file"] == f"{INTERM}/video.mp4"
    mux = tasks["mux-audio-video"]
    assert mux.parents == [concat, enc]
    assert mux.commands[0]["settings"] == {"ffmpeg_cmd": "{ffmpeg}", "audio_file": f"{INTERM}/audio.mp4",
                                           "video_file": f"{INTERM}/video.mp4",
                                           "output_file": f"{INTERM}/shot1.mp4"}
    assert tasks["publish-video"].parents == [mux]
    assert "blender-render" in jt.task_types(jt.validate(settings(audio_source="/x/a.blend")), ctx())


def test_audio_from_a_file_needs_no_blender(jt):
    tasks = by_name(compile_(jt, settings(audio_source="{render}/music/score.wav", audio_codec="opus",
                                          container="mkv", output="/render/shot1/shot1", chunk_size=100)))
    assert list(tasks) == ["video-chunk-1-10", "encode-audio", "mux-audio-video", "publish-video"]
    assert tasks["encode-audio"].parents == []
    s = tasks["encode-audio"].commands[0]["settings"]
    assert (s["input_file"], s["codec"]) == ("{render}/music/score.wav", "libopus")
    assert s["output_file"] == f"{INTERM}/audio.mka"
    assert tasks["video-chunk-1-10"].commands[0]["settings"]["output_file"] == f"{INTERM}/video.mkv"
    assert tasks["mux-audio-video"].parents == [tasks["video-chunk-1-10"], tasks["encode-audio"]]
    # No extension on the output: the container's is added.
    assert tasks["publish-video"].commands[0]["settings"]["dest"] == "/render/shot1/shot1.mkv"
    assert jt.task_types(jt.validate(settings(audio_source="/a.wav")), ctx()) == {"video-encoding",
                                                                                   "file-management"}


def test_codec_options_reach_the_chunks(jt):
    tasks = compile_(jt, settings(codec="prores", prores_profile="lt", output="/r/x.mov", chunk_size=5))
    s = tasks[0].commands[0]["settings"]
    assert (s["codec"], s["prores_profile"], "crf" in s) == ("prores", "lt", False)
    assert s["output_file"].endswith(".mov")
    tasks = compile_(jt, settings(codec="vp9", crf=40, output="/r/x.webm", chunk_size=5))
    s = tasks[0].commands[0]["settings"]
    assert (s["codec"], s["crf"], "prores_profile" in s) == ("vp9", 40, False)


def test_container_follows_the_output_extension(jt):
    for output, container in (("/r/a.mkv", "mkv"), ("/r/a.MOV", "mov"), ("/r/a", "mp4"), ("/r/a.webm", "webm")):
        values = jt.validate(settings(output=output, codec="vp9" if container == "webm" else "h264"))
        assert jt.container(values) == container
    tasks = compile_(jt, settings(output="/r/a.v2", container="mkv"))
    assert tasks[-1].commands[0]["settings"]["dest"] == "/r/a.v2.mkv"


def test_glob_and_printf_inputs_are_accepted(jt):
    for pattern in ("/f/*.png", "/f/shot_%04d.exr", "/f/frame_####.jpg", "{render}/f/*.png"):
        tasks = compile_(jt, settings(input=pattern))
        assert tasks[0].commands[0]["settings"]["input_files"] == pattern


def test_stepped_frames_keep_their_order_and_durations(jt):
    tasks = by_name(compile_(jt, settings(frames="1-20x2", chunk_size=4, fps=25)))
    assert [n for n in tasks if n.startswith("video-chunk")] == ["video-chunk-1-7", "video-chunk-9-15",
                                                                  "video-chunk-17-19"]
    assert tasks["video-chunk-1-7"].commands[0]["settings"]["frames"] == "1-7x2"
    assert tasks["concatenate-videos"].commands[0]["settings"]["durations"] == [0.16, 0.16, 0.08]


@pytest.mark.parametrize("extra, key, words", [
    ({"input": None}, "input", "required"),
    ({"input": "/f/frames.png"}, "input", "names no frames"),
    ({"input": "/f/##/x.png"}, "input", "only be in the file name"),
    ({"input": "/f/*/x_####.png"}, "input", "wildcards may only be in the file name"),
    ({"input": "/f/x_####_%04d.png"}, "input", "mixes"),
    ({"input": "frames/####.png"}, "input", "absolute path"),
    ({"output": "shot1.mp4"}, "output", "absolute path"),
    ({"output": "/r/x.mkv", "container": "mp4"}, "output", "container is mp4"),
    ({"codec": "prores"}, "codec", "cannot go into mp4"),
    ({"codec": "h264", "output": "/r/x.webm"}, "codec", "cannot go into webm"),
    ({"codec": "av1"}, "codec", "one of"),
    ({"codec": "prores", "output": "/r/x.mov", "crf": 20}, "crf", "no CRF"),
    ({"crf": 60}, "crf", "between 0 and 51"),
    ({"crf": -1}, "crf", "at least 0"),
    ({"fps": 0}, "fps", "at least"),
    ({"chunk_size": 0}, "chunk_size", "at least 1"),
    ({"frames": "5-1"}, "frames", "ends before it starts"),
    ({"container": "avi"}, "container", "one of"),
    ({"audio_source": "/a.wav", "audio_codec": "pcm"}, "audio_codec", "cannot go into mp4"),
    ({"audio_source": "/a.wav", "audio_codec": "aac", "codec": "vp9", "output": "/r/x.webm"}, "audio_codec",
     "webm takes opus"),
    ({"audio_source": "/a.wav", "audio_bitrate": "loud"}, "audio_bitrate", "like '192k'"),
    ({"audio_source": "music/a.wav"}, "audio_source", "absolute path"),
    ({"quality": 3}, "quality", "unknown setting"),
])
def test_bad_settings_are_refused_naming_the_setting(jt, extra, key, words):
    with pytest.raises(SettingError) as info:
        compile_(jt, settings(**extra))
    assert info.value.key == key, str(info.value)
    assert words in str(info.value)


def test_upload_mode_encodes_in_the_job_tree_and_publishes_only_the_video(jt):
    files = {"frames/0001.png": {"sha256": "a" * 64, "size": 1}, "sound.flac": {"sha256": "b" * 64, "size": 1}}
    tasks = by_name(compile_(jt, settings(input="frames/####.png", output="video/shot1.mp4", audio_source="sound.flac"),
                             ctx("upload", files)))
    interm = "video/shot1__intermediate-2024-03-05_140709-abc123"
    chunk = tasks["video-chunk-1-4"]
    assert chunk.commands[0]["settings"]["input_files"] == "{job_files}/frames/####.png"
    assert chunk.commands[0]["settings"]["output_file"] == f"{{job_output}}/{interm}/chunk-000001-000004.mp4"
    assert chunk.io() == {"inputs": [], "outputs": [f"{interm}/chunk-000001-000004.mp4"], "scratch": True}
    concat = tasks["concatenate-videos"]
    assert concat.io()["inputs"] == [f"{interm}/chunk-000001-000004.mp4", f"{interm}/chunk-000005-000008.mp4",
                                     f"{interm}/chunk-000009-000010.mp4"]
    assert concat.io()["outputs"] == [f"{interm}/video.mp4"] and concat.io()["scratch"]
    assert tasks["encode-audio"].commands[0]["settings"]["input_file"] == "{job_files}/sound.flac"
    assert tasks["encode-audio"].io() == {"inputs": [], "outputs": [f"{interm}/audio.mp4"], "scratch": True}
    assert tasks["mux-audio-video"].io()["inputs"] == [f"{interm}/audio.mp4", f"{interm}/video.mp4"]
    publish = tasks["publish-video"]
    assert publish.commands == [
        {"name": "move_to_final", "settings": {"src": f"{{job_output}}/{interm}/shot1.mp4",
                                               "dest": "{job_output}/video/shot1.mp4"}},
        {"name": "remove_tree", "settings": {"path": f"{{job_output}}/{interm}"}}]
    assert publish.io() == {"inputs": [f"{interm}/shot1.mp4"], "outputs": ["video/shot1.mp4", interm]}


def test_upload_mode_paths_stay_in_the_job(jt):
    up = ctx("upload", {"f/0001.png": {"sha256": "a" * 64, "size": 1}})
    for key, bad in (("input", "/render/f/####.png"), ("output", "{render}/v.mp4"), ("audio_source", "../a.wav")):
        with pytest.raises(SettingError) as err:
            compile_(jt, settings(**{"input": "f/####.png", "output": "v.mp4", key: bad}), up)
        assert err.value.key == key
    *_, publish = compile_(jt, settings(input="f/####.png", output="v.mp4", chunk_size=100), up)
    assert publish.commands[0]["settings"]["dest"] == "{job_output}/v.mp4"


def test_a_long_sequence_compiles_quickly(jt):
    import time
    start = time.perf_counter()
    tasks = compile_(jt, settings(frames="1-100000", chunk_size=10))
    assert len(tasks) == 10_000 + 2
    assert len(tasks[-2].commands[0]["settings"]["input_files"]) == 10_000
    assert time.perf_counter() - start < 2
