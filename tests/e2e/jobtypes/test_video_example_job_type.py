"""The example job type of examples/job_types/, loaded by a Server started with
`--job-types-dir examples/job_types`, served by GET /api/job-types and run by the farm."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.jobtypes.jobtypes_support import image_size

pytestmark = pytest.mark.e2e


def test_a_job_type_from_a_directory_is_served_compiled_and_run(jobtypes_farm, ffmpeg_exe):
    api = jobtypes_farm.api
    types = {t["name"]: t for t in api.get("/api/job-types")["job_types"]}
    assert {"ffmpeg-thumbnails", "blender-render", "video-encode"} <= set(types)
    thumbs = types["ffmpeg-thumbnails"]
    assert thumbs["label"] == "Video thumbnails"
    assert [s["key"] for s in thumbs["settings"]] == ["inputs", "at_seconds", "width", "suffix", "ffmpeg_cmd"]

    videos = []
    for i, folder in enumerate(("plain", "with space"), 1):
        path = jobtypes_farm.root / "thumbs" / folder / f"clip{i}.mp4"
        path.parent.mkdir(parents=True)
        subprocess.run([ffmpeg_exe, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=24:duration=2",
                        "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
        videos.append(path)

    r = api.post_raw("/api/jobs", {"name": "thumbs", "type": "ffmpeg-thumbnails",
                                   "settings": {"inputs": ["clip.mp4"]}})
    assert r.status_code == 400 and r.json()["message"].startswith("setting 'inputs': item 1 ('clip.mp4')")

    job = api.submit("ffmpeg-thumbnails", "thumbs", {"inputs": [str(v) for v in videos], "width": 160,
                                                     "at_seconds": 1})
    assert [t["name"] for t in api.tasks(job["id"])] == ["thumbnail-1", "thumbnail-2"]
    api.wait(job["id"], timeout=60)
    for video in videos:
        thumb = video.with_name(video.stem + "-thumb.jpg")
        assert thumb.exists(), list(video.parent.iterdir())
        assert image_size(thumb) == (160, 120)
