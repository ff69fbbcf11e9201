"""Worker life cycle: registration, sign-on/off, status requests and their acks.

Status requests (asleep, awake, shutdown) are lazy or immediate. A lazy one is
answered with 423 on the worker's next POST /task, after its current task; an
immediate one also makes /may-i-run say no, so the worker stops its task and
returns it (it goes back to the queue, it is never canceled).
"""

from __future__ import annotations

import logging
import re
import threading
import time

from shared import documents
from shared.statuses import TASK_IN_PROGRESS, WORKER_ACKNOWLEDGEABLE, WORKER_REQUESTABLE
from shared.statuses import TaskStatus as TS, WorkerStatus as WS

from .config import ManagerConfig
from .models import Store
from .task_state import TaskStateMachine, iso_now
from . import worker_auth

log = logging.getLogger(__name__)


_IN_PROGRESS = tuple(s.value for s in TASK_IN_PROGRESS)
_DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class WorkerError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class KnownWorker:
    """An authenticated worker as far as a task update needs it."""

    __slots__ = ("id", "nickname")
    resources = None

    def __init__(self, worker_id: str, nickname: str):
        self.id, self.nickname = worker_id, nickname

    @property
    def identifier(self) -> str:
        return f"{self.id} ({self.nickname})"


class Workers:
    def __init__(self, store: Store, config: ManagerConfig, state: TaskStateMachine, wakeup):
        self.store, self.config, self.state, self.wakeup = store, config, state, wakeup
        self.m = store.m
        self.changed = threading.Event()
        """Set when something the Server shows about workers changed; the reporter clears it."""
        self.types_changed = threading.Event()
        self._verified: dict[str, tuple[str, str, str]] = {}
        """worker id -> (Authorization header, secret hash, nickname): a header checked against
        that hash. Dropped when the worker signs on (its nickname may change) or is forgotten."""
        self._seen: dict[str, float] = {}
        """worker id -> when it was last heard from, not yet written (see flush_last_seen)."""

    # --- identity --------------------------------------------------------------

    def register(self, reg: documents.WorkerRegistration, address: str = "", now: float | None = None):
        now = time.time() if now is None else now
        with self.store.write():
            worker = self.m.Worker.create(
                id=worker_auth.new_worker_id(), secret_hash=worker_auth.hash_secret(reg.secret),
                nickname=reg.nickname, platform=reg.platform, supported_task_types=reg.supported_task_types,
                status=WS.AWAKE.value, last_seen=now, address=address, created=now)
        log.info("registered worker %s on %s, task types %s", worker.identifier, worker.platform,
                 ", ".join(reg.supported_task_types))
        self.changed.set()
        self.types_changed.set()
        return worker

    def authenticate(self, authorization: str | None, now: float | None = None):
        """The worker of a Basic auth header; AuthError(401) otherwise.

        A header already checked against the worker's current secret hash is not hashed
        again. Being seen is only noted in memory: `flush_last_seen` writes it, so an
        idle worker's poll costs no write transaction."""
        creds = worker_auth.parse_basic(authorization)
        if creds is None:
            raise worker_auth.AuthError(401, "worker routes need HTTP Basic auth (worker id : secret)")
        worker = self.store.row(self.m.Worker, creds[0])
        if worker is None:
            raise worker_auth.AuthError(401, "unknown worker or wrong secret; register again")
        known = self._verified.get(worker.id)
        if known is None or known[0] != authorization or known[1] != worker.secret_hash:
            if not worker_auth.check_secret(creds[1], worker.secret_hash):
                raise worker_auth.AuthError(401, "unknown worker or wrong secret; register again")
            self._verified[worker.id] = (authorization, worker.secret_hash, worker.nickname)
        self._seen[worker.id] = time.time() if now is None else now
        return worker

    def authenticate_known(self, authorization: str | None, now: float | None = None):
        """Like `authenticate`, but for a header already verified it skips reading the worker:
        a `KnownWorker` (id and nickname), enough for a task update without resources."""
        creds = worker_auth.parse_basic(authorization)
        known = self._verified.get(creds[0]) if creds else None
        if known is None or known[0] != authorization:
            return self.authenticate(authorization, now)
        self._seen[creds[0]] = time.time() if now is None else now
        return KnownWorker(creds[0], known[2])

    def last_seen(self, worker) -> float:
        return max(worker.last_seen or 0, self._seen.get(worker.id, 0))

    def flush_last_seen(self) -> int:
        """Write the noted last-seen times (one transaction); the timeout checker calls it first."""
        if not self._seen:
            return 0
        seen, self._seen = self._seen, {}
        rows = [(t, wid) for wid, t in list(seen.items())]
        with self.store.write():
            self.store.db.cursor().executemany("UPDATE worker SET last_seen = max(last_seen, ?) WHERE id = ?", rows)
        return len(rows)

    def get(self, worker_id: str):
        worker = self.store.row(self.m.Worker, worker_id)
        if worker is None:
            raise WorkerError(404, "not_found", f"worker {worker_id} does not exist")
        return worker

    # --- life cycle ------------------------------------------------------------

    def _requeue_tasks_of(self, worker, reason: str, now: float) -> int:
        T = self.m.Task
        n = 0
        for task in T.select().where((T.worker == worker.id) & (T.status.in_(_IN_PROGRESS))):
            if task.status == TS.CANCEL_REQUESTED.value:
                self.state.change_status(task, TS.CANCELED.value, worker=None, now=now,
                                         reason=f"{reason}; it was being canceled")
            else:
                self.state.requeue(task, reason, now)
            n += 1
        self.state.release_worker_task(worker.id)
        return n

    def sign_on(self, worker, doc: documents.WorkerSignOn, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.store.write():
            fields = {self.m.Worker.status: WS.STARTING.value, self.m.Worker.last_seen: now,
                      self.m.Worker.current_task: None}
            if doc.supported_task_types is not None and doc.supported_task_types != worker.supported_task_types:
                fields[self.m.Worker.supported_task_types] = doc.supported_task_types
                self.types_changed.set()
            if doc.nickname:
                fields[self.m.Worker.nickname] = doc.nickname
            if doc.tags is not None:
                fields[self.m.Worker.tags] = [t for t in doc.tags if isinstance(t, str)]
            if doc.resources is not None:
                fields[self.m.Worker.resources] = doc.resources
            if doc.software:
                fields[self.m.Worker.software] = doc.software[:200]
            self.m.Worker.update(fields).where(self.m.Worker.id == worker.id).execute()
            self._requeue_tasks_of(worker, f"worker {worker.identifier} signed on again", now)
        log.info("worker %s signed on", worker.identifier)
        self._verified.pop(worker.id, None)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)  # a long-poll from before the restart is stale

    def sign_off(self, worker, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.store.write():
            fields = {self.m.Worker.status: WS.OFFLINE.value, self.m.Worker.current_task: None}
            if worker.status == WS.ASLEEP.value and not worker.status_requested:
                # Back online, it should go to sleep again.
                fields[self.m.Worker.status_requested] = WS.ASLEEP.value
                fields[self.m.Worker.lazy_status_request] = False
            elif worker.status_requested == WS.SHUTDOWN.value:
                fields[self.m.Worker.status_requested] = None
            self.m.Worker.update(fields).where(self.m.Worker.id == worker.id).execute()
            self._requeue_tasks_of(worker, f"worker {worker.identifier} signed off", now)
        log.info("worker %s signed off", worker.identifier)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)  # its held long-poll ends (204) instead of taking a task

    def mark_awake(self, worker) -> None:
        """A worker asking for work is awake, whatever we last knew of it."""
        if worker.status != WS.AWAKE.value:
            with self.store.write():
                self.store.update_row(self.m.Worker, worker.id, status=WS.AWAKE.value)
            log.info("worker %s: %s -> awake", worker.identifier, worker.status)
            worker.status = WS.AWAKE.value
            self.changed.set()

    def request_status(self, worker_id: str, status: str, lazy: bool, now: float | None = None):
        if status not in {s.value for s in WORKER_REQUESTABLE}:
            raise WorkerError(400, "bad_status",
                              f"a worker can be asked for {', '.join(sorted(s.value for s in WORKER_REQUESTABLE))}, "
                              f"not '{status}'")
        with self.store.write():
            worker = self.get(worker_id)
            if worker.status == status and not worker.status_requested:
                return worker
            self.m.Worker.update(status_requested=status, lazy_status_request=bool(lazy)) \
                .where(self.m.Worker.id == worker.id).execute()
        log.info("worker %s: status %s requested (%s)", worker.identifier, status, "lazy" if lazy else "immediate")
        self.changed.set()
        self.wakeup.notify_worker(worker.id)
        return self.get(worker_id)

    def ack_status(self, worker, status: str, now: float | None = None) -> None:
        if status not in {s.value for s in WORKER_ACKNOWLEDGEABLE}:
            raise WorkerError(422, "bad_status", f"unknown worker status '{status}'")
        now = time.time() if now is None else now
        with self.store.write():
            fields = {self.m.Worker.status: status, self.m.Worker.last_seen: now}
            if worker.status_requested == status:
                fields[self.m.Worker.status_requested] = None
                fields[self.m.Worker.lazy_status_request] = False
            self.m.Worker.update(fields).where(self.m.Worker.id == worker.id).execute()
            if status in (WS.ASLEEP.value, WS.SHUTDOWN.value, WS.OFFLINE.value, WS.ERROR.value):
                self._requeue_tasks_of(worker, f"worker {worker.identifier} went {status}", now)
        log.info("worker %s acknowledged status %s", worker.identifier, status)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)

    def may_i_run(self, worker, task_id: str, now: float | None = None) -> documents.MayKeepRunning:
        now = time.time() if now is None else now
        T = self.m.Task
        task = self.store.row(T, task_id)
        if task is None:
            return documents.MayKeepRunning(False, reason="task unknown to this Manager")
        if task.worker != worker.id:
            return documents.MayKeepRunning(False, reason="task is assigned to another worker")
        if task.status != TS.ACTIVE.value:
            return documents.MayKeepRunning(False, reason=f"task is {task.status}")
        with self.store.write():
            self.store.update_row(T, task.id, last_worker_ping=now)
        if worker.status_requested and not worker.lazy_status_request:
            return documents.MayKeepRunning(False, reason=f"worker status change to {worker.status_requested} requested",
                                            status_requested=worker.status_requested)
        return documents.MayKeepRunning(True)

    def forget(self, worker_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.store.write():
            worker = self.get(worker_id)
            self._requeue_tasks_of(worker, f"worker {worker.identifier} was forgotten", now)
            self.m.Blocklist.delete().where(self.m.Blocklist.worker == worker.id).execute()
            self.m.Worker.delete().where(self.m.Worker.id == worker.id).execute()
        log.info("forgot worker %s", worker.identifier)
        self._verified.pop(worker.id, None)
        self._seen.pop(worker.id, None)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)
        self.types_changed.set()

    def clear_blocklist(self, worker_id: str) -> int:
        with self.store.write():
            worker = self.get(worker_id)
            n = self.m.Blocklist.delete().where(self.m.Blocklist.worker == worker.id).execute()
        self.wakeup.notify_worker(worker.id)
        return n

    def blocklist(self, worker_id: str | None = None) -> list[dict]:
        B = self.m.Blocklist
        q = B.select().order_by(B.created)
        if worker_id:
            q = q.where(B.worker == worker_id)
        return [{"worker": b.worker, "job": b.job, "task_type": b.task_type, "created": iso_now(b.created)} for b in q]

    def set_sleep_schedule(self, worker_id: str, active: bool, days: str, start: str, end: str) -> None:
        days_list = days.lower().split()
        bad = [d for d in days_list if d not in _DAYS]
        if bad:
            raise WorkerError(400, "bad_schedule", f"unknown day(s) {' '.join(bad)}; use {' '.join(_DAYS)}")
        for name, value in (("time_start", start), ("time_end", end)):
            if value and not _HHMM.match(value):
                raise WorkerError(400, "bad_schedule", f"{name} must be HH:MM, not '{value}'")
        if active and not (start and end):
            raise WorkerError(400, "bad_schedule", "an active schedule needs time_start and time_end")
        with self.store.write():
            self.get(worker_id)
            self.m.Worker.update(sleep_active=bool(active), sleep_days=" ".join(days_list), sleep_start=start,
                                 sleep_end=end, sleep_next_check=None).where(self.m.Worker.id == worker_id).execute()

    # --- documents -------------------------------------------------------------

    def info(self, worker) -> dict:
        current_job = None
        if worker.current_task:
            task = self.m.Task.get_or_none(self.m.Task.id == worker.current_task)
            current_job = task.job if task else None
        doc = documents.WorkerInfo(
            id=worker.id, nickname=worker.nickname, status=worker.status, platform=worker.platform,
            supported_task_types=list(worker.supported_task_types or []), tags=list(worker.tags or []),
            current_task=worker.current_task, current_job=current_job,
            last_seen=iso_now(self.last_seen(worker)) if self.last_seen(worker) else None,
            status_requested=worker.status_requested, resources=worker.resources)
        return doc.to_dict()

    def admin_info(self, worker) -> dict:
        out = self.info(worker)
        out.update({
            "lazy_status_request": worker.lazy_status_request, "last_activity": worker.last_activity,
            "software": worker.software, "address": worker.address,
            "sleep_schedule": {"schedule_active": worker.sleep_active, "days_of_week": worker.sleep_days,
                               "time_start": worker.sleep_start, "time_end": worker.sleep_end,
                               "next_check": iso_now(worker.sleep_next_check) if worker.sleep_next_check else None},
            "blocklist": self.blocklist(worker.id),
        })
        return out
