"""Resource exhaustion (issue 12, 11): upload limits, project quotas, removing unused uploads, a full disk,
and task logs that unpack to far more than they weigh."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import subprocess
import threading
import zlib

import psutil
import pytest
import requests

from tests.security.security_helpers import Client, build_farm, sha
from tests.conftest import missing


def test_uploads_are_limited_by_default():
    from backend.server.config import ServerConfig
    cfg = ServerConfig()
    assert 0 < cfg.max_upload_bytes <= 64 * 1024 ** 3 and cfg.max_pending_upload_bytes > 0 and cfg.min_free_bytes > 0


def test_one_upload_over_the_limit_is_413_and_leaves_nothing(server_factory):
    service, app, db = server_factory(max_upload_bytes=1000)
    farm = build_farm(service, app, db)
    ann = farm.client("ann")
    data = os.urandom(1001)
    assert ann.put(f"/api/files/{sha(data)}", data=data).status_code == 413
    assert ann.put(f"/api/files/{sha(data)}", data=iter([data[:500], data[500:]])).status_code == 413, "chunked"
    assert not list(farm.ctx.store.tmp.iterdir()) and not farm.ctx.store.has(sha(data))


def test_a_project_cannot_store_more_than_its_quota(server_factory):
    service, app, db = server_factory(project_quota_bytes=200)
    farm = build_farm(service, app, db)  # film stores a 36-byte scene and a 27-byte frame
    ann = farm.client("ann")
    usage = ann.get(f"/api/projects/{farm.ids['film']}/usage").json()
    assert usage["quota_bytes"] == 200 and 0 < usage["used_bytes"] < 100
    big = os.urandom(150)
    assert ann.put(f"/api/files/{sha(big)}", data=big).status_code == 201, "uploads are not yet the project's"
    r = ann.post("/api/jobs", json={
        "name": "too big", "type": "blender-render", "project": "film",
        "files": {"scene.blend": {"sha256": sha(big), "size": len(big)}},
        "settings": {"filepath": "scene.blend", "frames": "1", "render_output": "frames/######"}})
    assert r.status_code == 507 and r.json()["code"] == "quota_exceeded", r.text
    frame = os.urandom(150)
    r = farm.manager("m1").put(farm.mpath("m1", f"jobs/{farm.ids['film_job']}/outputs/frames/big.png"),
                               params={"task": farm.ids["film_task"]}, data=frame,
                               headers={"X-Flamenco-SHA256": sha(frame)})
    assert r.status_code == 507, r.text
    assert farm.client("boss").request("PATCH", f"/api/projects/{farm.ids['film']}",
                                       json={"quota_bytes": 0}).status_code == 200
    r = farm.manager("m1").put(farm.mpath("m1", f"jobs/{farm.ids['film_job']}/outputs/frames/big.png"),
                               params={"task": farm.ids["film_task"]}, data=frame,
                               headers={"X-Flamenco-SHA256": sha(frame)})
    assert r.status_code == 204, "0: no limit"


def test_uploads_no_job_uses_are_limited_per_user(server_factory):
    service, app, db = server_factory(max_pending_upload_bytes=300)
    farm = build_farm(service, app, db)
    ann = farm.client("ann")
    a, b = os.urandom(200), os.urandom(200)
    assert ann.put(f"/api/files/{sha(a)}", data=a).status_code == 201
    r = ann.put(f"/api/files/{sha(b)}", data=b)
    assert r.status_code == 507 and r.json()["code"] == "quota_exceeded"
    assert farm.client("bob").put(f"/api/files/{sha(b)}", data=b).status_code == 201, "per user"
    r = ann.post("/api/jobs", json={
        "name": "uses a", "type": "blender-render", "project": "film",
        "files": {"scene.blend": {"sha256": sha(a), "size": len(a)}},
        "settings": {"filepath": "scene.blend", "frames": "1", "render_output": "frames/######"}})
    assert r.status_code == 201
    assert ann.put(f"/api/files/{sha(b)}", data=b).status_code == 201, "a's bytes are the project's now"


def test_housekeeping_removes_uploads_no_job_uses(farm):
    from backend.server.housekeeping import Housekeeping
    ann, store = farm.client("ann"), farm.ctx.store
    unused = [os.urandom(5000) for _ in range(20)]
    for data in unused:
        assert ann.put(f"/api/files/{sha(data)}", data=data).status_code == 201
    keeper = Housekeeping(farm.ctx)
    now = dt.datetime.utcnow()
    keeper.tick(now)
    assert all(store.has(sha(d)) for d in unused), "within the grace period"
    later = now + dt.timedelta(hours=farm.ctx.config.blob_grace_hours, minutes=1)
    keeper.tick(later)
    assert not any(store.has(sha(d)) for d in unused), "collected"
    assert ann.post("/api/files/check", json={"files": [{"sha256": sha(d), "size": 5000} for d in unused]}
                    ).json()["missing"] == [sha(d) for d in unused]
    for kept in (farm.ids["film_blob"], farm.ids["film_output_blob"]):
        assert store.has(kept) and ann.get(f"/api/files/{kept}").status_code == 200, "jobs use them"
    assert ann.put(f"/api/files/{sha(unused[0])}", data=unused[0]).status_code == 201, "uploaded again"
    assert ann.get(f"/api/files/{sha(unused[0])}").content == unused[0]


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MiB tmpfs (needs root: CI runs as root; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        missing(f"a tmpfs mount ({r.stderr.decode().strip() or 'mount failed'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill_disk(path, leave: int = 0) -> None:
    """Fill the file system of `path` until `leave` bytes are free (or none)."""
    with open(path / "filler", "wb") as f:
        try:
            while os.statvfs(path).f_bavail * os.statvfs(path).f_frsize > leave + 65536:
                f.write(b"\0" * 65536)
            f.flush()
            os.fsync(f.fileno())
        except OSError:
            pass


def test_a_full_disk_is_503_and_reads_keep_working(small_disk, server_factory):
    from backend.server.app import make_app
    from backend.server.config import ServerConfig
    from backend.db import open_database
    from shared.serving import ServiceThread
    db = open_database(f"sqlite:///{small_disk}/server.sqlite")
    app = make_app(ServerConfig.from_dict({"min_free_bytes": 0}, data_dir=small_disk / "data"), db)
    with ServiceThread(app, threads=8) as service:
        farm = build_farm(service, app, db)
        ann = farm.client("ann")
        fill_disk(small_disk)
        data = os.urandom(256 * 1024)
        r = ann.put(f"/api/files/{sha(data)}", data=data)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0 and r.json()["code"] == "disk_full", r.text
        for _ in range(20):  # fill what SQLite had left too
            r = ann.post("/api/jobs", json={"name": "x" * 200, "type": "sleep", "project": "film",
                                            "metadata": {"pad": "y" * 60000},
                                            "settings": {"frames": "1-500", "time_in_seconds": 0}})
            assert r.status_code in (201, 503), r.text
            if r.status_code == 503:
                assert r.headers["Retry-After"] and r.json()["code"] == "disk_full"
                break
        else:
            pytest.fail("the database never ran out of room")
        assert ann.get("/api/jobs").status_code == 200
        assert ann.get(f"/api/jobs/{farm.ids['film_job']}").status_code == 200
        assert ann.get(f"/api/files/{farm.ids['film_blob']}").status_code == 200
        assert ann.get(f"/api/tasks/{farm.ids['film_task']}/log").status_code == 200
        assert farm.manager("m1").get(farm.mpath("m1", f"jobs/{farm.ids['film_job']}/files")).status_code == 200
        os.unlink(small_disk / "filler")
        assert ann.put(f"/api/files/{sha(data)}", data=data).status_code == 201, "works again once there is room"
    db.close()


def test_uploads_stop_before_the_disk_is_full(server_factory):
    service, app, db = server_factory()
    farm = build_farm(service, app, db)
    farm.ctx.config.min_free_bytes = farm.ctx.store.free_bytes() + 1
    data = b"any upload"
    r = farm.client("ann").put(f"/api/files/{sha(data)}", data=data)
    assert r.status_code == 503 and r.headers["Retry-After"]


def gzip_bomb(unpacked: int, line: bytes = b"Fra:1 Mem:12.3M | Rendering 1 / 64 samples\n") -> bytes:
    """`unpacked` bytes of log lines, gzip'd, built without holding them."""
    head, tail = b"FIRST LINE OF THE LOG\n", b"LAST LINE OF THE LOG\n"
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = line * (1024 * 1024 // len(line))
    out = [comp.compress(head)]
    left = unpacked - len(head) - len(tail)
    while left > 0:
        piece = block[:left]
        out.append(comp.compress(piece))
        left -= len(piece)
    out.append(comp.compress(tail))
    out.append(comp.flush())
    return b"".join(out)


def test_a_task_log_is_capped_and_never_held_whole(server_factory):
    cap = 4 * 1024 * 1024
    service, app, db = server_factory(task_log_max_bytes=cap)
    farm = build_farm(service, app, db)
    unpacked = 512 * 1024 * 1024
    bomb = gzip_bomb(unpacked)
    assert len(bomb) < 2 * 1024 * 1024
    me = psutil.Process()
    base = me.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], me.memory_info().rss)
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        r = requests.post(farm.url + farm.mpath("m1", f"tasks/{farm.ids['film_task']}/log"), data=bomb,
                          headers={"Content-Type": "application/gzip",
                                   "Authorization": f"Bearer {farm.managers['m1'][1]}"}, timeout=300)
        assert r.status_code == 204, r.text
        got = b""
        with requests.get(farm.url + f"/api/tasks/{farm.ids['film_task']}/log", stream=True, timeout=120,
                          headers={"Authorization": f"Bearer {farm.tokens['ann']}"}) as resp:
            assert resp.status_code == 200
            for block in resp.iter_content(1024 * 1024):
                got += block
    finally:
        stop.set()
        sampler.join()
    assert got.startswith(b"FIRST LINE OF THE LOG\n") and got.endswith(b"LAST LINE OF THE LOG\n")
    assert cap <= len(got) < cap + 1024
    assert f"{unpacked - cap} bytes of this log were cut out".encode() in got
    grown = (peak[0] - base) / 2 ** 20
    assert grown < 96, f"the Server's memory grew by {grown:.0f} MiB for a log of {unpacked / 2 ** 20:.0f} MiB"
    stored = farm.ctx.store.log_path(farm.ids["film_job"], farm.ids["film_task"])
    with gzip.open(stored) as f:
        assert len(f.read()) == len(got)


def test_a_log_that_is_not_gzip_or_too_big_is_refused(farm):
    m1 = farm.manager("m1")
    path = farm.mpath("m1", f"tasks/{farm.ids['film_task']}/log")
    assert m1.post(path, data=b"plain text").status_code == 400
    assert m1.post(path, data=b"\x1f\x8b" + b"garbage" * 10).status_code == 400
    assert Client(farm.url, farm.tokens["ann"]).get(f"/api/tasks/{farm.ids['film_task']}/log").text == "render log\n"
