"""video-encode on a whole farm with real FFmpeg (and Blender for audio from a .blend).

48 test-pattern frames of 64x48 are encoded in chunks by two workers, joined
without re-encoding, with audio from a file or from a .blend's sequencer; the
results are checked with ffprobe.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.jobtypes.jobtypes_support import ffprobe, make_frames, make_sound_scene, make_tone

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def media(jobtypes_farm, blender_exe, ffmpeg_exe):
    root = jobtypes_farm.root / "video"
    frames = make_frames(ffmpeg_exe, root / "frames", 48)
    tone = make_tone(ffmpeg_exe, root / "audio" / "tone.wav", 3.0)
    blend = make_sound_scene(blender_exe, root / "audio" / "sound.blend", tone, 48, 24)
    return root, frames, tone, blend


def streams(info, kind):
    return [s for s in info["streams"] if s["codec_type"] == kind]


def has_encoder(ffmpeg: str, name: str) -> bool:
    out = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return f" {name} " in out


def test_chunks_joined_without_reencoding_match_one_go(jobtypes_farm, media, ffmpeg_exe):
    api = jobtypes_farm.api
    root, frames, tone, blend = media
    base = {"input": str(frames / "######.png"), "frames": "1-48", "fps": 24}
    chunked = api.submit("video-encode", "chunks + audio file", {
        **base, "chunk_size": 10, "output": str(root / "a" / "chunked.mp4"), "audio_source": str(tone)})
    one_go = api.submit("video-encode", "one go", {**base, "chunk_size": 100, "output": str(root / "b" / "one.mp4")})
    blend_audio = api.submit("video-encode", "audio from blend", {
        **base, "input": str(frames / "*.png"), "chunk_size": 16, "container": "mkv",
        "output": str(root / "c" / "blend_audio"), "audio_source": str(blend), "audio_codec": "opus"})
    jobs = [chunked, one_go, blend_audio]
    prores = has_encoder(ffmpeg_exe, "prores_ks")
    if prores:
        jobs.append(api.submit("video-encode", "prores stepped", {
            **base, "frames": "1-48x2", "fps": 12, "chunk_size": 8, "codec": "prores", "prores_profile": "proxy",
            "output": str(root / "d" / "prores.mov")}))
    assert [t["name"] for t in api.tasks(chunked["id"])] == [
        "video-chunk-1-10", "video-chunk-11-20", "video-chunk-21-30", "video-chunk-31-40", "video-chunk-41-48",
        "concatenate-videos", "encode-audio", "mux-audio-video", "publish-video"]
    api.wait_all([j["id"] for j in jobs], timeout=150)

    a = ffprobe(root / "a" / "chunked.mp4")
    b = ffprobe(root / "b" / "one.mp4")
    (va,), (vb,) = streams(a, "video"), streams(b, "video")
    assert int(va["nb_read_frames"]) == int(vb["nb_read_frames"]) == 48
    assert va["avg_frame_rate"] == vb["avg_frame_rate"] == va["r_frame_rate"] == "24/1"
    assert (va["codec_name"], va["width"], va["height"]) == ("h264", 64, 48)
    assert float(va["duration"]) == float(vb["duration"]) == pytest.approx(2.0, abs=1e-6)
    assert float(a["format"]["duration"]) == pytest.approx(2.0, abs=0.03)
    (aa,) = streams(a, "audio")
    assert aa["codec_name"] == "aac" and float(aa["duration"]) == pytest.approx(2.0, abs=0.05)  # cut from 3 s
    assert streams(b, "audio") == []
    # Only the results are left: the intermediate directories are gone.
    assert [p.name for p in (root / "a").iterdir()] == ["chunked.mp4"]
    assert [p.name for p in (root / "b").iterdir()] == ["one.mp4"]

    c = ffprobe(root / "c" / "blend_audio.mkv")
    (vc,) = streams(c, "video")
    assert int(vc["nb_read_frames"]) == 48 and vc["avg_frame_rate"] == "24/1"
    assert "matroska" in c["format"]["format_name"]
    assert float(c["format"]["duration"]) == pytest.approx(2.0, abs=0.05)
    (ac,) = streams(c, "audio")
    assert ac["codec_name"] == "opus"
    render_audio = next(t for t in api.tasks(blend_audio["id"]) if t["name"] == "render-audio")
    assert render_audio["status"] == "completed"

    if prores:
        d = ffprobe(root / "d" / "prores.mov")
        (vd,) = streams(d, "video")
        assert vd["codec_name"] == "prores" and int(vd["nb_read_frames"]) == 24
        assert vd["avg_frame_rate"] == "12/1" and float(vd["duration"]) == pytest.approx(2.0, abs=1e-6)

    # A rerun onto the same output keeps the previous video aside.
    again = api.submit("video-encode", "one go again", {**base, "frames": "1-24", "chunk_size": 100,
                                                         "output": str(root / "b" / "one.mp4")})
    api.wait(again["id"])
    names = sorted(p.name for p in (root / "b").iterdir())
    assert names[0] == "one.mp4" and len(names) == 2 and names[1].startswith("one.mp4-")
    assert int(streams(ffprobe(root / "b" / "one.mp4"), "video")[0]["nb_read_frames"]) == 24


def test_settings_are_checked_before_anything_runs(jobtypes_farm, media):
    api = jobtypes_farm.api
    root, frames, _, _ = media
    cases = [
        ({"codec": "prores", "output": str(root / "x.mp4")}, "setting 'codec': Apple ProRes cannot go into mp4"),
        ({"input": str(frames / "poster.png")}, "setting 'input': 'poster.png' names no frames"),
        ({"audio_source": str(root / "t.wav"), "audio_codec": "pcm"}, "setting 'audio_codec': pcm audio"),
        ({"crf": 70}, "setting 'crf': must be at most 63"),
    ]
    for extra, message in cases:
        settings = {"input": str(frames / "######.png"), "frames": "1-48", "output": str(root / "x.mp4"), **extra}
        r = api.post_raw("/api/jobs", {"name": "bad", "type": "video-encode", "settings": settings})
        assert r.status_code == 400 and r.json()["code"] == "invalid_setting", r.text
        assert r.json()["message"].startswith(message), r.json()["message"]


def test_missing_frames_fail_the_chunk_naming_the_frame(jobtypes_farm, media):
    api = jobtypes_farm.api
    root, frames, _, _ = media
    job = api.submit("video-encode", "too many frames", {"input": str(frames / "######.png"), "frames": "41-50",
                                                          "chunk_size": 10, "output": str(root / "e" / "x.mp4")})
    done = api.wait(job["id"], lambda j: j["status"] == "failed", allow_failure=True, timeout=90)
    assert done["status"] == "failed"
    chunk = next(t for t in api.tasks(job["id"]) if t["name"] == "video-chunk-41-50")
    activity = api.task(chunk["id"])["activity"]
    assert "setting 'input_files': 2 of 10 frames do not exist, e.g. frame 49" in activity, activity
    assert not (root / "e" / "x.mp4").exists()
