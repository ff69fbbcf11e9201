"""Running one subprocess of a command: output streamed by line, abortable, guarded.

* stdout and stderr are merged and handed line by line to a callback, so the
  task log shows them in order;
* LD_LIBRARY_PATH is removed from the child's environment (a worker started
  from a bundled Python must not leak its libraries into Blender or FFmpeg);
* a PID file, created with exclusive create, makes sure two workers that share
  a data directory never run two subprocesses at once: a PID file whose
  process is still alive refuses the start;
* aborting kills the whole process tree: SIGTERM to every process of it (and
  to its session), a grace period, then SIGKILL to what is left;
* the resident memory of the process tree is sampled, and its peak returned.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from .resources import process_tree_rss

log = logging.getLogger(__name__)

SILENCE_TIMEOUT = 3600.0
"""A subprocess that prints nothing for this long is considered hung."""


class RunnerError(Exception):
    """The subprocess could not be started, or hung."""


class CommandAborted(Exception):
    """The task was told to stop while this subprocess ran; it has been killed."""

    def __init__(self, reason: str = "aborted"):
        super().__init__(reason)
        self.reason = reason


@dataclass
class RunResult:
    returncode: int
    pid: int
    duration: float
    peak_rss: int

    @property
    def peak_rss_mb(self) -> float:
        return round(self.peak_rss / (1024 * 1024), 1)


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    if extra:
        env.update(extra)
    return env


def kill_tree(pid: int, grace_seconds: float) -> None:
    """SIGTERM the process, its descendants and its session; SIGKILL what outlives the grace."""
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _signal_session(pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(procs, timeout=grace_seconds)
    for p in alive:
        log.warning("pid=%d did not stop within %.1f s of SIGTERM, killing it", p.pid, grace_seconds)
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    _signal_session(pid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace_seconds)


def _signal_session(pid: int, sig: int) -> None:
    """Reach grandchildren that were orphaned (and so left the psutil tree) via the session."""
    if not hasattr(os, "killpg"):
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class PidFile:
    """A PID file that records one running subprocess: 'PID CREATE_TIME'."""

    STARTING_GRACE = 10.0
    """An empty PID file younger than this belongs to a subprocess being started."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    def claim(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                self._fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                return
            except FileExistsError:
                pass
            holder = self.live_holder()
            if holder is not None:
                raise RunnerError(f"Subprocess from {self.path} is still running: pid {holder}")
            log.info("removing stale PID file %s", self.path)
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        raise RunnerError(f"could not create PID file {self.path}")

    def live_holder(self) -> int | None:
        """The PID recorded in the file if that process still runs; None if the file is stale."""
        try:
            text = self.path.read_text().split()
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        if not text:
            return -1 if age < self.STARTING_GRACE else None
        try:
            pid = int(text[0])
            created = float(text[1]) if len(text) > 1 else None
        except ValueError:
            return None
        try:
            proc = psutil.Process(pid)
            if created is not None and abs(proc.create_time() - created) > 1.0:
                return None  # the PID was reused by another process
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except psutil.NoSuchProcess:
            return None
        return pid

    def record(self, pid: int) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            created = time.time()
        assert self._fd is not None
        os.write(self._fd, f"{pid} {created:.3f}\n".encode())
        os.fsync(self._fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass


class SubprocessRunner:
    """Runs subprocesses one at a time for this worker."""

    def __init__(self, pid_file: str | os.PathLike, grace_seconds: float = 5.0,
                 sample_interval: float = 0.25, silence_timeout: float = SILENCE_TIMEOUT):
        self.pid_file = pid_file
        self.grace_seconds = grace_seconds
        self.sample_interval = sample_interval
        self.silence_timeout = silence_timeout
        self._current: subprocess.Popen | None = None
        self.last_pid: int | None = None

    @property
    def current_pid(self) -> int | None:
        proc = self._current
        return proc.pid if proc and proc.poll() is None else None

    def kill_now(self) -> None:
        """Kill the running subprocess tree without grace (for a forced stop)."""
        pid = self.current_pid
        if pid:
            kill_tree(pid, 0.5)

    def run(self, argv: list[str], on_line: Callable[[str], None], abort: threading.Event | None = None,
            cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None,
            abort_reason: Callable[[], str] | None = None) -> RunResult:
        """Run argv to its end; each output line goes to on_line (without its newline).

        Raises CommandAborted when `abort` is set while it runs, RunnerError when it cannot
        start or stays silent too long. A non-zero exit code is the caller's to judge.
        """
        abort = abort or threading.Event()
        if abort.is_set():
            raise CommandAborted(abort_reason() if abort_reason else "aborted")
        guard = PidFile(self.pid_file)
        guard.claim()
        started = time.monotonic()
        try:
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=cwd, env=child_environment(env),
                                        start_new_session=True)
            except OSError as ex:
                raise RunnerError(f"cannot start {argv[0]!r}: {ex.strerror or ex}") from None
            self._current = proc
            self.last_pid = proc.pid
            guard.record(proc.pid)
            log.info("pid=%d started: %s", proc.pid, " ".join(argv))
            try:
                peak = self._pump(proc, on_line, abort, abort_reason)
            finally:
                self._current = None
            return RunResult(proc.returncode, proc.pid, time.monotonic() - started, peak)
        finally:
            guard.release()

    def _pump(self, proc: subprocess.Popen, on_line, abort: threading.Event, abort_reason) -> int:
        lines: queue.Queue = queue.Queue(maxsize=10000)
        reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True,
                                  name=f"runner-read-{proc.pid}")
        reader.start()
        ps = psutil.Process(proc.pid)
        peak = 0
        last_output = time.monotonic()
        next_sample = 0.0
        eof = False
        exited_at = 0.0
        while not eof:
            now = time.monotonic()
            if now >= next_sample:
                peak = max(peak, process_tree_rss(ps))
                next_sample = now + self.sample_interval
            if abort.is_set():
                reason = abort_reason() if abort_reason else "aborted"
                log.info("pid=%d: aborting (%s)", proc.pid, reason)
                kill_tree(proc.pid, self.grace_seconds)
                proc.wait()
                reader.join(timeout=2)
                raise CommandAborted(reason)
            if now - last_output > self.silence_timeout:
                kill_tree(proc.pid, self.grace_seconds)
                proc.wait()
                raise RunnerError(f"pid={proc.pid} printed nothing for {self.silence_timeout:.0f} s; killed it")
            try:
                item = lines.get(timeout=min(self.sample_interval, 0.1))
            except queue.Empty:
                if proc.poll() is not None:
                    exited_at = exited_at or now
                    if now - exited_at > 2.0:
                        break  # a descendant holds the pipe open after the main process ended
                continue
            while True:
                if item is None:
                    eof = True
                    break
                last_output = time.monotonic()
                on_line(item)
                try:
                    item = lines.get_nowait()
                except queue.Empty:
                    break
        while proc.poll() is None:
            if abort.is_set():
                kill_tree(proc.pid, self.grace_seconds)
                proc.wait()
                raise CommandAborted(abort_reason() if abort_reason else "aborted")
            peak = max(peak, process_tree_rss(ps))
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        # Descendants that outlive the main process would hold resources: stop them.
        _signal_session(proc.pid, signal.SIGKILL)
        return peak


def _read_lines(stream, out: queue.Queue) -> None:
    try:
        for raw in iter(stream.readline, b""):
            out.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    finally:
        out.put(None)
