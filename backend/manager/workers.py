"""Worker life cycle: registration, authentication, sign-on/off, status requests and their acks.

Every status a worker takes goes through `set_status`, which checks it against
shared.statuses' WORKER_TRANSITIONS. Status requests (asleep, awake,
shutdown) are lazy or immediate. A lazy one is answered with 423 on the
worker's next POST /task, after its current task; an immediate one also makes
/may-i-run say no, so the worker stops its task and returns it (it goes back
to the queue, it is never canceled).
"""

from __future__ import annotations

import logging
import re
import threading
import time

from backend.errors import ApiError, not_found
from shared import documents, statuses
from shared.statuses import WORKER_ACKNOWLEDGEABLE, WORKER_REQUESTABLE, TaskStatus as TS, WorkerStatus as WS
from shared.timefmt import iso_utc

from . import worker_auth
from .config import ManagerConfig
from .persistence import Persistence
from .state_machine import TaskStateMachine
from .wakeup import Wakeup

log = logging.getLogger(__name__)

DAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

MAX_TAGS, MAX_TAG_CHARS = 50, 100

GONE = frozenset({WS.ASLEEP, WS.SHUTDOWN, WS.OFFLINE, WS.ERROR})
"""A worker that acknowledges one of these runs nothing any more."""


class KnownWorker:
    """An authenticated worker as far as a task update needs it."""

    __slots__ = ("id", "nickname")
    resources = None

    def __init__(self, worker_id: str, nickname: str):
        self.id, self.nickname = worker_id, nickname

    @property
    def identifier(self) -> str:
        return f"{self.id} ({self.nickname})"


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, {"WWW-Authenticate": 'Basic realm="Flamenco Manager"'})


class Workers:
    def __init__(self, db: Persistence, config: ManagerConfig, state: TaskStateMachine, wakeup: Wakeup):
        self.db, self.config, self.state, self.wakeup = db, config, state, wakeup
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
        with self.db.write():
            worker = self.db.workers.create(
                id=worker_auth.new_worker_id(), secret_hash=worker_auth.hash_secret(reg.secret),
                nickname=reg.nickname, platform=reg.platform, supported_task_types=reg.supported_task_types,
                status=WS.AWAKE, last_seen=now, address=address, created=now)
        log.info("registered worker %s on %s, task types %s", worker.identifier, worker.platform,
                 ", ".join(reg.supported_task_types))
        self.changed.set()
        self.types_changed.set()
        return worker

    def authenticate(self, authorization: str | None, now: float | None = None):
        """The worker of a Basic auth header; ApiError(401) otherwise.

        A header already checked against the worker's current secret hash is not hashed
        again. Being seen is only noted in memory: `flush_last_seen` writes it, so an
        idle worker's poll costs no write transaction."""
        creds = worker_auth.parse_basic(authorization)
        if creds is None:
            raise unauthorized("worker routes need HTTP Basic auth (worker id : secret)")
        worker = self.db.workers.get(creds[0])
        if worker is None:
            raise unauthorized("unknown worker or wrong secret; register again")
        known = self._verified.get(worker.id)
        if known is None or known[0] != authorization or known[1] != worker.secret_hash:
            if not worker_auth.check_secret(creds[1], worker.secret_hash):
                raise unauthorized("unknown worker or wrong secret; register again")
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
        with self.db.write():
            self.db.workers.note_seen(seen)
        return len(seen)

    def get(self, worker_id: str):
        self.db.ensure_connected()
        worker = self.db.workers.get(worker_id)
        if worker is None:
            raise not_found(f"worker {worker_id} does not exist")
        return worker

    # --- status ------------------------------------------------------------------

    def set_status(self, worker, new: str, reason: str = "", **fields) -> bool:
        """Move the worker to `new` (with other fields in the same write); False, and nothing
        written, when WORKER_TRANSITIONS forbids it. Callers hold a write transaction."""
        old = worker.status
        if not statuses.allowed("worker", old, new):
            log.warning("worker %s: refusing status change %s -> %s (%s)", worker.identifier, old, new, reason)
            return False
        self.db.workers.update(worker.id, status=new, **fields)
        worker.status = new
        if old != new:
            log.info("worker %s: %s -> %s%s", worker.identifier, old, new, f" ({reason})" if reason else "")
            self.changed.set()
        return True

    # --- life cycle ------------------------------------------------------------

    def sign_on(self, worker, doc: documents.WorkerSignOn, now: float | None = None) -> None:
        now = time.time() if now is None else now
        fields = {"last_seen": now, "current_task": None}
        if doc.supported_task_types is not None and doc.supported_task_types != worker.supported_task_types:
            fields["supported_task_types"] = doc.supported_task_types
            self.types_changed.set()
        if doc.nickname:
            fields["nickname"] = doc.nickname
        if doc.tags is not None and self.db.workers.admin_tags(worker.id) is None:
            fields["tags"] = [t for t in doc.tags if isinstance(t, str)]
        if doc.resources is not None:
            fields["resources"] = doc.resources
        if doc.software:
            fields["software"] = doc.software[:200]
        with self.db.write():
            self.set_status(worker, WS.STARTING, "signed on", **fields)
            self.state.requeue_worker_tasks(worker, f"worker {worker.identifier} signed on again", now)
        self._verified.pop(worker.id, None)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)  # a long-poll from before the restart is stale

    def sign_off(self, worker, now: float | None = None) -> None:
        now = time.time() if now is None else now
        fields = {"current_task": None}
        if worker.status == WS.ASLEEP and not worker.status_requested:
            # Back online, it should go to sleep again.
            fields.update(status_requested=WS.ASLEEP, lazy_status_request=False)
        elif worker.status_requested == WS.SHUTDOWN:
            fields["status_requested"] = None
        with self.db.write():
            self.set_status(worker, WS.OFFLINE, "signed off", **fields)
            self.state.requeue_worker_tasks(worker, f"worker {worker.identifier} signed off", now)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)  # its held long-poll ends (204) instead of taking a task

    def mark_awake(self, worker) -> None:
        """A worker asking for work is awake, whatever we last knew of it."""
        if worker.status != WS.AWAKE:
            with self.db.write():
                self.set_status(worker, WS.AWAKE, "asks for work")

    def request_status(self, worker_id: str, status: str, lazy: bool, now: float | None = None):
        if status not in WORKER_REQUESTABLE:
            raise ApiError(400, "bad_status", f"a worker can be asked for "
                                              f"{', '.join(sorted(WORKER_REQUESTABLE))}, not '{status}'")
        with self.db.write():
            worker = self.get(worker_id)
            if worker.status == status and not worker.status_requested:
                return worker
            self.db.workers.update(worker.id, status_requested=status, lazy_status_request=bool(lazy))
        log.info("worker %s: status %s requested (%s)", worker.identifier, status, "lazy" if lazy else "immediate")
        self.changed.set()
        self.wakeup.notify_worker(worker.id)
        return self.get(worker_id)

    def ack_status(self, worker, status: str, now: float | None = None) -> None:
        if status not in WORKER_ACKNOWLEDGEABLE:
            raise ApiError(422, "bad_status", f"unknown worker status '{status}'")
        now = time.time() if now is None else now
        fields = {"last_seen": now}
        if worker.status_requested == status:
            fields.update(status_requested=None, lazy_status_request=False)
        with self.db.write():
            if not self.set_status(worker, status, "acknowledged", **fields):
                raise ApiError(409, "invalid_transition", f"worker cannot go from '{worker.status}' to '{status}'")
            if status in GONE:
                self.state.requeue_worker_tasks(worker, f"worker {worker.identifier} went {status}", now)
        self.wakeup.notify_worker(worker.id)

    def ack_timeout(self, worker_id: str):
        """The admin saw that a worker timed out: it is offline."""
        with self.db.write():
            worker = self.get(worker_id)
            if worker.status != WS.TIMEOUT:
                raise ApiError(409, "not_timed_out", f"worker {worker_id} is {worker.status}, not timeout")
            self.set_status(worker, WS.OFFLINE, "timeout acknowledged by the admin")
        return worker

    def timed_out(self, worker, reason: str, now: float) -> int:
        """Not heard from in time: 'timeout', and its tasks back to the queue. Callers hold a write."""
        self.set_status(worker, WS.TIMEOUT, reason, current_task=None)
        return self.state.requeue_worker_tasks(worker, reason, now)

    def may_i_run(self, worker, task_id: str, now: float | None = None) -> documents.MayKeepRunning:
        now = time.time() if now is None else now
        task = self.db.tasks.get(task_id)
        if task is None:
            return documents.MayKeepRunning(False, reason="task unknown to this Manager")
        if task.worker != worker.id:
            return documents.MayKeepRunning(False, reason="task is assigned to another worker")
        if task.status != TS.ACTIVE:
            return documents.MayKeepRunning(False, reason=f"task is {task.status}")
        with self.db.write():
            self.db.tasks.ping(task.id, now)
        if worker.status_requested and not worker.lazy_status_request:
            return documents.MayKeepRunning(False, reason=f"worker status change to {worker.status_requested} requested",
                                            status_requested=worker.status_requested)
        return documents.MayKeepRunning(True)

    def output_produced(self, worker, now: float) -> bool:
        """Whether the worker may show a new latest image now (at most one per interval); notes it."""
        if now - (worker.last_output_produced or 0) < self.config.scheduling.output_produced_min_interval:
            return False
        with self.db.write():
            self.db.workers.update(worker.id, last_output_produced=now)
        return True

    def forget(self, worker_id: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.db.write():
            worker = self.get(worker_id)
            self.state.requeue_worker_tasks(worker, f"worker {worker.identifier} was forgotten", now)
            self.db.workers.delete(worker.id)
        log.info("forgot worker %s", worker.identifier)
        self._verified.pop(worker.id, None)
        self._seen.pop(worker.id, None)
        self.changed.set()
        self.wakeup.notify_worker(worker.id)
        self.types_changed.set()

    def clear_blocklist(self, worker_id: str) -> int:
        with self.db.write():
            worker = self.get(worker_id)
            n = self.db.workers.clear_blocklist(worker.id)
        self.wakeup.notify_worker(worker.id)
        return n

    def set_tags(self, worker_id: str, tags) -> None:
        """The admin's tags for the worker; they stay when it signs on again with its own."""
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ApiError(400, "bad_tags", "give {\"tags\": [\"tag\", ...]}")
        clean = sorted({t.strip() for t in tags if t.strip()})
        if len(clean) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in clean):
            raise ApiError(400, "bad_tags", f"at most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters")
        with self.db.write():
            worker = self.get(worker_id)
            self.db.workers.set_admin_tags(worker.id, clean)
        log.info("worker %s: tags set to %s by the admin", worker.identifier, ", ".join(clean) or "(none)")
        self.changed.set()
        self.wakeup.notify_worker(worker.id)  # a task for its new tags may be waiting

    def blocklist(self, worker_id: str | None = None) -> list[dict]:
        return [{"worker": b.worker, "job": b.job, "task_type": b.task_type, "created": iso_utc(b.created)}
                for b in self.db.workers.blocklist(worker_id)]

    def set_sleep_schedule(self, worker_id: str, active: bool, days: str, start: str, end: str) -> None:
        days_list = days.lower().split()
        bad = [d for d in days_list if d not in DAYS]
        if bad:
            raise ApiError(400, "bad_schedule", f"unknown day(s) {' '.join(bad)}; use {' '.join(DAYS)}")
        for name, value in (("time_start", start), ("time_end", end)):
            if value and not _HHMM.match(value):
                raise ApiError(400, "bad_schedule", f"{name} must be HH:MM, not '{value}'")
        if active and not (start and end):
            raise ApiError(400, "bad_schedule", "an active schedule needs time_start and time_end")
        with self.db.write():
            self.get(worker_id)
            self.db.workers.update(worker_id, sleep_active=bool(active), sleep_days=" ".join(days_list),
                                   sleep_start=start, sleep_end=end, sleep_next_check=None)

    # --- documents -------------------------------------------------------------

    def info(self, worker, running: dict[str, list] | None = None) -> dict:
        """The WorkerInfo of a worker; `running` is `db.tasks.running_by_worker()` when the
        caller describes many workers (read here for this one otherwise)."""
        if running is None:
            running = self.db.tasks.running_by_worker(worker.id) if worker.current_task else {}
        tasks = [documents.RunningTask(id=tid, job=job, name=name, needs=needs)
                 for tid, job, name, needs in running.get(worker.id, [])]
        current_job = next((t.job for t in tasks if t.id == worker.current_task), None)
        seen = self.last_seen(worker)
        doc = documents.WorkerInfo(
            id=worker.id, nickname=worker.nickname, status=worker.status, platform=worker.platform,
            supported_task_types=list(worker.supported_task_types or []), tags=list(worker.tags or []),
            current_task=worker.current_task if current_job else None, current_job=current_job,
            last_seen=iso_utc(seen) if seen else None, status_requested=worker.status_requested,
            resources=worker.resources, running_tasks=tasks)
        return doc.to_dict()

    def infos(self) -> list[dict]:
        """The WorkerInfo of every worker, their running tasks read in one go."""
        running = self.db.tasks.running_by_worker()
        return [self.info(w, running) for w in self.db.workers.all()]

    def admin_info(self, worker, running: dict[str, list] | None = None) -> dict:
        out = self.info(worker, running)
        out.update({
            "lazy_status_request": worker.lazy_status_request, "last_activity": worker.last_activity,
            "software": worker.software, "address": worker.address,
            "sleep_schedule": {"schedule_active": worker.sleep_active, "days_of_week": worker.sleep_days,
                               "time_start": worker.sleep_start, "time_end": worker.sleep_end,
                               "next_check": iso_utc(worker.sleep_next_check) if worker.sleep_next_check else None},
            "blocklist": self.blocklist(worker.id),
        })
        return out
