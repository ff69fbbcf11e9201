"""Jobs as an artist's machine submits them: upload mode (the files go to the Server,
content-addressed; the outputs come back from it) or shared storage (absolute paths on a disk
every host mounts: in the tests, a directory all namespaces see).

    job = submit_upload(api, "blender-render", "name", settings, {"scene.blend": path})
    outputs = download_outputs(api, job["id"], dest)      # {relpath: local path}
    assert_same_media(media_files(shared_dir.rglob("*")), media_files(outputs.values()))
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.e2e.jobtypes.jobtypes_support import ffprobe, framemd5
from tests.farm_api import Api


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def upload_files(api: Api, files: dict[str, Path]) -> dict[str, dict]:
    """Upload what the Server does not have yet; the job's `files` manifest."""
    manifest = {rel: {"sha256": sha256_of(p), "size": p.stat().st_size} for rel, p in files.items()}
    wanted = {m["sha256"]: m["size"] for m in manifest.values()}
    r = api.s.post(api.base + "/api/files/check",
                   json={"files": [{"sha256": s, "size": n} for s, n in wanted.items()]}, timeout=30)
    assert r.status_code == 200, r.text
    missing = set(r.json()["missing"])
    for rel, path in files.items():
        sha = manifest[rel]["sha256"]
        if sha in missing:
            with open(path, "rb") as f:
                r = api.s.put(f"{api.base}/api/files/{sha}", data=f, timeout=600,
                              headers={"Content-Type": "application/octet-stream"})
            assert r.status_code in (200, 201), r.text
            missing.discard(sha)
    return manifest


class Refused(Exception):
    """The Server refused a job (4xx): {"code", "message"}."""


def submit_upload(api: Api, job_type: str, name: str, settings: dict, files: dict[str, Path], **extra) -> dict:
    """Upload the files, then submit the job naming them (upload mode)."""
    manifest = upload_files(api, files)
    r = api.post_raw("/api/jobs", {"name": name, "type": job_type, "settings": settings, "files": manifest, **extra})
    if 400 <= r.status_code < 500:
        raise Refused(f"{job_type} in upload mode refused ({r.status_code}): {r.text}")
    assert r.status_code == 201, r.text
    return r.json()


def download_outputs(api: Api, job_id: str, dest: Path) -> dict[str, Path]:
    """Every output of the job, from the Server, into dest/<relpath>."""
    got = {}
    for out in api.get(f"/api/jobs/{job_id}/outputs")["outputs"]:
        path = dest / out["relpath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        with api.s.get(api.base + out["url"], stream=True, timeout=600) as r:
            r.raise_for_status()
            with open(path, "wb") as f:
                for block in r.iter_content(1 << 20):
                    f.write(block)
        assert sha256_of(path) == out["sha256"], out
        got[out["relpath"]] = path
    return got


# --- scenes and media ------------------------------------------------------------------

SCENES = Path(__file__).resolve().parents[2] / "scripts" / "scenes"


def make_blend(blender: str, script: str, path: Path, *args) -> Path:
    """A .blend made by one of scripts/scenes/*.py (see each for its arguments)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([blender, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "--python",
                    str(SCENES / script), "--", str(path), *map(str, args)], check=True, capture_output=True,
                   timeout=180)
    assert path.exists(), path
    return path


MEDIA = (".png", ".jpg", ".exr", ".mkv", ".mp4", ".mov", ".webm")


def media_files(paths) -> dict[str, Path]:
    """Images and videos among `paths`, by file name."""
    found = {}
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in MEDIA:
            assert path.name not in found, f"two outputs named {path.name}: {found[path.name]} and {path}"
            found[path.name] = path
    return found


def assert_same_media(shared: dict[str, Path], uploaded: dict[str, Path]) -> None:
    """The same files by name; images with identical pixels; videos with identical pixels,
    frame count and duration (ffmpeg's framemd5, ffprobe)."""
    assert sorted(uploaded) == sorted(shared), (sorted(uploaded), sorted(shared))
    assert shared, "no images or videos to compare"
    for name, path in shared.items():
        other = uploaded[name]
        assert framemd5(other) == framemd5(path), f"{name}: pixels differ"
        if path.suffix.lower() in (".mkv", ".mp4", ".mov", ".webm"):
            a, b = ffprobe(path), ffprobe(other)
            va = [s for s in a["streams"] if s["codec_type"] == "video"]
            vb = [s for s in b["streams"] if s["codec_type"] == "video"]
            assert [s["nb_read_frames"] for s in vb] == [s["nb_read_frames"] for s in va], name
            assert float(b["format"]["duration"]) == pytest.approx(float(a["format"]["duration"]), abs=1e-3), name
