"""The subprocess runner with real processes: streaming, tree kill, PID guard, peak memory."""

import os
import sys
import textwrap
import threading
import time

import psutil
import pytest

from worker.runner import CommandAborted, PidFile, RunnerError, SubprocessRunner


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


@pytest.fixture
def runner(tmp_path):
    return SubprocessRunner(tmp_path / "sub.pid", grace_seconds=1.0, sample_interval=0.05)


def test_merged_output_in_order_and_env_stripped(runner, monkeypatch):
    monkeypatch.setenv("LD_LIBRARY_PATH", "/bad/libs")
    lines = []
    result = runner.run(py("""
        import os, sys
        print("out 1", flush=True)
        print("err 2", file=sys.stderr, flush=True)
        print("ld=" + os.environ.get("LD_LIBRARY_PATH", "unset"), flush=True)
        print("non-utf8: \\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), flush=True)
        sys.exit(3)
    """), lines.append)
    assert result.returncode == 3
    assert lines[:3] == ["out 1", "err 2", "ld=unset"]
    assert len(lines) == 4
    assert not runner.pid_file.exists() if hasattr(runner.pid_file, "exists") else True


def test_abort_kills_the_whole_tree(runner, tmp_path):
    child_pid_file = tmp_path / "child.pid"
    abort = threading.Event()
    code = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(child_pid_file)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(60)
    """
    seen = []

    def on_line(line):
        seen.append(line)
        abort.set()

    started = time.monotonic()
    with pytest.raises(CommandAborted) as exc:
        runner.run(py(code), on_line, abort=abort, abort_reason=lambda: "test says stop")
    assert exc.value.reason == "test says stop"
    assert time.monotonic() - started < 10
    child_pid = int(child_pid_file.read_text())
    assert not _alive(child_pid), "the grandchild must be gone too"
    assert not os.path.exists(runner.pid_file)


def test_term_ignoring_process_is_killed_after_grace(runner):
    abort = threading.Event()
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """
    pid = {}

    def on_line(line):
        pid["pid"] = runner.current_pid
        abort.set()

    started = time.monotonic()
    with pytest.raises(CommandAborted):
        runner.run(py(code), on_line, abort=abort)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 8, elapsed
    assert not _alive(pid["pid"])


def test_pid_guard_refuses_while_the_recorded_process_lives(tmp_path):
    pid_path = tmp_path / "sub.pid"
    other = psutil.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_path.write_text(f"{other.pid} {other.create_time():.3f}\n")
        runner = SubprocessRunner(pid_path)
        with pytest.raises(RunnerError, match=f"still running: pid {other.pid}"):
            runner.run(py("print('never')"), lambda line: None)
    finally:
        other.kill()
        other.wait()
    # The same file is stale now that the process is gone: the next run removes it and goes.
    lines = []
    SubprocessRunner(pid_path).run(py("print('ran')"), lines.append)
    assert lines == ["ran"]
    assert not pid_path.exists()


def test_pid_guard_ignores_a_reused_pid(tmp_path):
    pid_path = tmp_path / "sub.pid"
    pid_path.write_text(f"{os.getpid()} 12345.000\n")  # our PID, but a create time long ago
    lines = []
    SubprocessRunner(pid_path).run(py("print('ok')"), lines.append)
    assert lines == ["ok"]


def test_two_runners_sharing_a_pid_file_never_overlap(tmp_path):
    pid_path = tmp_path / "sub.pid"
    first = SubprocessRunner(pid_path)
    errors = []
    started = threading.Event()

    def run_first():
        first.run(py("import time; print('x', flush=True); time.sleep(2)"), lambda l: started.set())

    t = threading.Thread(target=run_first)
    t.start()
    assert started.wait(10)
    with pytest.raises(RunnerError, match="still running"):
        SubprocessRunner(pid_path).run(py("print(1)"), lambda l: None)
    t.join()


def test_peak_rss_of_the_tree(runner):
    code = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "b = bytearray(80 * 1024 * 1024); import time; time.sleep(1.0)"])
        child.wait()
    """
    result = runner.run(py(code), lambda line: None)
    assert result.returncode == 0
    assert result.peak_rss_mb > 80, result.peak_rss_mb


def test_missing_executable(runner):
    with pytest.raises(RunnerError, match="cannot start"):
        runner.run(["/nonexistent/blender"], lambda line: None)
    assert not os.path.exists(runner.pid_file)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
