"""Storing a job's tasks: fast, and for a big job in batches after the submission answered.

A submitted job is stored in one transaction with its first FIRST_BATCH tasks and its
total; it is queued at once, so a Manager hands its first tasks to workers while the
rest is written by the TaskStorer, BATCH tasks a transaction, each stamped when it
commits (a Manager's depsgraph cursor sees every batch). Until then the job counts the
tasks not stored yet in `tasks_total` (and `tasks_to_store`): it cannot complete, and a
failure rule's percentage is of the whole job. A batch stored after the job was paused,
canceled or failed is stored paused or canceled (StateMachine.late_task_status).

Stopped halfway (the process ended), the rest is compiled again from the stored job when a
Server starts (`resume`): compiling depends on the job's settings, id, name, creation time,
files and mode only, so the same tasks come out. A batch checks that the job has exactly as
many tasks stored as come before it, so two Server processes never store one twice.
"""

from __future__ import annotations

import collections
import itertools
import logging
import operator
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from shared.slots import NEEDS
from shared.statuses import JobStatus

from .changes import EVERYTHING
from .compilers import CompileContext, SettingError, TaskSpec
from .models import Job, JobDependency, JobFile, Project, Task, bulk_insert, stamp_value, task_id

if TYPE_CHECKING:
    from .context import ServerContext

log = logging.getLogger(__name__)

FIRST_BATCH = 1_000
"""Tasks stored with the job itself, in the submission's transaction (a Manager's first page is 100)."""
BATCH = 5_000
"""Tasks a later transaction stores: about 25 ms of holding the write lock."""
FIRST_WAIT = 1.0
"""Seconds the storer waits at most before a job's second batch, for a first task of the job to
start (the job turns active): the Manager's depsgraph request, its ingest and a worker's claim get
the CPU and the write lock before storing takes them. A farm without an idle worker waits it out."""
DUTY = 0.5
"""The storer's share of the time while it stores: after a batch it waits as long again, so that
requests (a Manager's depsgraph, workers' updates) get the write lock and the GIL in between."""

TASK_COLUMNS = ("id", "name", "commands")
"""What differs from one new task of a job to the next."""
TASK_SHARED = ("task_type", "priority", "parents", "io", "needs")
"""What a run of consecutive new tasks usually has in common (all the render tasks of a job, say)."""


def task_rows(job_id: str, specs: list[TaskSpec], input_jobs: list[str] = ()) -> list[tuple[tuple, tuple]]:
    """(TASK_SHARED values, TASK_COLUMNS values) per task; ids follow the compiler's order, parents first.

    `input_jobs` (upload mode): jobs this one depends on, whose outputs every task lays over its
    files first (the baked .blend and caches of a bake job, say). The JSON columns are encoded
    by orjson: the standard library's encoder took a third of storing a 100,000-task job."""
    ids: dict[int, str] = {}
    rows = []
    for index, spec in enumerate(specs):
        tid = task_id(job_id, index)
        ids[id(spec)] = tid
        parents = "[]"
        if spec.parents:
            try:
                parents = _json([ids[id(p)] for p in spec.parents])
            except KeyError:
                raise ValueError(f"task '{spec.name}' names a parent that comes after it") from None
        if spec.needs and spec.needs not in NEEDS:
            raise ValueError(f"task '{spec.name}' needs '{spec.needs}', not one of {', '.join(NEEDS)}")
        io = spec.io()
        if input_jobs:
            io = {"inputs": [], "outputs": [], **(io or {}), "input_jobs": list(input_jobs)}
        rows.append(((spec.task_type, spec.priority, parents, _json(io) if io else None, spec.needs),
                     (tid, spec.name, _json(spec.commands))))
    return rows


def _json(value: Any) -> str:
    """Compact JSON text as JSONField stores it (a non-finite number as null)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def store_rows(rows: list[tuple[tuple, tuple]], job: Job, status: str, stamp: Any) -> None:
    """Insert rows of task_rows, in order, inside the caller's transaction: each run of rows with
    the same TASK_SHARED values is one statement with those values (and what every new task of
    the job has) written into it, so three values a row are bound (binding was most of the
    insert's time)."""
    constants = {"job": job.id, "status": status, "job_priority": job.priority, "failed_by_workers": "[]",
                 "activity": "", "log_tail": "", "progress": 0.0, "current_command_idx": 0,
                 "command_progress": 0.0, "created": stamp, "updated": stamp}
    for shared, run in itertools.groupby(rows, key=operator.itemgetter(0)):
        bulk_insert(Task, TASK_COLUMNS, (row for _, row in run),
                    constants={**constants, **dict(zip(TASK_SHARED, shared))})


def set_script_policy(specs: list[TaskSpec], allow: bool) -> None:
    """Tell every command that runs Blender whether the blend file's own scripts may run (the project's
    allow_scripts): the worker passes --enable-autoexec or --disable-autoexec accordingly."""
    for spec in specs:
        for cmd in spec.commands:
            if "blender_cmd" in cmd.get("settings", {}):
                cmd["settings"]["autoexec"] = allow


@dataclass
class Remaining:
    """The tasks of a job still to be stored: rows[0] is the job's task number `start`; rows before
    `done` are stored."""
    job_id: str
    rows: list[tuple[tuple, tuple]]
    start: int
    done: int = 0


class TaskStorer:
    """Stores the rest of big jobs' tasks, on a thread of its own (started by the first job)."""

    def __init__(self, ctx: "ServerContext", first_batch: int = FIRST_BATCH, batch: int = BATCH,
                 thread: bool = True, first_wait: float = FIRST_WAIT, duty: float = DUTY):
        self.ctx = ctx
        self.first_batch, self.batch = first_batch, batch
        self.first_wait, self.duty = first_wait, duty
        self.thread = thread
        """False: nothing is stored until `step` is called (tests look at a job halfway)."""
        self._queue: collections.deque[Remaining] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._thread: threading.Thread | None = None

    def split(self, rows: list) -> tuple[list, list]:
        """(rows stored with the job, rows stored after the submission answered)."""
        if len(rows) <= 2 * self.first_batch:
            return rows, []
        return rows[:self.first_batch], rows[self.first_batch:]

    def add(self, remaining: Remaining) -> None:
        with self._cond:
            self._queue.append(remaining)
            if not self.thread:
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="task-storer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every job added so far is stored; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def step(self) -> bool:
        """One batch of the first job waiting, on this thread; whether anything was waiting."""
        with self._cond:
            if not self._queue:
                return False
            remaining = self._queue[0]
        if not self.store_batch(remaining):
            with self._cond:
                self._queue.popleft()
        return True

    def _run(self) -> None:
        pause = 0.0
        with self.ctx.db.connection_context():
            while True:
                with self._cond:
                    while not self._queue:
                        self._cond.wait()
                    remaining = self._queue[0]
                    self._busy = True
                if remaining.done:
                    time.sleep(pause)
                else:
                    self._wait_for_a_start(remaining.job_id)
                started = time.perf_counter()
                try:
                    more = self.store_batch(remaining)
                except Exception:  # noqa: BLE001 - the next Server start resumes it
                    log.exception("job %s: storing tasks from number %d failed (the next start goes on)",
                                  remaining.job_id, remaining.start + remaining.done)
                    more = False
                pause = (time.perf_counter() - started) * (1 - self.duty) / self.duty
                with self._cond:
                    if not more:
                        self._queue.popleft()
                    self._busy = False
                    self._cond.notify_all()

    def _wait_for_a_start(self, job_id: str) -> None:
        """Until the job is no longer queued, or `first_wait` passed: woken by the change feed when
        the job changed in this process (a change in another Server process waits out the time)."""
        feed, topic = self.ctx.feed, f"job:{job_id}"
        deadline = time.monotonic() + self.first_wait
        seq = feed.seq
        while not feed.closed and (left := deadline - time.monotonic()) > 0:
            now = feed.wait(seq, left)
            changed, seq = feed.changed_since(seq), now
            if (topic in changed or EVERYTHING in changed) and \
                    Job.select(Job.status).where(Job.id == job_id).scalar() != JobStatus.QUEUED:
                return

    def store_batch(self, remaining: Remaining) -> bool:
        """Store the next batch of `remaining` in one transaction; whether more is left."""
        rows = remaining.rows[remaining.done:remaining.done + self.batch]
        first = remaining.start + remaining.done
        with self.ctx.write():
            job = Job.get_or_none(Job.id == remaining.job_id)
            if job is None:
                log.info("job %s was deleted while its tasks were being stored", remaining.job_id)
                return False
            if job.tasks_total - job.tasks_to_store != first or job.tasks_to_store < len(rows):
                log.info("job %s: its tasks from number %d are stored already (by another process)", job.id, first)
                return False
            status = self.ctx.machine.late_task_status(job)
            store_rows(rows, job, status.value, stamp_value(self.ctx.clock.now()))
            self.ctx.machine.stored_late(job, status, len(rows))
        remaining.done += len(rows)
        return remaining.done < len(remaining.rows)

    def resume(self) -> int:
        """Go on storing the jobs a stopped Server left halfway (at its start); how many."""
        n = 0
        for job in Job.select().where(Job.tasks_to_store > 0):
            try:
                rows = self._compile_again(job)
            except (SettingError, ValueError) as ex:
                log.error("job %s: its tasks cannot be compiled again (%s); %d of them are missing",
                          job.id, ex, job.tasks_to_store)
                continue
            start = job.tasks_total - job.tasks_to_store
            if len(rows) != job.tasks_total:
                log.error("job %s compiles to %d tasks now, not %d; %d of them are missing", job.id, len(rows),
                          job.tasks_total, job.tasks_to_store)
                continue
            log.info("job %s: storing its last %d tasks", job.id, job.tasks_to_store)
            self.add(Remaining(job.id, rows[start:], start))
            n += 1
        return n

    def _compile_again(self, job: Job) -> list[tuple[tuple, tuple]]:
        job_type = self.ctx.registry.get(job.job_type)
        if job_type is None:
            raise ValueError(f"no job type '{job.job_type}'")
        files = {f.relpath: {"sha256": f.sha256, "size": f.size} for f in JobFile.select().where(JobFile.job == job.id)}
        cctx = CompileContext(job.id, job.name, job.created, job.files_mode, files,
                              max_frames=self.ctx.config.max_frames)
        specs = job_type.compile(job.settings, cctx)
        set_script_policy(specs, bool(Project.get_by_id(job.project_id).allow_scripts))
        deps = [d.depends_on_id for d in job.dependencies.order_by(JobDependency.id)] \
            if job.files_mode == "upload" else []
        return task_rows(job.id, specs, deps)
