"""Running one task: its commands in order, and what the Manager hears about it.

The outcome is one of
* completed -- every command succeeded; outputs (upload mode) are queued for
  upload before the 'completed' status, so the status never overtakes them;
* failed    -- a setting was wrong, a command failed, or something broke;
  the message says which command and why;
* returned  -- the task was stopped from outside (may-i-run said no, the
  worker goes to sleep or shuts down, or there is not enough free memory):
  the subprocess tree is killed, only log lines follow, and the task goes back
  to the Manager with POST /tasks/{id}/return. It is never reported 'canceled':
  the Manager decides what a returned task becomes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from shared.documents import Task
from shared.relpaths import RelpathError, check_relpath
from shared.statuses import TaskStatus

from . import commands, resources
from .commands import CommandContext, CommandError
from .config import WorkerConfig
from .job_files import JobFiles, JobFilesError, TaskIO, substitute
from .manager_client import OUTPUTS
from .output_watcher import OutputWatcher
from .runner import CommandAborted, SubprocessRunner
from .task_reporter import TaskReporter
from .upstream_queue import UpstreamQueue

log = logging.getLogger(__name__)

COMPLETED, FAILED = TaskStatus.COMPLETED, TaskStatus.FAILED
RETURNED = "returned"
"""Not a task status: the task goes back to the Manager unfinished (POST /tasks/{id}/return)."""


@dataclass
class Outcome:
    status: str
    message: str = ""


class TaskExecution:
    def __init__(self, task: Task, config: WorkerConfig, queue: UpstreamQueue, runner: SubprocessRunner,
                 job_files: JobFiles | None = None, booking=None):
        self.task = task
        self.config = config
        self.queue = queue
        self.runner = runner
        self.job_files = job_files
        self.booking = booking
        """What its slot gives it (worker/slots.py); None outside the daemon (--test, tests)."""
        self.abort = threading.Event()
        self._abort_reason = ""
        self._reported_outputs: set[str] = set()
        self._outputs_lock = threading.Lock()
        self.reporter = TaskReporter(
            queue, task.id, len(task.commands), act_interval=config.push_act_interval_seconds,
            log_interval=config.push_log_interval_seconds, log_max_entries=config.push_log_max_entries,
            resources_interval=config.resources_interval_seconds,
            resources=lambda: resources.snapshot(config.data_path()))
        self.started = time.monotonic()
        self.outcome: Outcome | None = None

    # --- from outside -----------------------------------------------------------

    def request_abort(self, reason: str) -> None:
        """Stop the task and return it to the Manager (thread-safe, idempotent)."""
        if not self.abort.is_set():
            self._abort_reason = reason
            self.reporter.silence()
            self.abort.set()
            log.info("task %s: aborting: %s", self.task.id, reason)

    def abort_reason(self) -> str:
        return self._abort_reason or "aborted"

    # --- running --------------------------------------------------------------------

    def run(self) -> Outcome:
        """Execute the task and report its outcome."""
        return self.finish(self.execute())

    def execute(self) -> Outcome:
        """Fetch its inputs, run its commands, collect its outputs: the task's work, unreported."""
        task = self.task
        log.info("task %s (%s, job %s): starting, %d command(s)", task.id, task.name, task.job, len(task.commands))
        self.reporter.log(f"worker: starting task {task.id} '{task.name}' of job {task.job}")
        try:
            outcome = self._run()
        except CommandAborted as ex:
            outcome = Outcome(RETURNED, ex.reason)
        except Exception as ex:  # noqa: BLE001 - whatever breaks, the task must be reported
            log.exception("task %s: unexpected error", task.id)
            outcome = Outcome(FAILED, f"worker error: {type(ex).__name__}: {ex}")
        if self.abort.is_set() and outcome.status != COMPLETED:
            outcome = Outcome(RETURNED, self.abort_reason())
        return outcome

    def finish(self, outcome: Outcome) -> Outcome:
        """Tell the Manager how it ended (queued)."""
        self._report(outcome)
        self.outcome = outcome
        return outcome

    def _run(self) -> Outcome:
        task = self.task
        shortfall = resources.memory_shortfall(task.job_memory_mb)
        if shortfall:
            self.request_abort(f"not enough memory: {shortfall}")
            return Outcome(RETURNED, self.abort_reason())
        dirs = None
        cmds = [(c.name, c.settings) for c in task.commands]
        if task.job_files_mode == "upload":
            if self.job_files is None:
                return Outcome(FAILED, "the task is in upload mode but this worker has no file cache")
            self.reporter.activity("downloading job files")
            try:
                io = TaskIO.from_doc(task.io)
                dirs = self.job_files.prepare(task.job, self.reporter.log)
                if io.inputs or io.input_jobs:
                    self.reporter.activity("downloading the outputs this task reads")
                    self.job_files.place_inputs(task.job, io, dirs.files, self.reporter.log)
            except JobFilesError as ex:
                return Outcome(FAILED, f"job files: {ex}")
            values = {"job_files": str(dirs.files), "job_output": str(dirs.output)}
            cmds = [(name, substitute(settings, values)) for name, settings in cmds]
            before = JobFiles.snapshot(dirs.output)
        for idx, (name, settings) in enumerate(cmds):
            if self.abort.is_set():
                raise CommandAborted(self.abort_reason())
            result = self._run_command(idx, name, settings)
            if result is not None:
                return result
        if dirs is not None:
            refused = self._queue_outputs(dirs.output, before, io)
            if refused:
                return Outcome(FAILED, refused)
        return Outcome(COMPLETED)

    def _run_command(self, idx: int, name: str, settings: dict) -> Outcome | None:
        """Validate and execute one command; an Outcome when it failed, None when it succeeded."""
        label = f"{name}"
        try:
            command = commands.get(name)
            params = command.validate(settings if isinstance(settings, dict) else {})
        except CommandError as ex:
            message = f"command {idx} ({label}): {ex}"
            self.reporter.log(f"{label}: invalid settings: {ex}")
            return Outcome(FAILED, message)
        self.reporter.log(f"{label}: Starting")
        self.reporter.command_started(idx, f"starting {label}")
        ctx = CommandContext(self.task.id, self.task.job, idx, name, self.reporter, self.runner, self.abort,
                             self.abort_reason, self.output_produced,
                             missing_blendfile_wait=self.config.missing_blendfile_wait_seconds, slot=self.booking)
        watcher = None
        dirs = command.output_dirs(params) if self.config.output_watch else []
        if dirs:
            watcher = OutputWatcher(self.output_produced).start(dirs)
        started = time.monotonic()
        try:
            command.execute(ctx, params)
        except CommandError as ex:
            self.reporter.log(f"{label}: Error executing: {ex}")
            return Outcome(FAILED, f"command {idx} ({label}) failed: {ex}")
        finally:
            if watcher:
                watcher.stop()
            elapsed = round(time.monotonic() - started, 3)
            self.reporter.metric("timing", f"{idx}:{name}", elapsed)
            if ctx.peak_rss:
                self.reporter.metric("peak_rss_mb", f"{idx}:{name}", round(ctx.peak_rss / 2**20, 1))
        self.reporter.log(f"{label}: Finished in {elapsed:.2f} s")
        self.reporter.progress(1.0)
        return None

    def output_produced(self, paths: list[str]) -> None:
        with self._outputs_lock:
            new = []
            for p in paths:
                key = str(Path(p).absolute())
                if key not in self._reported_outputs:
                    self._reported_outputs.add(key)
                    new.append(p)
        if new:
            self.reporter.flush()  # the update stream stays ahead of the outputs it mentions
            self.queue.enqueue("POST", "/output-produced", {"paths": new})

    def _queue_outputs(self, tree: Path, before: dict, io: TaskIO) -> str:
        """What the task made and removed, queued for the Manager ahead of the 'completed' status; a
        message when some output cannot be sent (its path is one the Manager and the Server refuse,
        e.g. too long), which fails the task instead of losing the output."""
        self.reporter.activity("collecting outputs")
        produced = self.job_files.produced(tree, before, io)
        refused = []
        for rel in list(produced.files):
            try:
                check_relpath(rel)
            except RelpathError as ex:
                refused.append(f"'{rel[:100]}{'...' if len(rel) > 100 else ''}': {str(ex)[:200]}")
                del produced.files[rel]
        if produced.files or produced.removed:
            self.queue.enqueue(OUTPUTS, self.task.job, produced.body(self.task.id))
            size = sum(s for _, s in produced.files.values())
            self.reporter.log(f"worker: {len(produced.files)} output file(s) ({size} bytes) and "
                              f"{len(produced.removed)} removed path(s) queued for the Manager")
        for why in refused:
            self.reporter.log(f"worker: output {why}; it cannot be uploaded")
        return f"{len(refused)} output(s) cannot be uploaded: {refused[0]}" if refused else ""

    def _report(self, outcome: Outcome) -> None:
        rep = self.reporter
        elapsed = time.monotonic() - self.started
        if outcome.status == COMPLETED:
            rep.log(f"worker: task completed in {elapsed:.2f} s")
            rep.status(COMPLETED, "completed")
        elif outcome.status == FAILED:
            rep.log(f"worker: task failed: {outcome.message}")
            rep.status(FAILED, outcome.message)
        else:
            rep.silence()
            rep.log(f"worker: task returned to the Manager: {outcome.message}")
            rep.flush()
            self.queue.enqueue("POST", f"/tasks/{self.task.id}/return", None)
        log.info("task %s: %s%s (%.2f s)", self.task.id, outcome.status,
                 f": {outcome.message}" if outcome.message else "", elapsed)
