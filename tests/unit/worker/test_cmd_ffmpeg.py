"""FFmpeg commands: argument lists and frame selection as pure functions, then tiny real encodes.

The real runs (marked e2e) go through the worker's TaskExecution with FFmpeg
at 32x24 pixels, a few hundred milliseconds each; they skip without FFmpeg.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shared.video import FramePattern, VideoSettingError, frame_number, parse_frame_pattern
from worker.commands.base import CommandError, SettingError
from worker.commands.ffmpeg import (concat_list, concatenate_argv, encode_audio_argv, encode_video_argv, is_consecutive,
                                    mux_argv, parse_encoders, select_frames, video_codec_args)

FF = ["/usr/bin/ffmpeg"]
BASE = ["-hide_banner", "-nostdin", "-nostats", "-progress", "pipe:1", "-y"]


def cmd(name, **settings):
    return {"name": name, "settings": settings}


# --- patterns --------------------------------------------------------------------

@pytest.mark.parametrize("path, kind, frame7, ffmpeg", [
    ("/r/frames/######.png", "hash", "/r/frames/000007.png", "/r/frames/%06d.png"),
    ("/r/frames/shot_##.exr", "hash", "/r/frames/shot_07.exr", "/r/frames/shot_%02d.exr"),
    ("/r/frames/img%04d.jpg", "printf", "/r/frames/img0007.jpg", "/r/frames/img%04d.jpg"),
    ("/r/frames/img%d.jpg", "printf", "/r/frames/img7.jpg", "/r/frames/img%d.jpg"),
    ("/r/100%/f_####.png", "hash", "/r/100%/f_0007.png", "/r/100%%/f_%04d.png"),
    ("frames/#.png", "hash", "frames/7.png", "frames/%01d.png"),
])
def test_frame_patterns_name_each_frame(path, kind, frame7, ffmpeg):
    p = parse_frame_pattern(path)
    assert p.kind == kind
    assert p.path(7) == frame7
    assert p.ffmpeg_pattern() == ffmpeg


def test_glob_patterns_match_names_and_frame_numbers_come_from_the_name():
    p = parse_frame_pattern("/r/frames/shot1_*.png")
    assert p.kind == "glob" and p.directory == "/r/frames"
    assert p.matches("shot1_0001.png") and not p.matches("shot2_0001.png") and not p.matches("shot1_0001.exr")
    assert frame_number("shot1_v2_0012.png") == 12
    assert frame_number("0003.png") == 3
    assert frame_number("poster.png") is None


@pytest.mark.parametrize("path, words", [
    ("/r/frames/", "ends in a directory"),
    ("/r/frames/poster.png", "names no frames"),
    ("/r/##/x.png", "only be in the file name"),
    ("/r/*/x_##.png", "wildcards may only be in the file name"),
    ("/r/x_##_##.png", "more than one"),
    ("/r/x_##*.png", "mixes"),
])
def test_bad_patterns_say_why(path, words):
    with pytest.raises(VideoSettingError) as info:
        parse_frame_pattern(path, "input_files")
    assert info.value.key == "input_files" and words in str(info.value)


def test_select_frames_from_a_pattern_and_from_a_glob_listing():
    hashes = parse_frame_pattern("/f/####.png")
    assert select_frames(hashes, [3, 4]) == [(3, "/f/0003.png"), (4, "/f/0004.png")]
    with pytest.raises(SettingError, match="'frames'"):
        select_frames(hashes, None)
    glob = parse_frame_pattern("/f/*.png")
    listing = ["0010.png", "0002.png", "0003.png", "notes.txt", "0004.exr"]
    assert select_frames(glob, None, listing) == [(2, "/f/0002.png"), (3, "/f/0003.png"), (10, "/f/0010.png")]
    assert select_frames(glob, [3, 10], listing) == [(3, "/f/0003.png"), (10, "/f/0010.png")]
    with pytest.raises(CommandError, match="1 frame\\(s\\) missing, e.g. 4"):
        select_frames(glob, [3, 4], listing)
    with pytest.raises(CommandError, match="frame 3 is both"):
        select_frames(glob, None, ["a_0003.png", "b_3.png"])
    with pytest.raises(CommandError, match="no files match"):
        select_frames(glob, None, ["x.exr"])
    assert is_consecutive([4, 5, 6]) and not is_consecutive([4, 6])


# --- argument lists ----------------------------------------------------------------

def test_encode_video_argv_reads_exactly_the_chunk():
    argv = encode_video_argv(FF, "/f/%06d.png", 9, 8, 24.0, "h264", "mp4", None, "hq", Path("/o/c.mp4"))
    assert argv == FF + BASE + [
        "-framerate", "24", "-start_number", "9", "-i", "/f/%06d.png", "-frames:v", "8",
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-crf", "20", "-bf", "0", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", "/o/c.mp4"]
    argv = encode_video_argv(FF, "/f/%06d.png", 1, 2, 29.97, "vp9", "mkv", 35, "hq", Path("/o/c.mkv"))
    assert argv[argv.index("-framerate") + 1] == "29.97"
    assert "-movflags" not in argv and argv[-1] == "/o/c.mkv"


@pytest.mark.parametrize("codec, container, crf, profile, expected", [
    ("h264", "mkv", 18, "hq", ["-c:v", "libx264", "-crf", "18", "-bf", "0", "-pix_fmt", "yuv420p"]),
    ("h265", "mp4", None, "hq", ["-c:v", "libx265", "-crf", "24", "-bf", "0", "-x265-params", "log-level=warning",
                                 "-pix_fmt", "yuv420p", "-tag:v", "hvc1"]),
    ("h265", "mkv", None, "hq", ["-c:v", "libx265", "-crf", "24", "-bf", "0", "-x265-params", "log-level=warning",
                                 "-pix_fmt", "yuv420p"]),
    ("vp9", "webm", None, "hq", ["-c:v", "libvpx-vp9", "-crf", "31", "-b:v", "0", "-row-mt", "1",
                                 "-pix_fmt", "yuv420p"]),
    ("prores", "mov", None, "hq", ["-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0",
                                   "-pix_fmt", "yuv422p10le"]),
    ("prores", "mov", None, "4444", ["-c:v", "prores_ks", "-profile:v", "4", "-vendor", "apl0",
                                     "-pix_fmt", "yuv444p10le"]),
])
def test_codec_arguments(codec, container, crf, profile, expected):
    assert video_codec_args(codec, container, crf, profile) == expected


def test_concat_list_carries_exact_durations_and_quotes_names(tmp_path):
    files = [str(tmp_path / "a.mp4"), str(tmp_path / "it's.mp4")]
    text = concat_list(files, [1 / 3, 0.25])
    assert text == (f"file '{tmp_path}/a.mp4'\nduration 0.3333333333333333\n"
                    f"file '{tmp_path}/it'\\''s.mp4'\nduration 0.25\n")
    assert concat_list(files[:1]) == f"file '{tmp_path}/a.mp4'\n"
    argv = concatenate_argv(FF, Path("/o/list.txt"), Path("/o/v.mov"))
    assert argv == FF + BASE + ["-f", "concat", "-safe", "0", "-i", "/o/list.txt", "-map", "0", "-c", "copy",
                                "-movflags", "+faststart", "/o/v.mov"]


def test_audio_arguments():
    argv = encode_audio_argv(FF, Path("/a/in.flac"), "aac", "192k", Path("/a/out.mka"), 2.5)
    assert argv == FF + BASE + ["-i", "/a/in.flac", "-vn", "-map", "0:a:0", "-c:a", "aac", "-b:a", "192k",
                                "-t", "2.500000", "/a/out.mka"]
    lossless = encode_audio_argv(FF, Path("/a/in.wav"), "pcm_s16le", "192k", Path("/a/o.mka"))
    assert "-b:a" not in lossless and "-t" not in lossless
    assert mux_argv(FF, Path("/a.mka"), Path("/v.mkv"), Path("/o.mkv")) == FF + BASE + [
        "-i", "/a.mka", "-i", "/v.mkv", "-map", "1:v:0", "-map", "0:a:0", "-c", "copy", "/o.mkv"]


def test_parse_encoders():
    lines = ["Encoders:", " V..... = Video", " A..... = Audio", " ------",
             " V....D libx264              libx264 H.264 / AVC", " VFS... prores_ks            Apple ProRes",
             " A....D flac                 FLAC (Free Lossless Audio Codec)"]
    assert parse_encoders(lines) == {"libx264", "prores_ks", "flac"}


# --- validation through the real TaskExecution ----------------------------------------

@pytest.mark.parametrize("settings, message", [
    ({"input_files": "/f/poster.png", "frames": "1-3"}, "setting 'input_files': 'poster.png' names no frames"),
    ({"input_files": "/f/####.png", "frames": None}, "setting 'frames': is required"),
    ({"input_files": "/f/####.png", "frames": "3-1"}, "setting 'frames': '3-1' ends before it starts"),
    ({"output_file": "/o/v.avi"}, "setting 'output_file': 'v.avi' must end in one of .mp4"),
    ({"codec": "prores"}, "setting 'codec': Apple ProRes cannot go into mp4"),
    ({"codec": "prores", "output_file": "/o/v.mov", "crf": 10}, "setting 'crf': Apple ProRes has no CRF"),
    ({"crf": 99}, "setting 'crf': must be between 0 and 51"),
    ({"crf": "good"}, "setting 'crf': must be an integer"),
    ({"fps": 0}, "setting 'fps': must be at least"),
    ({"prores_profile": "ultra"}, "setting 'prores_profile': must be one of"),
    ({"ffmpeg_cmd": "{ffmpeg}"}, "variable 'ffmpeg'"),
])
def test_encode_video_bad_settings_fail_naming_the_setting(run_task, settings, message):
    base = {"ffmpeg_cmd": sys.executable, "input_files": "/f/####.png", "frames": "1-3",
            "output_file": "/o/v.mp4", "fps": 24}
    outcome = run_task([cmd("encode_video", **{**base, **settings})])
    assert outcome.status == "failed"
    assert message in outcome.message, outcome.message
    assert outcome.message.startswith("command 0 (encode_video): ")


@pytest.mark.parametrize("settings, message", [
    ({"input_files": []}, "setting 'input_files': must be a glob or a non-empty list"),
    ({"durations": [1, -1]}, "setting 'durations': must be a list of positive numbers"),
    ({"durations": [1]}, "setting 'durations': has 1 entries for 2 input files"),
])
def test_concatenate_bad_settings(run_task, settings, message):
    base = {"ffmpeg_cmd": sys.executable, "input_files": ["/a.mp4", "/b.mp4"], "output_file": "/o/v.mp4"}
    outcome = run_task([cmd("concatenate_videos", **{**base, **settings})])
    assert outcome.status == "failed" and message in outcome.message, outcome.message


def fake_ffmpeg(tmp_path: Path, encoders: list[str]) -> str:
    """An 'ffmpeg' that only knows `-encoders`: for checking what a build without ProRes does."""
    script = tmp_path / "ffmpeg"
    lines = "\\n".join(f" V....D {e:<20} fake" for e in encoders)
    script.write_text(f"#!/bin/sh\nprintf 'Encoders:\\n ------\\n{lines}\\n'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_a_codec_this_ffmpeg_lacks_fails_naming_it(run_task, tmp_path):
    ffmpeg = fake_ffmpeg(tmp_path, ["libx264", "libvpx-vp9"])
    frames = tmp_path / "frames"
    frames.mkdir()
    outcome = run_task([cmd("encode_video", ffmpeg_cmd=ffmpeg, input_files=str(frames / "####.png"), frames="1",
                            output_file=str(tmp_path / "v.mov"), fps=24, codec="prores")])
    assert outcome.status == "failed"
    assert "setting 'codec': this worker's FFmpeg" in outcome.message
    assert "no 'prores_ks' encoder for Apple ProRes; video codecs it can encode: h264, vp9" in outcome.message


# --- real FFmpeg ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    ffmpeg = pytest.importorskip("shutil").which("ffmpeg")
    if not ffmpeg:
        pytest.skip("ffmpeg is not available")
    d = tmp_path_factory.mktemp("frames")
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=31x23:rate=24", "-frames:v", "12",
                    "-start_number", "1", str(d / "%06d.png")], check=True, timeout=60)
    return d


def probe(path: Path) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_name,codec_type,width,height,nb_read_frames,avg_frame_rate:format=duration",
                          "-of", "json", str(path)], check=True, capture_output=True, text=True, timeout=60).stdout
    return json.loads(out)


@pytest.mark.e2e
def test_chunks_encoded_then_concatenated_match_one_go(run_task, ffmpeg_exe, frames_dir, tmp_path):
    pattern = str(frames_dir / "######.png")
    chunks = [("1-5", 5), ("6-10", 5), ("11,12", 2)]
    commands = [cmd("encode_video", ffmpeg_cmd=ffmpeg_exe, input_files=pattern, frames=f,
                    output_file=str(tmp_path / f"chunk-{i}.mp4"), fps=24) for i, (f, _) in enumerate(chunks)]
    commands.append(cmd("concatenate_videos", ffmpeg_cmd=ffmpeg_exe,
                        input_files=[str(tmp_path / f"chunk-{i}.mp4") for i in range(3)],
                        durations=[n / 24 for _, n in chunks], output_file=str(tmp_path / "joined.mp4")))
    commands.append(cmd("encode_video", ffmpeg_cmd=ffmpeg_exe, input_files=pattern, frames="1-12",
                        output_file=str(tmp_path / "one.mp4"), fps=24))
    outcome = run_task(commands)
    assert outcome.status == "completed", outcome.message
    joined, one = probe(tmp_path / "joined.mp4"), probe(tmp_path / "one.mp4")
    for info in (joined, one):
        (video,) = info["streams"]
        assert (video["codec_name"], video["width"], video["height"]) == ("h264", 32, 24)  # padded to even
        assert int(video["nb_read_frames"]) == 12 and video["avg_frame_rate"] == "24/1"
        assert float(info["format"]["duration"]) == pytest.approx(0.5, abs=0.001)
    assert not list(tmp_path.glob("*.ffmpeg-input.txt"))


@pytest.mark.e2e
def test_glob_with_stepped_frames_goes_through_numbered_links(run_task, ffmpeg_exe, frames_dir, tmp_path,
                                                               transport):
    out = tmp_path / "out" / "even.mkv"
    outcome = run_task([cmd("encode_video", ffmpeg_cmd=ffmpeg_exe, input_files=str(frames_dir / "*.png"),
                            frames="2-12x2", output_file=str(out), fps=12, codec="vp9")])
    assert outcome.status == "completed", outcome.message
    info = probe(out)
    assert info["streams"][0]["codec_name"] == "vp9" and int(info["streams"][0]["nb_read_frames"]) == 6
    assert sorted(p.name for p in out.parent.iterdir()) == ["even.mkv"]  # the link directory is gone
    assert str(out) in transport.outputs()


@pytest.mark.e2e
def test_missing_frames_fail_before_ffmpeg_runs(run_task, ffmpeg_exe, frames_dir, tmp_path):
    outcome = run_task([cmd("encode_video", ffmpeg_cmd=ffmpeg_exe, input_files=str(frames_dir / "######.png"),
                            frames="10-14", output_file=str(tmp_path / "v.mp4"), fps=24)])
    assert outcome.status == "failed"
    assert "setting 'input_files': 2 of 5 frames do not exist, e.g. frame 13" in outcome.message
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.e2e
def test_prores_in_mov_when_the_build_has_it(run_task, ffmpeg_exe, frames_dir, tmp_path):
    out = subprocess.run([ffmpeg_exe, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if "prores_ks" not in out:
        pytest.skip("this FFmpeg has no prores_ks")
    outcome = run_task([cmd("encode_video", ffmpeg_cmd=ffmpeg_exe, input_files=str(frames_dir / "%06d.png"),
                            frames="1-4", output_file=str(tmp_path / "v.mov"), fps=25, codec="prores",
                            prores_profile="proxy")])
    assert outcome.status == "completed", outcome.message
    (video,) = probe(tmp_path / "v.mov")["streams"]
    assert video["codec_name"] == "prores" and int(video["nb_read_frames"]) == 4


@pytest.mark.e2e
def test_audio_cut_to_length_and_muxed(run_task, ffmpeg_exe, frames_dir, tmp_path):
    tone = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(tone)],
                   check=True, timeout=60)
    outcome = run_task([
        cmd("encode_video", ffmpeg_cmd=ffmpeg_exe, input_files=str(frames_dir / "######.png"), frames="1-12",
            output_file=str(tmp_path / "v.mp4"), fps=24),
        cmd("encode_audio", ffmpeg_cmd=ffmpeg_exe, input_file=str(tone), codec="aac", bitrate="96k", duration=0.5,
            output_file=str(tmp_path / "a.mka")),
        cmd("mux_audio", ffmpeg_cmd=ffmpeg_exe, audio_file=str(tmp_path / "a.mka"), video_file=str(tmp_path / "v.mp4"),
            output_file=str(tmp_path / "av.mp4"))])
    assert outcome.status == "completed", outcome.message
    info = probe(tmp_path / "av.mp4")
    assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]
    assert float(info["format"]["duration"]) == pytest.approx(0.5, abs=0.05)


@pytest.mark.e2e
def test_ffmpegs_own_error_reaches_the_task(run_task, ffmpeg_exe, frames_dir, tmp_path):
    outcome = run_task([cmd("encode_audio", ffmpeg_cmd=ffmpeg_exe, input_file=str(frames_dir / "000001.png"),
                            codec="aac", output_file=str(tmp_path / "a.mka"))])
    assert outcome.status == "failed"
    assert "ffmpeg exited with code" in outcome.message and ":" in outcome.message.split("code", 1)[1]


def test_frame_pattern_is_a_value_object():
    assert FramePattern("hash", "/d", "f_", 3, ".png").path(-2) == "/d/f_-02.png"
    assert os.path.basename(FramePattern("printf", "", "", 0, ".png").path(12)) == "12.png"
