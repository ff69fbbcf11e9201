"""Every kind of work in upload mode, across hosts, gives what the same job gives on shared
storage: the same images and videos by name, pixel for pixel (ffmpeg framemd5), with the
same frame counts and durations (ffprobe).

The upload-mode job is submitted first, by site shot1's artist with the files uploaded from
the workstation; its outputs are downloaded from the Server. The shared-storage job runs at
the same time on the other site, with absolute paths on the NAS every host sees.

Kinds the Server still refuses in upload mode are marked xfail(strict, raises=Refused): they
fail only for that refusal, and once upload mode does them they pass, and strict makes the
lead drop the mark.
"""

from __future__ import annotations

import shutil

import pytest

from tests.e2e.jobtypes.jobtypes_support import make_frames

from .jobs import Refused, assert_same_media, download_outputs, make_blend, media_files, submit_upload
from .studio import Studio

pytestmark = pytest.mark.multihost


def refused_today(kind: str):
    return pytest.mark.xfail(raises=Refused, strict=True,
                             reason=f"upload mode for {kind}: being built on branch upload")


def run_both(st: Studio, job_type: str, upload_settings: dict, files: dict, shared_settings: dict,
             then: tuple[dict, dict] | None = None) -> tuple[dict, dict]:
    """Submit in upload mode (site 1), then on shared storage (site 2); wait for both.
    `then`: a second pair of settings (upload, shared) for a job of the same files that
    depends on the first (as a render depends on its bake)."""
    up_api, shared_api = st.artist_api(st.sites[0]), st.artist_api(st.sites[1])
    up = submit_upload(up_api, job_type, f"{job_type} upload", upload_settings, files)
    shared = shared_api.submit(job_type, f"{job_type} shared", shared_settings)
    if then is not None:
        up_type, up_then = then[0].pop("type"), then[0]
        shared_type, shared_then = then[1].pop("type"), then[1]
        up = submit_upload(up_api, up_type, f"{up_type} upload, after", up_then, files, depends_on=[up["id"]])
        shared = shared_api.submit(shared_type, f"{shared_type} shared, after", shared_then,
                                   depends_on=[shared["id"]])
    return up_api.wait(up["id"], timeout=280), shared_api.wait(shared["id"], timeout=280)


@pytest.fixture
def nas(healthy_hosts_studio: Studio, request) -> "Path":  # noqa: F821
    path = healthy_hosts_studio.nas / request.node.name
    path.mkdir()
    return path


def animation(blender: str, nas, frames: int):
    return make_blend(blender, "animation.py", nas / "scene.blend", frames, 64, 48, 4)


def test_blender_render(healthy_hosts_studio, nas, tmp_path, blender_exe):
    blend = animation(blender_exe, nas, 4)
    common = {"frames": "1-4", "chunk_size": 2, "format": "PNG"}
    up, _ = run_both(healthy_hosts_studio, "blender-render",
                     {**common, "filepath": "scene.blend", "render_output": "frames/######"}, {"scene.blend": blend},
                     {**common, "filepath": str(blend), "render_output": str(nas / "out" / "######")})
    got = download_outputs(healthy_hosts_studio.artist_api(healthy_hosts_studio.sites[0]), up["id"], tmp_path / "up")
    assert len(media_files(got.values())) == 4
    assert_same_media(media_files((nas / "out").rglob("*")), media_files(got.values()))


@refused_today("blender-render with create_video")
def test_blender_render_with_video(healthy_hosts_studio, nas, tmp_path, blender_exe):
    blend = animation(blender_exe, nas, 6)
    common = {"frames": "1-6", "chunk_size": 3, "format": "PNG", "create_video": True, "fps": 24}
    up, _ = run_both(healthy_hosts_studio, "blender-render",
                     {**common, "filepath": "scene.blend", "render_output": "frames/######"}, {"scene.blend": blend},
                     {**common, "filepath": str(blend), "render_output": str(nas / "out" / "######")})
    got = media_files(download_outputs(healthy_hosts_studio.artist_api(healthy_hosts_studio.sites[0]), up["id"],
                                       tmp_path / "up").values())
    assert sum(name.endswith(".mkv") for name in got) == 1, sorted(got)
    assert_same_media(media_files((nas / "out").rglob("*")), got)


@refused_today("video-encode")
def test_video_encode(healthy_hosts_studio, nas, tmp_path, ffmpeg_exe):
    frames = make_frames(ffmpeg_exe, nas / "frames", 24)
    common = {"frames": "1-24", "chunk_size": 12, "fps": 24}
    files = {f"frames/{p.name}": p for p in sorted(frames.iterdir())}
    up, _ = run_both(healthy_hosts_studio, "video-encode",
                     {**common, "input": "frames/######.png", "output": "video/clip.mp4"}, files,
                     {**common, "input": str(frames / "######.png"), "output": str(nas / "video" / "clip.mp4")})
    got = media_files(download_outputs(healthy_hosts_studio.artist_api(healthy_hosts_studio.sites[0]), up["id"],
                                       tmp_path / "up").values())
    assert sorted(got) == ["clip.mp4"]
    assert_same_media({"clip.mp4": nas / "video" / "clip.mp4"}, got)


@refused_today("blender-bake")
def test_blender_bake_then_a_render_that_depends_on_it(healthy_hosts_studio, nas, tmp_path, blender_exe):
    # The bake changes the .blend (rigid body caches live in it): upload the untouched file.
    original = make_blend(blender_exe, "bake_scene.py", tmp_path / "scene.blend", 6)
    blend = shutil.copy(original, nas / "scene.blend")
    render = {"type": "blender-render", "frames": "1-6", "chunk_size": 3, "format": "PNG"}
    up, _ = run_both(healthy_hosts_studio, "blender-bake",
                     {"filepath": "scene.blend", "frames": "1-6", "parts": 2}, {"scene.blend": original},
                     {"filepath": str(blend), "frames": "1-6", "parts": 2},
                     then=({**render, "filepath": "scene.blend", "render_output": "frames/######"},
                           {**render, "filepath": str(blend), "render_output": str(nas / "out" / "######")}))
    # The frames show the baked simulations (a render without the caches differs: see
    # tests/e2e/jobtypes/test_bake_farm.py), so identical frames mean the caches travelled.
    got = media_files(download_outputs(healthy_hosts_studio.artist_api(healthy_hosts_studio.sites[0]), up["id"],
                                       tmp_path / "up").values())
    assert len(got) == 6
    assert_same_media(media_files((nas / "out").rglob("*")), got)


@refused_today("blender-render-still")
@pytest.mark.parametrize("strategy", ["tiles", "samples"])
def test_blender_render_still(healthy_hosts_studio, nas, tmp_path, blender_exe, strategy):
    blend = make_blend(blender_exe, "still_scene.py", nas / "still.blend", 120, 90, 16, 0)
    common = {"frame": 1, "format": "PNG", "strategy": strategy, "parts": 2}
    up, _ = run_both(healthy_hosts_studio, "blender-render-still",
                     {**common, "filepath": "still.blend", "render_output": "out/poster-####"}, {"still.blend": blend},
                     {**common, "filepath": str(blend), "render_output": str(nas / "out" / "poster-####")})
    got = media_files(download_outputs(healthy_hosts_studio.artist_api(healthy_hosts_studio.sites[0]), up["id"],
                                       tmp_path / "up").values())
    assert sorted(got) == ["poster-0001.png"]
    assert_same_media({"poster-0001.png": nas / "out" / "poster-0001.png"}, got)
