"""Upload mode against the real Manager: job files down by hash, outputs up by hash (only what the
Manager lacks, resumably), and the outputs a later task reads down again.

The Manager here is not linked to a Server, so it serves the job files it has in its own
cache (as a linked Manager does once it fetched them) and keeps outputs for the job's tasks.
"""

import base64
import hashlib
import json
import socket
import sys
from urllib.parse import urlsplit

from tests.integration.worker.worker_it_helpers import task_doc, wait_for

from worker.manager_client import ManagerClient


def seed_job_files(manager, job, files: dict[str, bytes]) -> dict:
    cache = manager.core.config.file_cache_dir
    manifest = {}
    for relpath, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        (cache / sha[:2]).mkdir(parents=True, exist_ok=True)
        (cache / sha[:2] / sha).write_bytes(data)
        manifest[relpath] = {"sha256": sha, "size": len(data)}
    (cache / "manifests").mkdir(parents=True, exist_ok=True)
    (cache / "manifests" / f"{job}.json").write_text(json.dumps({"files": manifest}))
    return manifest


def entry(data: bytes) -> dict:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


OVERRIDES = "import bpy\nbpy.context.scene.frame_end = 5\n"
"""What a task may write as a Python file: literal assignments to bpy data paths (shared/overrides.py)."""


def upload_task(task_id, job="job1", **extra):
    return task_doc(task_id, [
        {"name": "copy_file", "settings": {"src": "{job_files}/shots/input.txt",
                                           "dest": "{job_output}/renders/copy.txt"}},
        {"name": "create_python_file", "settings": {"filepath": "{job_output}/made-by-worker.py",
                                                    "contents": OVERRIDES}},
    ], job=job, task_type="file-management", job_files_mode="upload", **extra)


def stats(manager) -> dict:
    return manager.admin("GET", "/api/admin/status").json()["files"]


def outputs(manager, job) -> dict:
    return manager.core.files.outputs(job, None)["files"]


def test_files_down_outputs_up(manager, start_worker, tmp_path):
    seed_job_files(manager, "job1", {"shots/input.txt": b"frame data\n", "scene.blend": b"BLENDER-v304"})
    wt = start_worker()
    manager.add_tasks(upload_task("t1"))
    wait_for(lambda: manager.task("t1")["status"] in ("completed", "failed"), what="task done")
    assert manager.task("t1")["status"] == "completed", manager.task_log("job1", "t1")
    # No outputs declared: everything the task added is an output.
    assert outputs(manager, "job1") == {"made-by-worker.py": entry(OVERRIDES.encode()),
                                        "renders/copy.txt": entry(b"frame data\n")}
    store = manager.core.files.store
    assert store.path(entry(b"frame data\n")["sha256"]).read_bytes() == b"frame data\n"
    tree = tmp_path / "w1" / "jobs" / "job1" / "files"
    assert (tree / "scene.blend").read_bytes() == b"BLENDER-v304"
    assert (tree / "renders" / "copy.txt").read_bytes() == b"frame data\n"
    log = manager.task_log("job1", "t1")
    assert "2 file(s)" in log and "2 downloaded" in log
    # The copy's bytes were already at the Manager (it is a job file): only the new file was sent.
    assert stats(manager)["bytes_from_workers"] == len(OVERRIDES.encode())
    # A second task of the job finds every file in the worker's cache, and sends nothing new.
    manager.add_tasks(upload_task("t2"))
    wait_for(lambda: manager.task("t2")["status"] == "completed", what="second task")
    assert "0 downloaded, 2 from the cache" in manager.task_log("job1", "t2")
    assert stats(manager)["bytes_from_workers"] == len(OVERRIDES.encode())
    wt.stop()


def test_a_later_task_on_another_worker_reads_what_the_first_made(manager, start_worker, tmp_path):
    seed_job_files(manager, "job3", {"scene.blend": b"BLENDER"})
    frame = bytes(range(256)) * 400
    script = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); "
              "p.write_bytes(bytes(range(256)) * 400)")
    make = task_doc("make", [
        {"name": "exec", "settings": {"cmd": f"{sys.executable} -c '{script}' {{job_output}}/interm/0001.png"}},
        {"name": "create_python_file", "settings": {"filepath": "{job_output}/elsewhere/ignored.py", "contents": ""}},
    ], job="job3", task_type="debug", job_files_mode="upload", io={"outputs": ["interm"]})
    move = task_doc("move", [
        {"name": "move_to_final", "settings": {"src": "{job_output}/interm", "dest": "{job_output}/final"}},
    ], job="job3", task_type="file-management", job_files_mode="upload", parents=["make"],
        io={"inputs": ["interm"], "outputs": ["interm", "final"]})
    w1 = start_worker("w1", task_types=["debug"])
    manager.add_tasks(make, move)
    wait_for(lambda: manager.task("make")["status"] == "completed", what="first task")
    # Only the declared output went up; the other file stayed on the worker.
    assert outputs(manager, "job3") == {"interm/0001.png": entry(frame)}
    w2 = start_worker("w2", task_types=["file-management"])
    wait_for(lambda: manager.task("move")["status"] in ("completed", "failed"), what="second task")
    assert manager.task("move")["status"] == "completed", manager.task_log("job3", "move")
    assert (tmp_path / "w2" / "jobs" / "job3" / "files" / "final" / "0001.png").read_bytes() == frame
    assert "1 output(s) of interm, 1 downloaded" in manager.task_log("job3", "move")
    # The move is known at the Manager: the folder is gone, the frame is in its final place, and
    # its bytes crossed the network once up and once down.
    assert outputs(manager, "job3") == {"final/0001.png": entry(frame)}
    s = stats(manager)
    assert s["bytes_from_workers"] == len(frame) and s["bytes_to_workers"] == len(frame) + 2 * len(b"BLENDER")
    w1.stop()
    w2.stop()


def test_an_interrupted_upload_resumes_where_it_stopped(manager, start_worker, tmp_path):
    data = bytes(range(256)) * 4096  # 1 MiB
    sha = hashlib.sha256(data).hexdigest()
    wt = start_worker()
    wait_for(lambda: wt.worker.client.credentials is not None, what="registration")
    creds = wt.worker.client.credentials
    # Send the first 300,000 bytes and drop the connection, as a network cut would.
    host, port = urlsplit(manager.url).hostname, urlsplit(manager.url).port
    auth = base64.b64encode(f"{creds.worker_id}:{creds.secret}".encode()).decode()
    with socket.create_connection((host, port)) as s:
        s.sendall((f"PUT /files/{sha} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
                   f"X-Flamenco-Upload-Offset: 0\r\nX-Flamenco-Upload-Size: {len(data)}\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:300_000])
    client = ManagerClient(manager.url, tmp_path / "w1" / "credentials.json", ["debug"])
    missing, partial = wait_for(lambda: (lambda r: r if r[1] else None)(client.check_files([(sha, len(data))])),
                                what="the partial upload to be kept")
    assert missing == [sha] and partial == {sha: 300_000}
    before = stats(manager)["bytes_from_workers"]
    blob = tmp_path / "blob"
    blob.write_bytes(data)
    assert client.upload_blob(sha, blob, len(data), partial[sha]) == len(data) - 300_000
    assert stats(manager)["bytes_from_workers"] - before == len(data) - 300_000
    assert manager.core.files.store.path(sha).read_bytes() == data
    assert client.check_files([(sha, len(data))]) == ([], {})
    # A wrong offset is corrected by the Manager's answer; a wrong file is refused and dropped.
    other = bytes(reversed(data))
    other_sha = hashlib.sha256(other).hexdigest()
    (tmp_path / "other").write_bytes(other)
    assert client.upload_blob(other_sha, tmp_path / "other", len(other), 5000) > 0
    assert manager.core.files.store.path(other_sha).read_bytes() == other
    wt.stop()


def test_corrupt_download_fails_the_task(manager, start_worker):
    manifest = seed_job_files(manager, "job2", {"shots/input.txt": b"good bytes"})
    sha = manifest["shots/input.txt"]["sha256"]
    path = manager.core.config.file_cache_dir / sha[:2] / sha
    path.chmod(0o644)
    path.write_bytes(b"evil bytes")
    wt = start_worker()
    manager.add_tasks(upload_task("t1", job="job2"))
    wait_for(lambda: manager.task("t1")["status"] in ("failed", "soft-failed"), what="task failed")
    assert "not using it" in manager.task_log("job2", "t1")
    wt.stop()


def test_an_output_path_too_long_to_upload_fails_the_task(manager, start_worker):
    """The Manager and the Server refuse output paths over 1,024 characters: the worker says so in the
    task (which fails) instead of queueing an upload that would be dropped."""
    seed_job_files(manager, "job3", {"scene.blend": b"BLENDER-v304"})
    deep = "/".join(["d" * 200] * 6) + "/deep-overrides.py"
    wt = start_worker()
    manager.add_tasks(task_doc("t1", [
        {"name": "create_python_file", "settings": {"filepath": "{job_output}/" + deep,
                                                    "contents": "bpy.context.scene.frame_end = 5\n"}},
        {"name": "create_python_file", "settings": {"filepath": "{job_output}/short-overrides.py",
                                                    "contents": "bpy.context.scene.frame_end = 5\n"}},
    ], job="job3", task_type="file-management", job_files_mode="upload"))
    wait_for(lambda: manager.task("t1")["status"] in ("completed", "failed", "soft-failed"), what="task done")
    assert manager.task("t1")["status"] in ("failed", "soft-failed")
    log = manager.task_log("job3", "t1")
    assert "cannot be uploaded" in log and "at most 1024" in log, log
    wait_for(lambda: "short-overrides.py" in outputs(manager, "job3"), what="the other output uploaded")
    assert not any(rel.endswith("deep-overrides.py") for rel in outputs(manager, "job3"))
    wt.stop()
