"""Commands run through the real TaskExecution, with real files and processes.

The upstream queue is real (SQLite in tmp_path); only its far end, the
Manager, is a recording transport.
"""

import os
import shutil
import sys
import threading
import time

import pytest

from worker import commands
from worker.commands.files import counter_path


def cmd(name, **settings):
    return {"name": name, "settings": settings}


def test_echo_and_sleep_complete(run_task, transport):
    outcome = run_task([cmd("echo", message="hello farm"), cmd("sleep", time_in_seconds=0.2)])
    assert outcome.status == "completed", outcome.message
    log = transport.log_text()
    assert "hello farm" in log and "sleep: Finished" in log
    last = transport.updates()[-1]
    assert last["task_status"] == "completed" and last["task_progress_percentage"] == 100.0
    assert set(last["metrics"]["timing"]) == {"0:echo", "1:sleep"}
    assert 0.2 <= last["metrics"]["timing"]["1:sleep"] < 2


@pytest.mark.parametrize("command, message", [
    (cmd("sleep"), "setting 'time_in_seconds': is required"),
    (cmd("sleep", time_in_seconds="soon"), "setting 'time_in_seconds': must be a number"),
    (cmd("echo", message=3), "setting 'message': must be a string"),
    (cmd("exec", cmd="no-such-program-xyz --help"), "setting 'cmd': executable 'no-such-program-xyz'"),
    (cmd("blender_render", blender_cmd="{blender}", filepath="/x.blend"),
     "setting 'blender_cmd': '{blender}' still contains '{blender}'"),
    (cmd("blender_render", blender_cmd="/opt/none/blender", filepath="/x.blend"),
     "setting 'blender_cmd': executable '/opt/none/blender' not found"),
    (cmd("create_video", ffmpeg_cmd="{ffmpeg}", input_files="/x/*.png", output_file="/x/v.mkv", fps=24),
     "variable 'ffmpeg'"),
    (cmd("create_python_file", filepath="/tmp/x.txt", contents=""), "setting 'filepath': must end in '.py'"),
    (cmd("remove_tree", path="relative/dir"), "setting 'path': must be an absolute path"),
    (cmd("frobnicate"), "unknown command 'frobnicate'"),
])
def test_bad_settings_fail_the_task_naming_the_setting(run_task, transport, command, message):
    outcome = run_task([cmd("echo", message="first"), command])
    assert outcome.status == "failed"
    assert message in outcome.message
    assert outcome.message.startswith("command 1 (")
    last = transport.updates()[-1]
    assert last["task_status"] == "failed" and message in last["activity"]


def test_exec_streams_output_and_fails_on_exit_code(run_task, transport):
    ok = run_task([cmd("exec", cmd=f"{sys.executable} -c \"print('from exec')\"")])
    assert ok.status == "completed"
    assert "> from exec" in transport.log_text()
    bad = run_task([cmd("exec", cmd=f"{sys.executable} -c 'import sys; sys.exit(4)'")], task_id="t2")
    assert bad.status == "failed" and "exited with code 4" in bad.message


def test_file_commands(run_task, tmp_path, transport):
    src = tmp_path / "render__intermediate"
    src.mkdir()
    (src / "0001.png").write_bytes(b"png")
    final = tmp_path / "render"
    final.mkdir()
    (final / "old.png").write_text("old")
    outcome = run_task([
        cmd("move_to_final", src=str(src), dest=str(final)),
        cmd("copy_file", src=str(final / "0001.png"), dest=str(tmp_path / "copies" / "a.png")),
        cmd("create_python_file", filepath=str(tmp_path / "py" / "overrides.py"), contents="bpy.context.scene.frame_end = 1\n"),
        cmd("remove_file", path=str(tmp_path / "copies" / "a.png")),
        cmd("remove_file", path=str(tmp_path / "never-existed")),
        cmd("move_out_of_way", src=str(tmp_path / "py")),
        cmd("remove_tree", path=str(tmp_path / "copies")),
    ])
    assert outcome.status == "completed", outcome.message
    assert (final / "0001.png").read_bytes() == b"png"
    old = [p for p in tmp_path.iterdir() if p.name.startswith("render-")]
    assert len(old) == 1 and (old[0] / "old.png").read_text() == "old"
    assert not src.exists() and not (tmp_path / "copies").exists()
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("py-")]
    assert len(moved) == 1 and (moved[0] / "overrides.py").read_text() == "bpy.context.scene.frame_end = 1\n"
    assert transport.outputs() == [str(tmp_path / "copies" / "a.png")]


def test_move_out_of_way_adds_a_counter_when_taken(run_task, tmp_path):
    target = tmp_path / "out"
    for _ in range(3):
        target.mkdir()
        os.utime(target, (1_700_000_000, 1_700_000_000))
        assert run_task([cmd("move_out_of_way", src=str(target))]).status == "completed"
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out-"))
    assert len(names) == 3
    assert names[0].endswith(tuple("0123456789")) and names[1].endswith("~1") and names[2].endswith("~2")


def test_move_with_counter(run_task, tmp_path):
    final = tmp_path / "final"
    for n in range(2):
        video = tmp_path / f"video{n}.mkv"
        video.write_text(str(n))
        assert run_task([cmd("move_with_counter", src=str(video), dest=str(final / "2024_01_15-shot.mkv"))],
                        task_id=f"t{n}").status == "completed"
    assert sorted(p.name for p in final.iterdir()) == ["2024_01_15_001-shot.mkv", "2024_01_15_002-shot.mkv"]
    assert counter_path(tmp_path / "plain.mkv").name == "plain_001.mkv"


def test_failing_command_stops_the_task(run_task, tmp_path):
    outcome = run_task([cmd("copy_file", src=str(tmp_path / "missing"), dest=str(tmp_path / "x")),
                        cmd("create_python_file", filepath=str(tmp_path / "never.py"), contents="")])
    assert outcome.status == "failed" and "does not exist" in outcome.message
    assert not (tmp_path / "never.py").exists()


def test_all_reference_commands_are_registered():
    assert set(commands.COMMANDS) >= {
        "echo", "sleep", "exec", "remove_tree", "remove_file", "move_out_of_way", "move_to_final", "copy_file",
        "move_with_counter", "create_python_file", "blender_render", "blender_render_audio", "create_video",
        "concatenate_videos", "encode_audio", "mux_audio"}


def test_abort_returns_the_task_and_kills_the_process(worker_config, queue, transport, make_task):
    from worker.runner import SubprocessRunner
    from worker.task_execution import TaskExecution

    task = make_task([cmd("echo", message="go"),
                      cmd("exec", cmd=f"{sys.executable} -c 'import time; print(1, flush=True); time.sleep(60)'")])
    execution = TaskExecution(task, worker_config, queue, SubprocessRunner(worker_config.pid_path, 1))
    threading.Timer(1.0, execution.request_abort, args=("the Manager says stop",)).start()
    started = time.monotonic()
    outcome = execution.run()
    assert time.monotonic() - started < 8
    assert outcome.status == "returned" and "Manager says stop" in outcome.message
    queue.flush()
    assert transport.sent[-1].path == "/tasks/t1/return"
    assert all("task_status" not in (u or {}) for u in transport.updates())


def test_task_needing_more_memory_than_free_is_returned(run_task, transport):
    outcome = run_task([cmd("echo", message="never")], job_memory_mb=10**9)
    assert outcome.status == "returned" and "not enough memory" in outcome.message
    assert transport.sent[-1].path == "/tasks/t1/return"
    assert "never" not in transport.log_text()
