"""Work for the job panel that must not run on Blender's main thread.

Each piece of work (refresh the job list, cancel a job, fetch outputs) is a
plain function returning one small dataclass message. A Runner runs it on a
daemon thread and queues the message; a bpy.app.timers callback drains the
queue on the main thread and applies it to the UI. In background mode
(`blender -b`) the Runner runs the function at once, so scripts see the result
when the operator returns.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable

from . import job_types as job_types_mod, outputs as outputs_mod
from .client import Client, ClientError, NotFound
from .connection import managers_for_project
from .joblist import ACTIONS
from .sharedcode import variables as variables_mod

log = logging.getLogger(__name__)

THUMBNAIL_JOBS = 3
"""How many of the newest jobs get a latest-frame thumbnail per refresh."""


@dataclass
class JobsUpdated:
    docs: list[dict]
    thumbnails: dict[str, str] = field(default_factory=dict)


@dataclass
class JobsFailed:
    message: str


@dataclass
class ActionDone:
    job_id: str
    action: str
    status: str
    message: str
    doc: dict | None = None
    """The job as the Server answered the action (its row is redrawn from it)."""


@dataclass
class ActionFailed:
    job_id: str
    action: str
    message: str


@dataclass
class OutputsFetched:
    job_id: str
    files: list[str]
    folder: str
    message: str


@dataclass
class OutputsFailed:
    job_id: str
    message: str


@dataclass
class ServerInfo:
    """What the panel needs from the Server besides jobs: job types, path variables, worker tags."""
    job_types: list
    variables: "variables_mod.Variables | None" = None
    worker_tags: list[str] | None = None
    """The tags the project's workers have; None when the Server cannot say (an older Server)."""


@dataclass
class ServerInfoFailed:
    message: str


def farm_variables(client: Client, project: str, manager: str = "") -> variables_mod.Variables:
    """The two-way variables of the Manager(s) that run this project's jobs, merged."""
    managers = client.managers()
    chosen = [m for m in managers if manager and manager in (str(m.get("name")), str(m.get("id")))]
    if not chosen:
        chosen = managers_for_project(managers, project)
    merged = variables_mod.Variables()
    for m in chosen:
        raw = m.get("variables")
        if isinstance(raw, dict) and raw:
            try:
                merged = merged.merged(variables_mod.Variables.from_dict(raw))
            except variables_mod.VariableError as ex:
                log.warning("manager %s has unusable variables: %s", m.get("name"), ex)
    return merged


def fetch_server_info(client: Client, project: str = "", manager: str = "",
                      with_variables: bool = False) -> ServerInfo | ServerInfoFailed:
    """Job types (after checking the API version), and the variables for shared storage."""
    try:
        client.check_version()
        types = job_types_mod.parse_job_types(client.job_types())
        variables = farm_variables(client, project, manager) if with_variables and project else None
    except (ClientError, job_types_mod.JobTypeError) as ex:
        return ServerInfoFailed(str(ex))
    try:
        tags = client.worker_tags(project)
    except NotFound:
        tags = None
    except ClientError as ex:
        log.info("no worker tags: %s", ex)
        tags = None
    return ServerInfo(types, variables, tags)


def fetch_jobs(client: Client, project: str, limit: int, cache_dir: str | None,
               mine: bool = True) -> JobsUpdated | JobsFailed:
    """The newest jobs of the project: the artist's own, or everyone's."""
    try:
        docs = client.jobs(project=project or None, limit=limit, mine=1 if mine else None)
    except ClientError as ex:
        return JobsFailed(ex.message)
    thumbs: dict[str, str] = {}
    if cache_dir:
        recent = [d for d in docs if isinstance(d, dict) and d.get("status") in ("active", "completed")]
        for doc in recent[:THUMBNAIL_JOBS]:
            try:
                outs = client.job_outputs(str(doc["id"]))
            except ClientError as ex:
                log.info("no outputs for job %s: %s", doc.get("id"), ex)
                continue
            path = outputs_mod.thumbnail(client, str(doc["id"]), outs, cache_dir)
            if path:
                thumbs[str(doc["id"])] = path
    return JobsUpdated(docs, thumbs)


def job_action(client: Client, job_id: str, action: str) -> ActionDone | ActionFailed:
    status = ACTIONS[action]
    try:
        doc = client.set_job_status(job_id, str(status.value))
    except ClientError as ex:
        return ActionFailed(job_id, action, f"Could not {action} the job: {ex.message}")
    if not isinstance(doc, dict) or str(doc.get("id")) != str(job_id):
        doc = None
    return ActionDone(job_id, action, str(doc["status"]) if doc else str(status.value),
                      f"Asked the Server to {action} the job.", doc)


def fetch_job_outputs(client: Client, job_id: str, local_output: str) -> OutputsFetched | OutputsFailed:
    try:
        outs = client.job_outputs(job_id)
        written = outputs_mod.fetch_outputs(client, job_id, outs, local_output)
    except (ClientError, outputs_mod.OutputError) as ex:
        return OutputsFailed(job_id, str(ex))
    except OSError as ex:
        return OutputsFailed(job_id, f"Could not write the outputs: {ex.strerror or ex}")
    folder = os.path.dirname(local_output) if local_output else ""
    if not outs:
        return OutputsFetched(job_id, [], folder, "The job has no outputs yet.")
    return OutputsFetched(job_id, written, folder,
                          f"Fetched {len(written)} new of {len(outs)} outputs into {folder}.")


class Runner:
    """Runs one function per key at a time on a daemon thread; messages go on a queue."""

    def __init__(self, synchronous: bool = False):
        self.synchronous = synchronous
        self.messages: queue.Queue = queue.Queue()
        self._busy: set[str] = set()
        self._lock = threading.Lock()

    def busy(self, key: str) -> bool:
        with self._lock:
            return key in self._busy

    def submit(self, key: str, fn: Callable[[], object]) -> bool:
        """Start `fn`; False (and nothing started) when work under `key` is still running."""
        with self._lock:
            if key in self._busy:
                return False
            self._busy.add(key)
        if self.synchronous:
            self._run(key, fn)
        else:
            threading.Thread(target=self._run, args=(key, fn), name=f"flamenco-{key}", daemon=True).start()
        return True

    def _run(self, key: str, fn: Callable[[], object]) -> None:
        try:
            msg = fn()
        except Exception as ex:  # noqa: BLE001 - a thread: report, never raise
            log.exception("background work %s failed", key)
            msg = JobsFailed(f"Unexpected error: {ex!r}")
        finally:
            with self._lock:
                self._busy.discard(key)
        self.messages.put(msg)

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out
