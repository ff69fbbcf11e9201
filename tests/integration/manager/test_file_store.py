"""Upload mode at the Manager with the real Server: a render job's frames go up once, their move to
the final folder costs the Server no bytes, scratch outputs never leave the site, and the file store
is evicted under its limit without touching what unfinished tasks or the upstream queue still need."""

from __future__ import annotations

import hashlib

import pytest

from tests.integration.manager.manager_helpers import Worker, task_doc
from tests.integration.manager.test_upstream import announced, complete, linked, server  # noqa: F401 - fixtures

RENDER_TYPES = ("blender-render", "file-management", "video-encoding", "exr-merge")


def entry(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def send(w: Worker, data: bytes) -> None:
    e = entry(data)
    r = w.session.put(w.url + f"/files/{e['sha256']}", data=data, timeout=10,
                      headers={"X-Flamenco-Upload-Offset": "0", "X-Flamenco-Upload-Size": str(len(data))})
    assert r.status_code == 201, r.text


def register(w: Worker, job: str, task: str | None, files: dict[str, bytes], removed=()) -> dict:
    r = w.post(f"/jobs/{job}/outputs", json={"task": task, "removed": list(removed),
                                              "files": {rel: entry(d) for rel, d in files.items()}})
    assert r.status_code == 200, r.text
    return r.json()


def server_outputs(server, jid) -> dict:
    return {o["relpath"]: o["sha256"] for o in server.call("GET", f"/api/jobs/{jid}/outputs").json()["outputs"]}


def test_frames_go_up_once_and_their_move_costs_no_bytes(linked, server):  # noqa: F811
    m = linked()
    up = m.core.upstream
    w = announced(m, task_types=RENDER_TYPES)
    blend = b"BLENDER-v304 scene"
    sha = server.put_file(blend)
    job = server.submit("blender-render", {"filepath": "scene.blend", "frames": "1-2", "chunk_size": 1,
                                           "render_output": "frames/######", "format": "PNG", "create_video": True,
                                           "fps": 24}, files={"scene.blend": {"sha256": sha, "size": len(blend)}})
    jid = job["id"]
    up.fetch_tick()
    tasks = {t.name: t for t in m.core.db.m.Task.select()}
    interm = tasks["blender-render-1"].io["outputs"][0]
    assert interm.startswith("frames__intermediate-")
    assert tasks["create-video"].io == {"inputs": [interm], "outputs": [f"{interm}/scene-1,2.mkv"]}
    assert tasks["move-to-final"].io == {"inputs": [interm], "outputs": [interm, "frames"]}

    frames = {f"{interm}/00000{i}.png": f"\x89PNG frame {i}".encode() * 100 for i in (1, 2)}
    for i, (rel, data) in enumerate(frames.items(), 1):
        task = w.fetch().json()
        assert task["name"] == f"blender-render-{i}" and task["io"]["outputs"] == [interm]
        assert w.post("/files/check", json={"files": [entry(data)]}).json() == {
            "missing": [entry(data)["sha256"]], "partial": {}}
        send(w, data)
        assert register(w, jid, task["_id"], {rel: data})["to_server"] == 1
        complete(w, task["_id"])
    up.push_tick()
    assert server_outputs(server, jid) == {rel: entry(d)["sha256"] for rel, d in frames.items()}
    sent = m.core.files.store.stats.to_server
    assert sent == sum(len(d) for d in frames.values())

    # create-video reads the frames back (the Manager serves them) and makes a video in the folder.
    video_task = w.fetch().json()
    assert video_task["name"] == "create-video"
    got = w.get(f"/jobs/{jid}/outputs", params={"prefix": interm}).json()["files"]
    assert got == {rel: entry(d) for rel, d in frames.items()}
    assert w.get(f"/files/{got[f'{interm}/000001.png']['sha256']}").content == frames[f"{interm}/000001.png"]
    video = b"matroska video" * 50
    send(w, video)
    register(w, jid, video_task["_id"], {f"{interm}/scene.mkv": video})
    complete(w, video_task["_id"])

    # move-to-final: everything moves; the Server gets only the video's bytes, the frames by checksum.
    move = w.fetch().json()
    assert move["name"] == "move-to-final"
    final = {rel.replace(interm, "frames"): d for rel, d in {**frames, f"{interm}/scene.mkv": video}.items()}
    register(w, jid, move["_id"], final, removed=[interm])
    complete(w, move["_id"])
    up.push_tick()
    assert server_outputs(server, jid) == {rel: entry(d)["sha256"] for rel, d in final.items()}
    assert m.core.files.store.stats.to_server - sent == len(video)
    assert server.job(jid)["status"] == "completed"
    assert server.call("GET", f"/api/jobs/{jid}/outputs/frames/000002.png").content == frames[f"{interm}/000002.png"]


def test_scratch_outputs_stay_at_the_manager(linked, server):  # noqa: F811
    m = linked()
    up = m.core.upstream
    w = announced(m, task_types=RENDER_TYPES)
    blend = b"BLENDER-v304 still"
    sha = server.put_file(blend)
    job = server.submit("blender-render-still", {"filepath": "scene.blend", "frame": 3, "parts": 2,
                                                 "render_output": "still-####"},
                        files={"scene.blend": {"sha256": sha, "size": len(blend)}})
    jid = job["id"]
    up.fetch_tick()
    parts = {}
    for _ in range(2):
        task = w.fetch().json()
        assert task["io"]["scratch"] is True
        (rel,) = task["io"]["outputs"]
        parts[rel] = f"EXR part {rel}".encode() * 40
        send(w, parts[rel])
        assert register(w, jid, task["_id"], {rel: parts[rel]})["to_server"] == 0
        complete(w, task["_id"])
    merge = w.fetch().json()
    assert merge["name"] == "merge-tiles"
    assert w.get(f"/jobs/{jid}/outputs", params={"prefix": merge["io"]["inputs"][0]}).json()["files"] == \
        {rel: entry(d) for rel, d in parts.items()}
    image = b"\x89PNG merged" * 30
    send(w, image)
    register(w, jid, merge["_id"], {"still-0003.png": image}, removed=merge["io"]["inputs"])
    complete(w, merge["_id"])
    up.push_tick()
    assert server_outputs(server, jid) == {"still-0003.png": entry(image)["sha256"]}
    assert m.core.files.store.stats.to_server == len(image)
    assert m.core.files.outputs(jid, None)["files"] == {"still-0003.png": entry(image)}


def output_items(m) -> int:
    """Outputs waiting in the upstream queue for the Server."""
    U = m.core.db.m.UpstreamItem
    return U.select().where(U.kind == "outputs").count()


def test_the_store_is_evicted_under_its_limit_keeping_what_is_still_needed(linked, server):  # noqa: F811
    m = linked(files={"store_max_bytes": 10_000})
    store = m.core.files.store
    w = Worker(m.url, task_types=["sleep"]).register().sign_on()
    blobs = {name: (name.encode() * 2000)[:2000] for name in ("old-a", "old-b", "live", "queued", "loose")}
    m.add_tasks(task_doc("t-old", job="old", job_files_mode="upload"),
                task_doc("t-live", job="live", job_files_mode="upload", priority=1))
    assert w.fetch().json()["_id"] == "t-old"
    # 'old' job: its task has finished, so its outputs may go (a Manager-local job's never go up).
    for name in ("old-a", "old-b"):
        send(w, blobs[name])
    register(w, "old", "t-old", {"a": blobs["old-a"], "b": blobs["old-b"]})
    complete(w, "t-old")
    # An output still waiting for the Server (which is down) stays too, whatever its job.
    job = server.submit_sleep("1")
    m.core.upstream.fetch_tick()
    server.stop()
    task = w.fetch().json()
    assert task["job"] == job["id"]
    send(w, blobs["queued"])
    register(w, job["id"], task["_id"], {"c": blobs["queued"]})
    complete(w, task["_id"])
    assert output_items(m) == 1
    # 'live' job: its task still runs, so its outputs stay.
    assert w.fetch().json()["_id"] == "t-live"
    send(w, blobs["live"])
    register(w, "live", "t-live", {"x": blobs["live"]})
    # A file no job refers to.
    send(w, blobs["loose"])

    assert store.report()["store_bytes"] == 10_000
    assert store.evict() == (0, 0), "at the limit nothing goes"
    store.max_bytes = 6000
    assert store.evict() == (3, 6000)  # to 90 % of the limit: the three that nothing needs
    remaining = {name for name, d in blobs.items() if store.has(entry(d)["sha256"])}
    assert remaining == {"live", "queued"}
    report = store.report()
    assert report["store_bytes"] == 4000 and report["pinned_bytes"] == 4000 and report["evicted_files"] == 3
    # What is left is needed: with a limit below it nothing more goes, and the task still gets its file.
    store.max_bytes = 100
    assert store.evict() == (0, 0)
    assert w.get("/jobs/live/outputs/x").content == blobs["live"]
    # An evicted output the Server never got cannot be served: an error, not a wrong file.
    assert w.get("/jobs/old/outputs/a").status_code == 503
    # Once the Server has it, the queued one may go as well: it is fetched back when asked for.
    server.start()
    m.core.upstream.push_tick()
    assert output_items(m) == 0
    assert store.evict() == (1, 2000)
    assert w.get(f"/jobs/{job['id']}/outputs/c").content == blobs["queued"]
