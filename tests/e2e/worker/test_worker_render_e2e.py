"""Real Blender and real FFmpeg run by the worker's commands; the results are inspected."""

import subprocess

import pytest

from tests.e2e.worker.worker_e2e_helpers import ffprobe, make_scene

pytestmark = pytest.mark.e2e


def render(blender_exe, scene, out_dir, frames="1..3", fmt="PNG"):
    return {"name": "blender_render", "settings": {
        "blender_cmd": blender_exe, "filepath": str(scene), "render_output": str(out_dir / "frame_#####"),
        "format": fmt, "frames": frames}}


def test_blender_render_produces_frames_progress_and_metrics(run_task, blender_exe, scene, tmp_path):
    out = tmp_path / "frames"
    outcome, rec = run_task([render(blender_exe, scene, out)], output_watch=True)
    assert outcome.status == "completed", outcome.message
    frames = sorted(out.glob("frame_*.png"))
    assert [f.name for f in frames] == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    for f in frames:
        info = ffprobe(f, "width", "height")
        assert (info["width"], info["height"]) == (160, 120)
    # 'Saved:' lines became produced outputs, each once (the output watcher saw them too).
    assert sorted(rec.outputs()) == [str(f) for f in frames]
    progress = [u["task_progress_percentage"] for u in rec.updates()]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < p < 100 for p in progress), progress
    assert any("Fra:2 (2/3)" in (u.get("activity") or "") for u in rec.updates())
    last = rec.updates()[-1]
    timing = last["metrics"]["timing"]
    assert {"0:blender_render:starting", "0:blender_render:loading", "0:blender_render:rendering"} <= set(timing)
    assert last["metrics"]["peak_rss_mb"]["0:blender_render"] > 20
    assert "Saved: '" in rec.log_text()


def test_denoising_scene_fails_with_blenders_error(run_task, blender_exe, tmp_path):
    scene = make_scene(blender_exe, tmp_path / "denoise.blend", denoise=True)
    outcome, rec = run_task([render(blender_exe, scene, tmp_path / "out", frames="1")])
    assert outcome.status == "failed"
    assert "Build without OpenImageDenoiser" in outcome.message
    assert rec.updates()[-1]["task_status"] == "failed"


def test_missing_blend_file_fails_naming_the_setting(run_task, blender_exe, tmp_path):
    outcome, _ = run_task([render(blender_exe, tmp_path / "nope.blend", tmp_path / "out")])
    assert outcome.status == "failed"
    assert "setting 'filepath'" in outcome.message and "nope.blend" in outcome.message


def test_video_chunks_concatenated_with_audio(run_task, blender_exe, ffmpeg_exe, tmp_path, tone_wav):
    scene = make_scene(blender_exe, tmp_path / "av.blend", sound=tone_wav)
    frames = tmp_path / "frames"
    videos = tmp_path / "videos"
    commands = [
        render(blender_exe, scene, frames / "chunk-1-3", frames="1..3", fmt="JPEG"),
        render(blender_exe, scene, frames / "chunk-4-6", frames="4..6", fmt="JPEG"),
        {"name": "create_video", "settings": {"ffmpeg_cmd": ffmpeg_exe, "input_files": str(frames / "chunk-1-3" / "*.jpg"),
                                              "output_file": str(videos / "chunk-1-3.mkv"), "fps": 24}},
        {"name": "create_video", "settings": {"ffmpeg_cmd": ffmpeg_exe, "input_files": str(frames / "chunk-4-6" / "*.jpg"),
                                              "output_file": str(videos / "chunk-4-6.mkv"), "fps": 24}},
        {"name": "concatenate_videos", "settings": {"ffmpeg_cmd": ffmpeg_exe, "input_files": str(videos / "chunk-*.mkv"),
                                                    "output_file": str(tmp_path / "video.mkv")}},
        {"name": "blender_render_audio", "settings": {"blender_cmd": blender_exe, "filepath": str(scene),
                                                      "render_output": str(tmp_path / "audio.flac"),
                                                      "frame_start": 1, "frame_end": 6}},
        {"name": "encode_audio", "settings": {"ffmpeg_cmd": ffmpeg_exe, "input_file": str(tmp_path / "audio.flac"),
                                              "codec": "aac", "bitrate": "192k",
                                              "output_file": str(tmp_path / "audio.aac")}},
        {"name": "mux_audio", "settings": {"ffmpeg_cmd": ffmpeg_exe, "audio_file": str(tmp_path / "audio.aac"),
                                           "video_file": str(tmp_path / "video.mkv"),
                                           "output_file": str(tmp_path / "final.mkv")}},
    ]
    outcome, rec = run_task(commands)
    assert outcome.status == "completed", outcome.message + rec.log_text()[-3000:]
    for chunk in ("chunk-1-3.mkv", "chunk-4-6.mkv"):
        assert int(ffprobe(videos / chunk, "nb_read_frames")["nb_read_frames"]) == 3
    assert int(ffprobe(tmp_path / "video.mkv", "nb_read_frames")["nb_read_frames"]) == 6
    assert ffprobe(tmp_path / "audio.flac", "codec_name", stream="a:0")["codec_name"] == "flac"
    final_v = ffprobe(tmp_path / "final.mkv", "nb_read_frames", "codec_name")
    final_a = ffprobe(tmp_path / "final.mkv", "codec_name", stream="a:0")
    assert int(final_v["nb_read_frames"]) == 6 and final_v["codec_name"] == "h264"
    assert final_a["codec_name"] == "aac"
    assert str(tmp_path / "final.mkv") in rec.outputs()
    # FFmpeg's progress lines became progress, not log lines.
    assert "out_time_us=" not in rec.log_text()
