"""Every kind of work in upload mode (no shared disk), against the same job on shared storage, on a
whole farm (Server, Manager, 2 workers as processes, each with its own data directory) with real
Blender and FFmpeg.

The two jobs of a pair are submitted together and differ only in where their files are: the
shared one reads and writes paths on this machine's disk, the upload one gets its files from
the Server and hands everything between its tasks through the Manager (frames to the video and
to move-to-final, video chunks to the join, tiles and sample parts to the merge, the prepared
.blend and the staged caches to the finishing bake, the finished bake to the render job that
depends on it). Results are compared by decoded pixels (`ffmpeg -f framemd5`), frame count and
duration. The Manager's byte counters show that nothing it already had was sent to it again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import requests

from tests.e2e.jobtypes.jobtypes_support import ffprobe, framemd5, make_frames, make_scene, make_tone
from tests.e2e.jobtypes.test_bake_farm import FRAMES as BAKE_FRAMES, make_bake_scene
from tests.e2e.jobtypes.test_still_farm import make_still_scene

pytestmark = pytest.mark.e2e


def upload(api, files: dict[str, Path]) -> dict:
    """Send the Server the files it lacks, as the add-on does; the job's manifest."""
    manifest = {rel: {"sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "size": p.stat().st_size}
                for rel, p in files.items()}
    missing = set(api.post("/api/files/check", {"files": list(manifest.values())})["missing"])
    for rel, entry in manifest.items():
        if entry["sha256"] in missing:
            r = api.s.put(f"{api.base}/api/files/{entry['sha256']}", data=files[rel].read_bytes(), timeout=60)
            assert r.status_code in (200, 201), r.text
            missing.discard(entry["sha256"])
    return manifest


def download(api, job_id: str, dest: Path) -> dict[str, Path]:
    """The job's outputs from the Server, as the artist gets them: {relpath: local file}."""
    got = {}
    for out in api.get(f"/api/jobs/{job_id}/outputs")["outputs"]:
        r = api.s.get(api.base + out["url"], timeout=60)
        r.raise_for_status()
        path = dest / out["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(r.content)
        assert hashlib.sha256(r.content).hexdigest() == out["sha256"]
        got[out["relpath"]] = path
    return got


def manager_bytes(farm) -> dict:
    token = json.loads(farm.manager_cli("create-admin-token", "--label", "test", "--json"))["token"]
    r = requests.get(farm.manager_url + "/api/admin/status", headers={"Authorization": f"Bearer {token}"},
                     timeout=10)
    r.raise_for_status()
    return r.json()["files"]


def delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in after if k.startswith("bytes_")}


def same_video(a: Path, b: Path) -> None:
    pa, pb = ffprobe(a), ffprobe(b)
    va = [s for s in pa["streams"] if s["codec_type"] == "video"]
    vb = [s for s in pb["streams"] if s["codec_type"] == "video"]
    assert [s["nb_read_frames"] for s in va] == [s["nb_read_frames"] for s in vb]
    assert float(pa["format"]["duration"]) == float(pb["format"]["duration"])
    assert [s["codec_type"] for s in pa["streams"]] == [s["codec_type"] for s in pb["streams"]]
    assert framemd5(a) == framemd5(b)


def test_animation_with_video_and_move_to_final(jobtypes_farm, blender_exe, tmp_path):
    api, farm = jobtypes_farm.api, jobtypes_farm.farm
    root = jobtypes_farm.root / "upload-anim"
    blend = make_scene(blender_exe, root / "scene" / "anim.blend", 6)
    common = {"frames": "1-6", "chunk_size": 2, "format": "PNG", "create_video": True, "fps": 24}
    before = manager_bytes(farm)
    shared = api.submit("blender-render", "anim shared", {**common, "filepath": str(blend),
                                                          "render_output": str(root / "shared" / "frames" / "######")})
    files = upload(api, {"anim.blend": blend})
    up = api.submit("blender-render", "anim upload", {**common, "filepath": "anim.blend",
                                                      "render_output": "frames/######"}, files=files)
    assert [t["name"] for t in api.tasks(up["id"])] == [t["name"] for t in api.tasks(shared["id"])] == [
        "blender-render-1-2", "blender-render-3-4", "blender-render-5-6", "create-video", "move-to-final"]
    api.wait_all([shared["id"], up["id"]], timeout=240)

    got = download(api, up["id"], tmp_path / "up")
    names = [f"frames/{n:06d}.png" for n in range(1, 7)] + ["frames/anim-1-6.mkv"]
    assert sorted(got) == sorted(names), "the final folder only: no intermediate outputs left at the Server"
    for rel in names[:-1]:
        assert framemd5(got[rel]) == framemd5(root / "shared" / rel), rel
    same_video(got["frames/anim-1-6.mkv"], root / "shared" / "frames" / "anim-1-6.mkv")
    assert int(ffprobe(got["frames/anim-1-6.mkv"])["streams"][0]["nb_read_frames"]) == 6

    # Every output crossed each hop once: the frames went up when rendered, down to the video
    # task and to move-to-final (only those the worker there had not made), and the move itself
    # cost the Manager and the Server no bytes.
    sizes = sum(p.stat().st_size for p in got.values())
    moved = delta(manager_bytes(farm), before)
    assert moved["bytes_from_workers"] == sizes, moved
    assert moved["bytes_to_server"] == sizes, moved
    assert moved["bytes_to_workers"] <= 2 * blend.stat().st_size + 2 * sizes, moved


def test_video_encode_in_chunks_with_audio(jobtypes_farm, ffmpeg_exe, tmp_path):
    api = jobtypes_farm.api
    root = jobtypes_farm.root / "upload-video"
    frames = make_frames(ffmpeg_exe, root / "frames", 30)
    tone = make_tone(ffmpeg_exe, root / "tone.wav", 2.0)
    common = {"frames": "1-30", "chunk_size": 8, "fps": 24, "audio_codec": "aac"}
    shared = api.submit("video-encode", "video shared", {**common, "input": str(frames / "######.png"),
                                                         "audio_source": str(tone),
                                                         "output": str(root / "shared" / "shot.mp4")})
    files = upload(api, {**{f"frames/{p.name}": p for p in sorted(frames.glob("*.png"))}, "tone.wav": tone})
    up = api.submit("video-encode", "video upload", {**common, "input": "frames/######.png",
                                                     "audio_source": "tone.wav", "output": "video/shot.mp4"},
                    files=files)
    api.wait_all([shared["id"], up["id"]], timeout=180)
    got = download(api, up["id"], tmp_path / "up")
    assert list(got) == ["video/shot.mp4"], "chunks, audio and the joined video are scratch: only the result"
    same_video(got["video/shot.mp4"], root / "shared" / "shot.mp4")
    info = ffprobe(got["video/shot.mp4"])
    assert int(info["streams"][0]["nb_read_frames"]) == 30
    assert float(info["format"]["duration"]) == pytest.approx(30 / 24, abs=0.03)


@pytest.mark.parametrize("strategy, extra", [("tiles", {"parts": 4}),
                                             ("samples", {"parts": 3, "samples": 24})])
def test_distributed_still(jobtypes_farm, blender_exe, tmp_path, strategy, extra):
    api = jobtypes_farm.api
    root = jobtypes_farm.root / f"upload-still-{strategy}"
    blend = make_still_scene(blender_exe, root / "scene" / "still.blend", 16)
    common = {"frame": 1, "strategy": strategy, **extra}
    shared = api.submit("blender-render-still", f"still {strategy} shared", {
        **common, "filepath": str(blend), "render_output": str(root / "shared" / "poster-####")})
    files = upload(api, {"lookdev/still.blend": blend})
    up = api.submit("blender-render-still", f"still {strategy} upload", {
        **common, "filepath": "lookdev/still.blend", "render_output": "stills/poster-####"}, files=files)
    api.wait_all([shared["id"], up["id"]], timeout=240)
    got = download(api, up["id"], tmp_path / "up")
    assert list(got) == ["stills/poster-0001.png"], "the parts stay at the Manager"
    assert framemd5(got["stills/poster-0001.png"]) == framemd5(root / "shared" / "poster-0001.png")


def test_bake_then_dependent_render(jobtypes_farm, blender_exe, tmp_path):
    api = jobtypes_farm.api
    root = jobtypes_farm.root / "upload-bake"
    blend = make_bake_scene(blender_exe, root / "shared" / "scene.blend")
    pristine = root / "pack" / "scene.blend"
    pristine.parent.mkdir(parents=True)
    shutil.copy(blend, pristine)  # the shared bake changes its .blend in place
    frames = f"1-{BAKE_FRAMES}"
    shared_bake = api.submit("blender-bake", "bake shared", {"filepath": str(blend), "frames": frames, "parts": 2})
    shared_render = api.submit("blender-render", "render shared", {
        "filepath": str(blend), "frames": frames, "chunk_size": 6, "format": "PNG",
        "render_output": str(root / "shared" / "render" / "######")}, depends_on=[shared_bake["id"]])
    files = upload(api, {"scene.blend": pristine})
    up_bake = api.submit("blender-bake", "bake upload", {"filepath": "scene.blend", "frames": frames, "parts": 2},
                         files=files)
    up_render = api.submit("blender-render", "render upload", {
        "filepath": "scene.blend", "frames": frames, "chunk_size": 6, "format": "PNG",
        "render_output": "render/######"}, files=files, depends_on=[up_bake["id"]])
    assert up_render["blocked"] is True
    api.wait_all([shared_bake["id"], shared_render["id"], up_bake["id"], up_render["id"]], timeout=300)

    # The bake's outputs are the finished bake: the saved .blend and a cache file for every frame,
    # nothing of the staging folder, no Blender backup.
    baked = download(api, up_bake["id"], tmp_path / "bake")
    assert "scene.blend" in baked and not [r for r in baked if ".flamenco-bake" in r or r.endswith(".blend1")]
    shared_cache = sorted(p.name for p in (root / "shared" / "blendcache_scene").iterdir())
    assert len(shared_cache) >= 3 * BAKE_FRAMES
    assert sorted(r.split("/", 1)[1] for r in baked if r.startswith("blendcache_scene/")) == shared_cache

    # The render job found the bake at the Manager: every frame identical to the shared one.
    rendered = download(api, up_render["id"], tmp_path / "render")
    assert sorted(rendered) == [f"render/{n:06d}.png" for n in range(1, BAKE_FRAMES + 1)]
    for rel, path in rendered.items():
        assert framemd5(path) == framemd5(root / "shared" / rel), rel
