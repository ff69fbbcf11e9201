"""The dispatch path's database work, done on one thread that commits many requests at once.

Worker requests on the hot path (looking for and claiming a task, task updates)
hand their database work to this thread as a function and wait for it. The
thread runs whatever is waiting in one write transaction, each function inside
its own savepoint, commits once, and only then lets the requests answer. So:

* every request's writes are still atomic and durable before it is answered (a
  function that raises leaves nothing behind, the others in the batch are kept);
  a rollback to a savepoint undoes a failed one, so the batch can go on;
* SQLite's page cache stays warm: each connection drops its whole cache when
  another connection has committed, so with a connection per HTTP thread every
  statement re-read its B-tree pages from disk;
* one commit (and one write of each changed page to the WAL) serves a batch;
* no request thread holds the write lock while it waits for the GIL, which is what
  stretched a 0.15 ms transaction to a millisecond under load.

Callbacks registered with `Store.after_commit` inside a function (log lines,
wake-ups) run on the requesting thread once the batch has committed.
"""

from __future__ import annotations

import _thread
import collections
import logging
import threading
import time

from .store import Store

log = logging.getLogger(__name__)


class _Job:
    __slots__ = ("fn", "args", "result", "error", "after", "done")

    def __init__(self, fn, args):
        self.fn, self.args = fn, args
        self.result = self.error = None
        self.after: list = []
        self.done = _thread.allocate_lock()  # held until the job is done: a bare lock is the cheapest signal
        self.done.acquire()


class _WroteThenFailed(Exception):
    """A function failed after writing: the batch is rolled back and run again with savepoints."""


class DbThread:
    def __init__(self, store: Store, max_batch: int = 64):
        self.store = store
        self.max_batch = max_batch
        self._queue: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._idle = False
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = self.jobs = 0
        self.busy_seconds = self.cpu_seconds = 0.0
        """Time spent in batches (near the wall-clock time: this thread is what limits dispatch),
        and the CPU time of it (the rest is mostly waiting for the GIL)."""

    def start(self) -> None:
        with self._cond:
            if self._thread is None and not self._stopping:
                self._thread = threading.Thread(target=self._run, name="manager-db", daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def call(self, fn, *args):
        """fn(*args) in a write transaction, committed before this returns; its result or its exception.

        Runs on the database thread (started by the first call), or here once it was
        stopped, and when called from the database thread itself."""
        if self._thread is None:
            self.start()
        if self._stopping or threading.current_thread() is self._thread:
            with self.store.write():
                return fn(*args)
        job = _Job(fn, args)
        self._queue.append(job)
        if self._idle:  # set before the thread looks at the queue, so one of us sees the other
            with self._cond:
                self._cond.notify()
        while not job.done.acquire(timeout=1.0):
            thread = self._thread
            if thread is None or not thread.is_alive():  # stopped (or died) before it got to this job
                try:
                    self._queue.remove(job)
                except ValueError:
                    continue  # taken after all: it will be done
                with self.store.write():
                    return fn(*args)
        for callback in job.after:
            callback()
        if job.error is not None:
            raise job.error
        return job.result

    def _take(self) -> list[_Job]:
        queue = self._queue
        if not queue:
            with self._cond:
                self._idle = True
                while not queue and not self._stopping:
                    self._cond.wait()
                self._idle = False
        n = min(len(queue), self.max_batch)
        return [queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            try:
                jobs = self._take()
            except Exception:  # noqa: BLE001 - a loop logs and goes on
                log.exception("database thread: taking requests failed")
                continue
            if not jobs:
                if self._stopping:
                    return
                continue
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                try:
                    self._batch(jobs, savepoints=False)
                except _WroteThenFailed:
                    self._batch(jobs, savepoints=True)
            except BaseException as ex:  # noqa: BLE001 - the batch did not commit: nobody's writes stand
                log.warning("database batch of %d requests failed: %s", len(jobs), ex)
                for job in jobs:
                    job.after.clear()
                    if job.error is None:
                        job.error = _copy(ex)
            finally:
                self.busy_seconds += time.perf_counter() - started
                self.cpu_seconds += time.thread_time() - cpu
                self.batches += 1
                self.jobs += len(jobs)
                for job in jobs:
                    job.done.release()

    def _batch(self, jobs: list[_Job], savepoints: bool) -> None:
        """Run the jobs in one transaction. Most failures (authentication, unknown task) come
        before any write, and need no savepoint: SQLite's change counter tells. One that
        wrote and then failed sends the batch round again, each job in a savepoint."""
        store, db = self.store, self.store.db
        store.ensure_connected()
        conn = db.connection()
        with store.write():
            for job in jobs:
                job.result = job.error = None
                job.after = []
                store.set_after_commit_sink(job.after)
                if savepoints:
                    db.execute_sql("SAVEPOINT job")
                changes = conn.total_changes
                try:
                    job.result = job.fn(*job.args)
                except BaseException as ex:  # noqa: BLE001 - handed to the caller
                    job.error = ex
                    job.after.clear()
                    if savepoints:
                        db.execute_sql("ROLLBACK TO job")
                    elif conn.total_changes != changes:
                        raise _WroteThenFailed() from ex
                if savepoints:
                    db.execute_sql("RELEASE job")


def _copy(ex: BaseException) -> BaseException:
    """The same error for each request of a failed batch (one instance raised in many threads
    would share one traceback)."""
    try:
        return type(ex)(*ex.args)
    except Exception:  # noqa: BLE001
        return RuntimeError(str(ex))
