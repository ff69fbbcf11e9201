import gzip

import pytest

from backend.manager.task_logs import TaskLogs, tail_lines


def test_append_rotate_keep_n(tmp_path):
    logs = TaskLogs(tmp_path, rotations_kept=2)
    for run in range(4):
        logs.rotate("job1", "t1")
        logs.append("job1", "t1", f"run {run}")
    d = tmp_path / "job-job1" / "job1"
    assert sorted(p.name for p in d.iterdir()) == ["task-t1.txt", "task-t1.txt.1", "task-t1.txt.2"]
    assert (d / "task-t1.txt").read_text() == "run 3\n"
    assert (d / "task-t1.txt.2").read_text() == "run 1\n"
    assert gzip.decompress(logs.gzipped("job1", "t1")).decode() == (
        "===== run 1 of 3 (an earlier run) =====\nrun 1\n"
        "===== run 2 of 3 (an earlier run) =====\nrun 2\n"
        "===== run 3 of 3 (the latest) =====\nrun 3\n"), "every kept run, oldest first"
    assert gzip.decompress(logs.gzipped("job1", "none")) == b""
    logs.append("job1", "one-run", "only run")
    assert gzip.decompress(logs.gzipped("job1", "one-run")) == b"only run\n", "one run: the log as it is"


def test_head_and_tail(tmp_path):
    logs = TaskLogs(tmp_path)
    logs.append("j", "t", "A" * 100 + "B" * 100 + "C" * 100)
    out = logs.head_and_tail("j", "t", 50, 50)
    assert out.startswith(b"A" * 50) and out.rstrip().endswith(b"C" * 49) and b"skipped" in out
    assert logs.head_and_tail("j", "t", 500, 500).count(b"B") == 100
    assert logs.head_and_tail("j", "nothing", 1, 1) is None


def test_unsafe_ids_refused(tmp_path):
    with pytest.raises(ValueError):
        TaskLogs(tmp_path).path("..", "t")
    with pytest.raises(ValueError):
        TaskLogs(tmp_path).path("j", "a/b")


def test_tail_lines():
    text = "\n".join(f"line {i}" for i in range(30)) + "\n"
    assert tail_lines(text, 10, 4096).split("\n") == [f"line {i}" for i in range(20, 30)]
    assert len(tail_lines("x" * 10000, 10, 100)) == 100


def test_background_writes_keep_their_order_and_every_read_sees_them(tmp_path):
    """The Manager's logs are written on a thread of their own: runs, their lines and the
    rotations between them land in the order they were written, and a read waits for them."""
    logs = TaskLogs(tmp_path, rotations_kept=3, background=True)
    for run in range(3):
        logs.start_run("job1", "t1", f"run {run} assigned")
        for i in range(200):
            logs.append("job1", "t1", f"run {run} line {i}")
    text = gzip.decompress(logs.gzipped("job1", "t1")).decode()
    for run in range(3):
        lines = [ln for ln in text.splitlines() if ln.startswith(f"run {run} ")]
        assert lines == [f"run {run} assigned"] + [f"run {run} line {i}" for i in range(200)]
    assert logs.read_bytes("job1", "t1").decode().splitlines()[-1] == "run 2 line 199"
    assert logs.path("job1", "t1").read_text().count("\n") == 201, "path() waits for the writer too"
    with pytest.raises(ValueError):
        logs.append("../etc", "t1", "no")  # refused on the caller's thread, not lost on the writer's
    logs.remove_job("job1")
    assert not (tmp_path / "job-job1" / "job1").exists()
    logs.close_all()
