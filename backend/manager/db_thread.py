"""The dispatch path's database work, done on one thread that commits many requests at once.

Worker requests on the hot path (looking for and claiming a task, task updates)
hand their database work to this thread as a function and wait for it. The
thread runs whatever is waiting in one write transaction, each function inside
its own savepoint, commits once, and only then lets the requests answer. So:

* every request's writes are still atomic and durable before it is answered (a
  function that raises leaves nothing behind, the others in the batch are kept);
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

import collections
import logging
import threading

from .models import Store

log = logging.getLogger(__name__)


class _Job:
    __slots__ = ("fn", "args", "result", "error", "after", "done")

    def __init__(self, fn, args):
        self.fn, self.args = fn, args
        self.result = self.error = None
        self.after: list = []
        self.done = threading.Event()


class DbThread:
    def __init__(self, store: Store, max_batch: int = 64):
        self.store = store
        self.max_batch = max_batch
        self._queue: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = self.jobs = 0

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
        with self._cond:
            self._queue.append(job)
            self._cond.notify()
        job.done.wait()
        for callback in job.after:
            callback()
        if job.error is not None:
            raise job.error
        return job.result

    def _take(self) -> list[_Job]:
        with self._cond:
            while not self._queue and not self._stopping:
                self._cond.wait()
            n = min(len(self._queue), self.max_batch)
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        store, db = self.store, self.store.db
        while True:
            jobs = self._take()
            if not jobs:
                if self._stopping:
                    return
                continue
            try:
                store.ensure_connected()
                with store.write():
                    for job in jobs:
                        store.set_after_commit_sink(job.after)
                        db.execute_sql("SAVEPOINT job")
                        try:
                            job.result = job.fn(*job.args)
                        except BaseException as ex:  # noqa: BLE001 - handed to the caller
                            job.error = ex
                            job.after.clear()
                            db.execute_sql("ROLLBACK TO job")
                        db.execute_sql("RELEASE job")
            except BaseException as ex:  # noqa: BLE001 - the batch did not commit: nobody's writes stand
                log.warning("database batch of %d requests failed: %s", len(jobs), ex)
                for job in jobs:
                    job.after.clear()
                    if job.error is None:
                        job.error = _copy(ex)
            finally:
                self.batches += 1
                self.jobs += len(jobs)
                for job in jobs:
                    job.done.set()


def _copy(ex: BaseException) -> BaseException:
    """The same error for each request of a failed batch (one instance raised in many threads
    would share one traceback)."""
    try:
        return type(ex)(*ex.args)
    except Exception:  # noqa: BLE001
        return RuntimeError(str(ex))
