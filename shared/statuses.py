"""Job, task and worker statuses, and the transitions allowed between them.

This is the one place where statuses are defined. Server and Manager both
import these tables; routes never assign a status directly but go through
their state machine, which checks its moves against these tables.
"""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    WAITING_FOR_FILES = "waiting-for-files"
    UNDER_CONSTRUCTION = "under-construction"
    CONSTRUCTION_FAILED = "construction-failed"
    PAUSE_REQUESTED = "pause-requested"
    PAUSED = "paused"
    QUEUED = "queued"
    REQUEUED = "requeued"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCEL_REQUESTED = "cancel-requested"
    CANCELED = "canceled"
    FAIL_REQUESTED = "fail-requested"
    FAILED = "failed"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"

    def __str__(self) -> str:
        return self.value


class TaskStatus(str, Enum):
    UNDER_CONSTRUCTION = "under-construction"
    PAUSED = "paused"
    QUEUED = "queued"
    CLAIMED_BY_MANAGER = "claimed-by-manager"
    ACTIVE = "active"
    CANCEL_REQUESTED = "cancel-requested"
    CANCELED = "canceled"
    FAILED = "failed"
    SOFT_FAILED = "soft-failed"
    COMPLETED = "completed"

    def __str__(self) -> str:
        return self.value


class WorkerStatus(str, Enum):
    STARTING = "starting"
    AWAKE = "awake"
    ASLEEP = "asleep"
    ERROR = "error"
    TESTING = "testing"
    TIMEOUT = "timeout"
    SHUTDOWN = "shutdown"
    OFFLINE = "offline"

    def __str__(self) -> str:
        return self.value


J, T, W = JobStatus, TaskStatus, WorkerStatus

# --- Jobs -------------------------------------------------------------------

JOB_FINAL = frozenset({J.COMPLETED, J.CANCELED, J.FAILED, J.ARCHIVED, J.CONSTRUCTION_FAILED})
"""Nothing happens to a job in these statuses unless someone requeues it (a construction-failed
job cannot even be requeued): what a client watching a job waits for."""

JOB_DELETABLE = frozenset({J.COMPLETED, J.CANCELED, J.FAILED, J.CONSTRUCTION_FAILED,
                           J.PAUSED, J.WAITING_FOR_FILES, J.ARCHIVED})

JOB_RUNNABLE = frozenset({J.QUEUED, J.ACTIVE})
"""Jobs whose tasks may be handed to a Manager."""

JOB_REQUESTED = {J.CANCEL_REQUESTED: J.CANCELED, J.FAIL_REQUESTED: J.FAILED,
                 J.PAUSE_REQUESTED: J.PAUSED}
"""'-requested' statuses and what they settle to once no task is running."""

# Transitions a person (or the API on their behalf) may ask for.
JOB_USER_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.QUEUED: frozenset({J.CANCEL_REQUESTED, J.PAUSE_REQUESTED, J.FAIL_REQUESTED, J.REQUEUED}),
    J.ACTIVE: frozenset({J.CANCEL_REQUESTED, J.PAUSE_REQUESTED, J.FAIL_REQUESTED, J.REQUEUED}),
    J.PAUSE_REQUESTED: frozenset({J.CANCEL_REQUESTED, J.QUEUED}),
    J.PAUSED: frozenset({J.QUEUED, J.CANCEL_REQUESTED, J.REQUEUED}),
    J.CANCEL_REQUESTED: frozenset(),
    J.FAIL_REQUESTED: frozenset(),
    J.COMPLETED: frozenset({J.REQUEUED}),
    J.CANCELED: frozenset({J.REQUEUED}),
    J.FAILED: frozenset({J.REQUEUED}),
    J.CONSTRUCTION_FAILED: frozenset(),
    J.WAITING_FOR_FILES: frozenset({J.CANCELED}),
    J.UNDER_CONSTRUCTION: frozenset(),
    J.REQUEUED: frozenset(),
    J.ARCHIVING: frozenset(),
    J.ARCHIVED: frozenset(),
}


def requeue_moves(job_status: JobStatus | str, failed_only: bool = False) -> frozenset[TaskStatus]:
    """The task statuses a requeue of a job in `job_status` sets back to queued.

    A queued or active job's queued and running tasks are left alone, so there a
    requeue only retries what failed, was canceled or paused; a completed job runs
    everything again. `failed_only` ('requeue-failed') takes failed and canceled ones.
    """
    if failed_only:
        return frozenset({T.FAILED, T.CANCELED})
    if J(job_status) == J.COMPLETED:
        return frozenset({T.COMPLETED, T.FAILED, T.CANCELED, T.SOFT_FAILED, T.PAUSED})
    return frozenset({T.FAILED, T.CANCELED, T.SOFT_FAILED, T.PAUSED})


def requeue_changes_something(job_status: JobStatus | str, task_counts: dict[str, int],
                              failed_only: bool = False) -> bool:
    """Whether requeueing a job with these task counts (status -> number) would move any task."""
    return any(task_counts.get(s.value, 0) > 0 for s in requeue_moves(job_status, failed_only))


# Every transition the state machine itself may make (user requests plus roll-ups).
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    J.WAITING_FOR_FILES: frozenset({J.UNDER_CONSTRUCTION, J.CANCELED}),
    J.UNDER_CONSTRUCTION: frozenset({J.QUEUED, J.PAUSED, J.CONSTRUCTION_FAILED}),
    J.CONSTRUCTION_FAILED: frozenset(),
    J.QUEUED: frozenset({J.ACTIVE, J.COMPLETED, J.FAILED, J.CANCELED, J.PAUSED}) | JOB_USER_TRANSITIONS[J.QUEUED],
    J.REQUEUED: frozenset({J.QUEUED, J.COMPLETED}),
    J.ACTIVE: frozenset({J.QUEUED, J.COMPLETED, J.FAILED, J.CANCELED, J.PAUSED}) | JOB_USER_TRANSITIONS[J.ACTIVE],
    J.PAUSE_REQUESTED: frozenset({J.PAUSED, J.CANCELED, J.FAILED, J.FAIL_REQUESTED})
    | JOB_USER_TRANSITIONS[J.PAUSE_REQUESTED],
    J.PAUSED: JOB_USER_TRANSITIONS[J.PAUSED] | frozenset({J.FAILED, J.CANCELED, J.FAIL_REQUESTED}),
    J.CANCEL_REQUESTED: frozenset({J.CANCELED}),
    J.FAIL_REQUESTED: frozenset({J.FAILED}),
    J.COMPLETED: frozenset({J.REQUEUED, J.QUEUED, J.ARCHIVING}),
    J.CANCELED: frozenset({J.REQUEUED, J.ARCHIVING}),
    J.FAILED: frozenset({J.REQUEUED, J.ARCHIVING}),
    J.ARCHIVING: frozenset({J.ARCHIVED}),
    J.ARCHIVED: frozenset(),
}

# --- Tasks ------------------------------------------------------------------

TASK_RUNNABLE = frozenset({T.QUEUED, T.CLAIMED_BY_MANAGER, T.SOFT_FAILED})
"""A task in one of these may be given to a worker (when its parents completed)."""

TASK_IN_PROGRESS = frozenset({T.ACTIVE, T.CANCEL_REQUESTED})
"""A worker may be running a task in one of these."""

TASK_FINAL = frozenset({T.COMPLETED, T.CANCELED, T.FAILED})

TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    T.UNDER_CONSTRUCTION: frozenset({T.QUEUED, T.PAUSED, T.CANCELED}),  # canceled: stored after its job stopped
    T.PAUSED: frozenset({T.QUEUED, T.CANCELED, T.FAILED}),
    T.QUEUED: frozenset({T.CLAIMED_BY_MANAGER, T.ACTIVE, T.CANCELED, T.PAUSED, T.FAILED,
                         T.COMPLETED, T.SOFT_FAILED, T.CANCEL_REQUESTED}),
    T.CLAIMED_BY_MANAGER: frozenset({T.QUEUED, T.ACTIVE, T.CANCEL_REQUESTED, T.CANCELED,
                                     T.PAUSED, T.FAILED, T.SOFT_FAILED, T.COMPLETED}),
    T.ACTIVE: frozenset({T.COMPLETED, T.FAILED, T.SOFT_FAILED, T.CANCELED, T.CANCEL_REQUESTED,
                         T.CLAIMED_BY_MANAGER, T.QUEUED}),
    T.SOFT_FAILED: frozenset({T.ACTIVE, T.QUEUED, T.CLAIMED_BY_MANAGER, T.FAILED, T.CANCELED,
                              T.CANCEL_REQUESTED, T.PAUSED, T.COMPLETED}),
    T.CANCEL_REQUESTED: frozenset({T.CANCELED, T.FAILED, T.COMPLETED, T.QUEUED, T.PAUSED}),
    T.CANCELED: frozenset({T.QUEUED}),
    T.FAILED: frozenset({T.QUEUED}),
    T.COMPLETED: frozenset({T.QUEUED}),
}

TASK_CANCEL_REQUESTED_ACCEPTS = frozenset({T.CANCELED, T.FAILED, T.COMPLETED})
"""A task whose cancellation was requested only takes these from a worker/manager."""

# --- Workers ----------------------------------------------------------------

WORKER_REQUESTABLE = frozenset({W.ASLEEP, W.AWAKE, W.SHUTDOWN})
"""Statuses an admin (or the sleep schedule) may request of a worker."""

WORKER_ACKNOWLEDGEABLE = frozenset({W.ASLEEP, W.AWAKE, W.SHUTDOWN, W.ERROR, W.TESTING, W.TIMEOUT,
                                    W.OFFLINE, W.STARTING})

WORKER_TRANSITIONS: dict[WorkerStatus, frozenset[WorkerStatus]] = {
    W.STARTING: frozenset({W.AWAKE, W.ASLEEP, W.ERROR, W.TESTING, W.SHUTDOWN, W.OFFLINE, W.TIMEOUT}),
    W.AWAKE: frozenset({W.ASLEEP, W.ERROR, W.SHUTDOWN, W.OFFLINE, W.TIMEOUT, W.STARTING, W.TESTING}),
    W.ASLEEP: frozenset({W.AWAKE, W.ERROR, W.SHUTDOWN, W.OFFLINE, W.TIMEOUT, W.STARTING}),
    W.ERROR: frozenset({W.AWAKE, W.ASLEEP, W.SHUTDOWN, W.OFFLINE, W.TIMEOUT, W.STARTING}),
    W.TESTING: frozenset({W.AWAKE, W.ASLEEP, W.SHUTDOWN, W.OFFLINE, W.TIMEOUT, W.STARTING}),
    W.TIMEOUT: frozenset({W.OFFLINE, W.STARTING, W.AWAKE, W.ASLEEP}),
    W.SHUTDOWN: frozenset({W.OFFLINE, W.STARTING, W.AWAKE}),  # awake: it asks for work after all
    W.OFFLINE: frozenset({W.STARTING, W.AWAKE, W.ASLEEP}),
}


class TransitionError(ValueError):
    """An asked-for status change that the tables do not allow."""

    def __init__(self, kind: str, old: str, new: str):
        super().__init__(f"{kind} cannot go from '{old}' to '{new}'")
        self.kind, self.old, self.new = kind, old, new


_TABLES = {"job": (JobStatus, JOB_TRANSITIONS), "task": (TaskStatus, TASK_TRANSITIONS),
           "worker": (WorkerStatus, WORKER_TRANSITIONS)}


def allowed(kind: str, old: str, new: str) -> bool:
    """Whether `kind` ('job', 'task' or 'worker') may go from old to new.

    Staying in the same status is always allowed: it changes nothing.
    """
    enum, table = _TABLES[kind]
    old_s, new_s = enum(old), enum(new)
    return old_s == new_s or new_s in table[old_s]


def check(kind: str, old: str, new: str) -> None:
    if not allowed(kind, old, new):
        raise TransitionError(kind, str(old), str(new))


def parse(enum: type[Enum], value: str):
    """The member of `enum` for `value`, or ValueError naming the allowed values."""
    try:
        return enum(value)
    except ValueError:
        names = ", ".join(m.value for m in enum)
        raise ValueError(f"unknown status '{value}', expected one of: {names}") from None
