"""Upload mode on the worker without a Manager: what a task made and removed under its declared
outputs, the copy into the cache, and keeping the cache and job trees under their limit."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from worker.job_files import JobFiles, JobFilesError, TaskIO, under


@pytest.fixture
def jf(tmp_path):
    return JobFiles(None, tmp_path / "cache", tmp_path / "jobs")


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_prefixes_are_whole_path_components():
    assert under("frames/0001.png", ["frames"]) and under("frames", ["frames"]) and under("x/y", [""])
    assert not under("frames2/0001.png", ["frames"]) and not under("scene.blend1", ["scene.blend"])


def test_the_task_io_document_is_checked():
    assert TaskIO.from_doc(None) == TaskIO()
    io = TaskIO.from_doc({"inputs": ["a"], "outputs": ["", "b/c"], "input_jobs": ["j1"], "scratch": True})
    assert (io.inputs, io.outputs, io.input_jobs) == (["a"], ["", "b/c"], ["j1"])
    for bad in ({"inputs": "a"}, {"outputs": ["../x"]}, {"inputs": ["/abs"]}):
        with pytest.raises(JobFilesError):
            TaskIO.from_doc(bad)


def test_what_a_task_made_and_removed_under_its_outputs(jf):
    tree = jf.dirs("job1").files
    write(tree / "scene.blend", b"job file")
    write(tree / "interm" / "0001.png", b"frame 1")
    write(tree / "interm" / "0002.png", b"frame 2")
    before = jf.snapshot(tree)
    # The task moves the folder, saves the .blend (Blender keeps a backup) and writes elsewhere.
    os.rename(tree / "interm", tree / "final")
    write(tree / "scene.blend", b"saved blend")
    write(tree / "scene.blend1", b"job file")
    write(tree / "notes" / "x.txt", b"not declared")
    got = jf.produced(tree, before, TaskIO(outputs=["interm", "final", "scene.blend"]))
    assert got.files == {"final/0001.png": (sha(b"frame 1"), 7), "final/0002.png": (sha(b"frame 2"), 7),
                         "scene.blend": (sha(b"saved blend"), 11)}
    assert got.removed == ["interm"]  # the folder, so the Manager forgets all of it
    for rel, (digest, _) in got.files.items():
        assert jf.cache_path(digest).read_bytes() == (tree / rel).read_bytes()
    # The copy in the cache does not change when the task's file is rewritten in place later.
    with open(tree / "final" / "0001.png", "r+b") as fh:
        fh.write(b"XXXXX")
    assert jf.cache_path(sha(b"frame 1")).read_bytes() == b"frame 1"
    # Without declared outputs every new or changed file counts (but Blender's backups) and nothing is removed.
    got = jf.produced(tree, before, TaskIO())
    assert set(got.files) == {"final/0001.png", "final/0002.png", "scene.blend", "notes/x.txt"}
    assert got.removed == []
    # One removed file of a folder that stays is reported as that file.
    before = jf.snapshot(tree)
    (tree / "final" / "0002.png").unlink()
    assert jf.produced(tree, before, TaskIO(outputs=["final"])).removed == ["final/0002.png"]


def test_the_cache_and_job_trees_are_kept_under_their_limit(jf):
    def blob(data: bytes, age: float):
        path = write(jf.cache_path(sha(data)), data)
        os.utime(path, (time.time() - age, time.time() - age))
        return path

    def tree_of(job: str, age: float, files: dict[str, bytes]):
        tree = jf.dirs(job).files
        for rel, data in files.items():
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(blob(data, age), target)
        write(tree / "own-output.bin", job.encode() * 500)
        os.utime(tree.parent, (time.time() - age, time.time() - age))
        return tree

    kb = lambda c: bytes([c]) * 1000  # noqa: E731
    tree_of("old", 300, {"a": kb(1), "b": kb(2)})
    tree_of("older", 400, {"c": kb(3)})
    current = tree_of("current", 0, {"d": kb(4)})
    blob(kb(5), 500)  # linked from no tree, the oldest
    blob(kb(6), 50)   # linked from no tree, but a queued upload needs it
    used = jf.usage()
    assert used == 6 * 1000 + (len(b"old") + len(b"older") + len(b"current")) * 500
    assert jf.evict(0, {"current"}, set()) == (0, 0), "no limit"
    assert jf.evict(used, {"current"}, set()) == (0, 0), "at the limit"
    removed, freed = jf.evict(7000, {"current"}, {sha(kb(6))})
    # Trees of other jobs go first, least recently used first; then cached files no tree uses.
    assert not (jf.jobs_dir / "older").exists() and not (jf.jobs_dir / "old").exists()
    assert current.is_dir() and (current / "d").read_bytes() == kb(4)
    assert jf.cache_path(sha(kb(6))).exists(), "pinned by the upload queue"
    assert jf.cache_path(sha(kb(4))).exists(), "used by the current job's tree"
    assert jf.usage() <= 7000 * 0.9 and freed == used - jf.usage() and removed >= 3
    # What is left is needed.
    assert jf.evict(100, {"current"}, {sha(kb(6))})[0] == 0
