"""Upload mode against the real Manager: job files down by hash, outputs up with their hash.

The Manager here is not linked to a Server, so it serves the job files it has in its own
cache (as a linked Manager does once it fetched them) and keeps uploaded outputs locally.
"""

import hashlib
import json

from tests.integration.worker.worker_it_helpers import task_doc, wait_for


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


def upload_task(task_id, job="job1"):
    return task_doc(task_id, [
        {"name": "copy_file", "settings": {"src": "{job_files}/shots/input.txt",
                                           "dest": "{job_output}/renders/copy.txt"}},
        {"name": "create_python_file", "settings": {"filepath": "{job_output}/made-by-worker.py",
                                                    "contents": "import bpy\nbpy.context.scene.frame_end = 5\n"}},
    ], job=job, task_type="file-management", job_files_mode="upload")


def test_files_down_outputs_up(manager, start_worker, tmp_path):
    seed_job_files(manager, "job1", {"shots/input.txt": b"frame data\n", "scene.blend": b"BLENDER-v304"})
    wt = start_worker()
    manager.add_tasks(upload_task("t1"))
    wait_for(lambda: manager.task("t1")["status"] in ("completed", "failed"), what="task done")
    assert manager.task("t1")["status"] == "completed", manager.task_log("job1", "t1")
    outputs = manager.core.config.data_dir / "outputs" / "job1"
    wait_for(lambda: (outputs / "renders" / "copy.txt").exists(), what="output uploaded")
    assert (outputs / "renders" / "copy.txt").read_bytes() == b"frame data\n"
    assert (outputs / "made-by-worker.py").read_text() == "import bpy\nbpy.context.scene.frame_end = 5\n"
    job_dir = tmp_path / "w1" / "jobs" / "job1"
    assert (job_dir / "files" / "scene.blend").read_bytes() == b"BLENDER-v304"
    log = manager.task_log("job1", "t1")
    assert "2 file(s)" in log and "2 downloaded" in log
    # A second task of the job finds every file in the worker's cache.
    manager.add_tasks(upload_task("t2"))
    wait_for(lambda: manager.task("t2")["status"] == "completed", what="second task")
    assert "0 downloaded, 2 from the cache" in manager.task_log("job1", "t2")
    wt.stop()


def test_corrupt_download_fails_the_task(manager, start_worker):
    manifest = seed_job_files(manager, "job2", {"shots/input.txt": b"good bytes"})
    sha = manifest["shots/input.txt"]["sha256"]
    (manager.core.config.file_cache_dir / sha[:2] / sha).write_bytes(b"evil bytes")
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
    outputs = manager.core.config.data_dir / "outputs" / "job3"
    wait_for(lambda: (outputs / "short-overrides.py").exists(), what="the other output uploaded")
    wt.stop()
