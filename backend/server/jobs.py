"""Submitting, listing and deleting jobs: checks first, then one write transaction.

Submission: check the request, the settings (against the job type's schema),
the files and dependencies, pick the Manager, compile in memory, then store
the job and all its tasks (bulk inserts) and flip them from under-construction
to queued in one transaction. Nothing is written for a request that fails a
check; a compiler that crashes leaves a construction-failed job with the reason.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import peewee

from backend.web import ApiError, bad_request, conflict, forbidden, not_found
from shared.checksums import is_sha256
from shared.chunking import chunks
from shared.relpaths import RelpathError, check_relpath
from shared.statuses import JOB_DELETABLE, TASK_IN_PROGRESS, TASK_RUNNABLE, JobStatus, TaskStatus

from . import blobs, waiting
from .admin import find_manager, find_project, visible_project_ids
from .changes import job_topics
from .compilers import CompileContext, JobType, SettingError, TaskSpec
from .context import ServerContext
from .models import (Blob, Job, JobDependency, JobFile, JobLogEntry, JobOutput, LogRequest, Manager, Project,
                     ProjectManager, Task, TaskRun, User, WorkerRecord, bulk_insert, stamp_value, time_ordered_id,
                     utcnow)
from .task_storing import Remaining, set_script_policy, store_rows, task_rows
from .views import job_doc

log = logging.getLogger(__name__)

SUBMIT_KEYS = {"name", "type", "settings", "priority", "project", "manager", "depends_on", "start_paused",
               "worker_tag", "memory_mb", "files", "metadata"}
MAX_DEPENDENCIES = 100
MAX_FILES = 100_000
VALIDATE_KEYS = SUBMIT_KEYS | {"files_mode"}
FILES_MODES = ("shared", "upload")
TASK_WAITING = TASK_RUNNABLE | {TaskStatus.PAUSED}
"""Tasks that will run without being requeued."""
_DEAD_DEPENDENCY = frozenset({JobStatus.FAILED, JobStatus.CANCELED, JobStatus.CONSTRUCTION_FAILED,
                              JobStatus.CANCEL_REQUESTED, JobStatus.FAIL_REQUESTED})
"""A job in one of these will never complete: depending on it is refused."""


def _who(user: User) -> str:
    return f"user {user.name}"


# --- reading --------------------------------------------------------------------

def get_visible_job(user: User, job_id: str) -> Job:
    """The job if the user may see it; 404 otherwise (whether or not it exists)."""
    job = Job.get_or_none(Job.id == job_id)
    if job is None:
        raise not_found(f"no job '{job_id}'")
    projects = visible_project_ids(user)
    if projects is not None and job.project_id not in projects:
        raise not_found(f"no job '{job_id}'")
    return job


def get_visible_task(user: User, tid: str) -> tuple[Task, Job]:
    task = Task.get_or_none(Task.id == tid)
    if task is None:
        raise not_found(f"no task '{tid}'")
    try:
        job = get_visible_job(user, task.job_id)
    except ApiError:
        raise not_found(f"no task '{tid}'") from None
    return task, job


def _depends_on(job_ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if job_ids:
        for jid, dep in JobDependency.select(JobDependency.job, JobDependency.depends_on).where(
                JobDependency.job.in_(job_ids)).tuples():
            out.setdefault(jid, []).append(dep)
    return out


def _with_names(query):
    """The query's jobs as dicts, with the names of their project, manager and user joined in."""
    return (query.select_extend(Project.name.alias("project_name"), Manager.name.alias("manager_name"),
                                User.name.alias("user_name"))
            .join(Project, on=(Job.project == Project.id))
            .switch(Job).join(Manager, peewee.JOIN.LEFT_OUTER, on=(Job.manager == Manager.id))
            .switch(Job).join(User, peewee.JOIN.LEFT_OUTER, on=(Job.user == User.id))
            .dicts())


def job_docs_from_rows(rows: list[dict[str, Any]], pending: dict[str, set[str]] | None = None) -> list[dict[str, Any]]:
    deps = _depends_on([r["id"] for r in rows])
    docs = [job_doc(r, deps.get(r["id"])) for r in rows]
    waiting.explain(docs, pending)
    return docs


def job_docs(jobs: list[Job], pending: dict[str, set[str]] | None = None) -> list[dict[str, Any]]:
    """`pending`: the task types still waiting per job, when the caller knows them (waiting.explain)."""
    if not jobs:
        return []
    rows = {r["id"]: r for r in _with_names(Job.select().where(Job.id.in_([j.id for j in jobs])))}
    return job_docs_from_rows([rows[j.id] for j in jobs], pending)


SORTS = {"created": Job.id, "name": Job.name, "status": Job.status, "priority": Job.priority,
         "type": Job.job_type, "updated": Job.updated}


def _order(sort: str | None) -> list:
    """ORDER BY for a `sort` word ('name', '-priority', ...): newest first unless asked otherwise."""
    word = sort or "-created"
    desc = word.startswith("-")
    column = SORTS.get(word.lstrip("-"))
    if column is None:
        raise bad_request(f"sort must be one of {', '.join(SORTS)} (with '-' for descending), not '{word}'",
                          "invalid_query")
    order = [column.desc() if desc else column.asc()]
    if column is not Job.id:
        order.append(Job.id.desc())
    return order


def list_jobs(user: User, status: str | None, project: str | None, manager: str | None,
              job_type: str | None, limit: int, offset: int, before: str | None = None,
              submitter: str | None = None, q: str | None = None, sort: str | None = None) -> dict[str, Any]:
    """A page of jobs, newest first (or by `sort`): the page's ids from an index first, then only those rows.

    `submitter` (a user's id or name) keeps the jobs that user submitted ("my jobs"); `q` keeps the jobs whose
    name or submitter's name contains it."""
    conds = []
    order = _order(sort)
    projects = visible_project_ids(user)
    if projects is not None:
        if not projects:
            return {"jobs": [], "total": 0, "limit": limit, "offset": offset}
        conds.append(Job.project.in_(list(projects)))
    if status:
        wanted = [s.strip() for s in status.split(",") if s.strip()]
        for s in wanted:
            try:
                JobStatus(s)
            except ValueError:
                raise bad_request(f"unknown job status '{s}'", "invalid_status") from None
        conds.append(Job.status.in_(wanted))
    if project:
        conds.append(Job.project == find_project(project).id)
    if manager:
        conds.append(Job.manager == find_manager(manager).id)
    if job_type:
        conds.append(Job.job_type == job_type)
    if submitter:
        found = User.get_or_none((User.id == submitter) | (User.name == submitter))
        if found is None:
            raise bad_request(f"no user '{submitter}'", "unknown_user")
        conds.append(Job.user == found.id)
    if q and q.strip():
        if len(q) > 200:
            raise bad_request("'q' may be at most 200 characters", "invalid_query")
        needle = q.strip()
        conds.append(Job.name.contains(needle) | Job.user.in_(User.select(User.id).where(User.name.contains(needle))))
    total = Job.select(peewee.fn.COUNT(Job.id)).where(*conds).scalar() if conds else \
        Job.select(peewee.fn.COUNT(Job.id)).scalar()
    if before:
        conds.append(Job.id < before)
    page = Job.select(Job.id)
    if conds:
        page = page.where(*conds)
    ids = [i for (i,) in page.order_by(*order).limit(limit).offset(offset).tuples()]
    rows = {r["id"]: r for r in _with_names(Job.select().where(Job.id.in_(ids)))} if ids else {}
    return {"jobs": job_docs_from_rows([rows[i] for i in ids if i in rows]), "total": total, "limit": limit,
            "offset": offset}


def act_on_tasks(ctx: ServerContext, job_id: str, task_ids: list[str], action: str, who: str, reason: str) -> int:
    """Requeue (each with the tasks depending on it) or cancel these tasks of the job; how many moved."""
    with ctx.write():
        job = Job.get_by_id(job_id)
        if action == "cancel":
            return ctx.machine.cancel_tasks(job, task_ids, who, reason)
        tasks = []
        for chunk in chunks(sorted(set(task_ids))):
            tasks.extend(Task.select().where(Task.job == job.id, Task.id.in_(chunk)))
        if not tasks:
            raise not_found(f"none of these tasks belongs to job {job.id}")
        moved = 0
        for task in tasks:
            task = Task.get_by_id(task.id)  # requeueing a parent may have moved it already
            if task.status in TASK_IN_PROGRESS or task.status in TASK_WAITING:
                continue
            moved += ctx.machine.requeue_task(task, job, who, reason)
        if not moved:
            raise conflict("none of these tasks can be requeued: they are waiting or still running",
                           "nothing_to_requeue")
        return moved


# --- submitting -----------------------------------------------------------------

def _check_body(body: dict[str, Any], keys: set[str] = SUBMIT_KEYS) -> None:
    unknown = set(body) - keys
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(sorted(unknown))}; a job has "
                          f"{', '.join(sorted(keys))}", "unknown_field")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise bad_request("'name' must be a non-empty string of at most 200 characters", "invalid_field")
    if not isinstance(body.get("type"), str) or len(body["type"]) > 100:
        raise bad_request("'type' (the job type) is required, at most 100 characters", "invalid_field")
    for key in ("project", "manager"):
        if isinstance(body.get(key), str) and len(body[key]) > 100:
            raise bad_request(f"'{key}' may be at most 100 characters (a name or id)", "invalid_field")
    if isinstance(body.get("depends_on"), list) and len(body["depends_on"]) > MAX_DEPENDENCIES:
        raise bad_request(f"'depends_on' may name at most {MAX_DEPENDENCIES} jobs", "invalid_field")
    if isinstance(body.get("files"), dict) and len(body["files"]) > MAX_FILES:
        raise bad_request(f"'files' may list at most {MAX_FILES} files", "invalid_field")
    priority = body.get("priority", 50)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise bad_request("'priority' must be an integer from 1 to 100", "invalid_field")
    for key, kind in (("start_paused", bool), ("settings", dict), ("files", dict), ("metadata", dict),
                      ("depends_on", list), ("project", str), ("manager", str), ("worker_tag", str)):
        if body.get(key) is not None and not isinstance(body[key], kind):
            raise bad_request(f"'{key}' must be {kind.__name__ if kind is not dict else 'an object'}",
                              "invalid_field")
    memory = body.get("memory_mb")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory < 1):
        raise bad_request("'memory_mb' must be a positive integer", "invalid_field")
    if body.get("worker_tag") is not None and len(body["worker_tag"]) > 100:
        raise bad_request("'worker_tag' may be at most 100 characters", "invalid_field")
    if len(json.dumps(body.get("metadata") or {})) > 64 * 1024:
        raise bad_request("'metadata' may be at most 64 KiB of JSON", "invalid_field")


def _check_files(user: User, files: dict[str, Any], stored_only: bool = True
                 ) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The manifest with checked relpaths, and the relpaths whose file the Server does not have
    for this user (blobs.py) yet: an error unless `stored_only` is False (checking a job before
    its files are uploaded)."""
    out: dict[str, dict[str, Any]] = {}
    for relpath, entry in files.items():
        try:
            rel = check_relpath(relpath)
        except RelpathError as ex:
            raise bad_request(f"files: {ex}", "invalid_path") from None
        if not isinstance(entry, dict) or not is_sha256(entry.get("sha256")) or \
                isinstance(entry.get("size"), bool) or not isinstance(entry.get("size"), int) or entry["size"] < 0:
            raise bad_request(f"files['{relpath}'] must be {{\"sha256\": <64 hex>, \"size\": <bytes>}}",
                              "invalid_field")
        if rel in out:
            raise bad_request(f"files: '{relpath}' is listed twice", "invalid_path")
        out[rel] = {"sha256": entry["sha256"], "size": entry["size"]}
    stored = blobs.known_to(user, {e["sha256"] for e in out.values()}, visible_project_ids(user))
    missing = []
    for rel, entry in out.items():
        size = stored.get(entry["sha256"])
        if size is None:
            if stored_only:
                raise bad_request(f"file '{rel}' ({entry['sha256']}) has not been uploaded; "
                                  "PUT /api/files/{sha256} first", "file_missing")
            missing.append(rel)
        elif size != entry["size"]:
            raise bad_request(f"file '{rel}': size {entry['size']} given, the stored file has {size} bytes",
                              "file_size_mismatch")
    return out, missing


def _check_quota(ctx: ServerContext, project: Project, files: dict[str, dict[str, Any]]) -> None:
    """507 when the job's files that the project does not store yet would take it over its quota."""
    quota = blobs.project_quota(project, ctx.config.project_quota_bytes)
    if not quota or not files:
        return
    used, shas = blobs.project_usage(project.id)
    sizes = {e["sha256"]: e["size"] for e in files.values() if e["sha256"] not in shas}
    if used + sum(sizes.values()) > quota:
        raise ApiError(507, "quota_exceeded", f"project '{project.name}' stores {used} bytes of its quota of "
                                              f"{quota}; this job's new files need {sum(sizes.values())} more")


def _choose_project(user: User, ref: str | None) -> Project:
    projects = visible_project_ids(user)
    if ref is None:
        mine = list(Project.select().where(Project.id.in_(list(projects)))) if projects is not None \
            else list(Project.select())
        if len(mine) == 1:
            return mine[0]
        raise bad_request("'project' is required: you are in "
                          f"{len(mine)} projects" + (f" ({', '.join(sorted(p.name for p in mine))})" if mine else ""),
                          "project_required")
    try:
        project = find_project(ref)
    except ApiError:
        raise bad_request(f"no project '{ref}'", "unknown_project") from None
    if projects is not None and project.id not in projects:
        raise bad_request(f"you are not a member of project '{project.name}'", "not_a_member")
    return project


def _choose_manager(project: Project, ref: str | None, needed: set[str]) -> Manager:
    """The named Manager, or the linked one whose workers run the job's task types (most idle
    workers first). When none does yet, the job still goes to a linked Manager (the one whose
    workers run most of those types) and waits there for such a worker (see waiting.py)."""
    linked = list(Manager.select().join(ProjectManager).where(ProjectManager.project == project.id)
                  .order_by(Manager.name))
    if ref is not None:
        manager = next((m for m in linked if ref in (m.id, m.name)), None)
        if manager is None:
            if Manager.get_or_none((Manager.id == ref) | (Manager.name == ref)) is None:
                raise bad_request(f"no manager '{ref}'", "unknown_manager")
            raise bad_request(f"manager '{ref}' is not linked to project '{project.name}'", "manager_not_linked")
        return manager
    if not linked:
        raise bad_request(f"project '{project.name}' has no manager linked; an admin links one with "
                          "'flamenco-server link-manager MANAGER PROJECT'", "no_suitable_manager")
    return max(linked, key=lambda m: (len(needed & set(m.worker_task_types or ())), m.idle_workers,
                                      m.nr_of_workers, m.last_seen is not None, m.name))


def _check_dependencies(user: User, refs: list[Any]) -> list[Job]:
    jobs = []
    for ref in refs:
        if not isinstance(ref, str):
            raise bad_request("'depends_on' must be a list of job ids", "invalid_field")
        try:
            dep = get_visible_job(user, ref)
        except ApiError:
            raise bad_request(f"depends_on: no job '{ref}'", "unknown_dependency") from None
        if dep.status in _DEAD_DEPENDENCY:
            raise bad_request(f"depends_on: job {dep.name} ({dep.id}) is {dep.status}", "failed_dependency")
        if dep not in jobs:
            jobs.append(dep)
    return jobs


@contextlib.contextmanager
def _collector_paused():
    """Compiling a big job makes hundreds of thousands of small containers that all live until
    they are stored: the cyclic garbage collector walked them again and again (a fifth of the
    time of a 100,000-task job) and found nothing to free."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class Plan:
    """A submission that passed every check, compiled; nothing stored yet."""
    job_id: str
    created: Any
    job_type: JobType
    settings: dict[str, Any]
    project: Project
    manager: Manager
    files: dict[str, dict[str, Any]]
    files_mode: str
    deps: list[Job]
    task_types: set[str]
    specs: list[TaskSpec]
    failure: str = ""
    missing_files: list[str] = field(default_factory=list)


def _files_mode(body: dict[str, Any], files: dict) -> str:
    mode = body.get("files_mode")
    if mode is None:
        return "upload" if files else "shared"
    if mode not in FILES_MODES:
        raise bad_request(f"'files_mode' must be one of {', '.join(FILES_MODES)}", "invalid_field")
    if files and mode != "upload":
        raise bad_request("'files' are uploaded files: files_mode must be 'upload' with them", "invalid_field")
    return mode


def plan_job(ctx: ServerContext, user: User, body: dict[str, Any], dry_run: bool = False) -> Plan:
    """Every check of a submission, and the compiled tasks. With `dry_run` (checking settings
    before the files are packed) `files_mode` may stand in for the manifest, and files the
    Server does not have yet are listed instead of refused."""
    _check_body(body, VALIDATE_KEYS if dry_run else SUBMIT_KEYS)
    job_type: JobType | None = ctx.registry.get(body["type"])
    if job_type is None:
        raise bad_request(f"unknown job type '{body['type']}'; known are: {', '.join(ctx.registry.names())}",
                          "unknown_job_type")
    if job_type.admin_only and not user.is_admin:
        raise forbidden(f"only admins may submit '{job_type.job_type}' jobs: they run any command on the workers")
    files, missing = _check_files(user, body.get("files") or {}, stored_only=not dry_run)
    files_mode = _files_mode(body, files)
    try:
        settings = job_type.validate(body.get("settings"), ctx.config.max_frames, files_mode)
        job_type.check_commands(settings, ctx.config.allowed_executables, ctx.config.allowed_command_arguments)
    except SettingError as ex:
        raise bad_request(str(ex), "invalid_setting") from None
    project = _choose_project(user, body.get("project"))
    _check_quota(ctx, project, files)
    deps = _check_dependencies(user, body.get("depends_on") or [])
    job_id, created = time_ordered_id(), utcnow()
    manifest = files if files or files_mode == "shared" or not dry_run else None
    ctx0 = CompileContext(job_id, body["name"].strip(), created, files_mode, manifest,
                          max_frames=ctx.config.max_frames)
    try:
        job_type.check(settings, ctx0)
        needed = set(job_type.task_types(settings, ctx0))
        manager = _choose_manager(project, body.get("manager"), needed)
    except SettingError as ex:
        raise bad_request(str(ex), "invalid_setting") from None
    cctx = CompileContext(job_id, ctx0.job_name, created, files_mode, manifest,
                          frozenset(manager.worker_task_types or ()), ctx.config.max_frames)
    specs: list[TaskSpec] = []
    failure = ""
    try:
        specs = job_type.compile(settings, cctx)
        if not specs:
            failure = "the job type produced no tasks"
    except SettingError as ex:
        raise bad_request(str(ex), "invalid_setting") from None
    except Exception as ex:  # noqa: BLE001 - a compiler bug must not lose the submission
        log.exception("job %s: compiling %s failed", job_id, job_type.job_type)
        failure = f"compiling failed: {type(ex).__name__}: {ex}"
    set_script_policy(specs, bool(project.allow_scripts))
    return Plan(job_id, created, job_type, settings, project, manager, files, files_mode, deps, needed, specs,
                failure, missing)


def validate_job(ctx: ServerContext, user: User, body: dict[str, Any]) -> dict[str, Any]:
    """What submitting `body` would do, without storing anything (400 as the submission would)."""
    plan = plan_job(ctx, user, body, dry_run=True)
    if plan.failure:
        raise bad_request(f"the job could not be built: {plan.failure}", "compile_failed")
    return {"valid": True, "type": plan.job_type.job_type, "files_mode": plan.files_mode,
            "project": plan.project.name, "manager": plan.manager.name, "task_types": sorted(plan.task_types),
            "tasks": len(plan.specs), "settings": plan.settings, "missing_files": plan.missing_files}


def submit_job(ctx: ServerContext, user: User, body: dict[str, Any]) -> Job:
    with _collector_paused():
        job, plan, later = _submit_job(ctx, user, body)
    _store_later(ctx, job, later)
    return job


def submit_job_doc(ctx: ServerContext, user: User, body: dict[str, Any]) -> dict[str, Any]:
    """Submit, and the stored job's document (POST /api/jobs). Every task of a new job is pending, so
    what it waits for comes from the plan, not from grouping its tasks (0.1 s for 100,000)."""
    with _collector_paused():
        job, plan, later = _submit_job(ctx, user, body)
    doc = job_docs([job], pending={job.id: set() if plan.failure else plan.task_types})[0]
    _store_later(ctx, job, later)  # after the answer is made: storing takes the CPU while it goes
    return doc


def _store_later(ctx: ServerContext, job: Job, later: list) -> None:
    if later:
        ctx.storer.add(Remaining(job.id, later, job.tasks_total - len(later)))


def _submit_job(ctx: ServerContext, user: User, body: dict[str, Any]) -> tuple[Job, Plan, list]:
    """Store the job with its first tasks; (the job, its plan, the rows of the tasks left to store)."""
    plan = plan_job(ctx, user, body)
    job_type, settings, project, manager, files = plan.job_type, plan.settings, plan.project, plan.manager, plan.files
    deps, job_id, created, failure = plan.deps, plan.job_id, plan.created, plan.failure
    task_status = ctx.machine.new_task_status(Job(start_paused=bool(body.get("start_paused"))))
    input_jobs = [d.id for d in deps] if plan.files_mode == "upload" else []
    rows = [] if failure else task_rows(job_id, plan.specs, input_jobs)
    now, later = ctx.storer.split(rows)  # a big job answers with its first tasks stored, the rest follows

    who = _who(user)
    name = body["name"].strip()
    with ctx.write():
        # Stamped inside the write lock with the Server's clock: a Manager's
        # incremental depsgraph asks for tasks updated after its last answer,
        # so a stamp taken before compiling could be older than an answer
        # given before this commit.
        stamp = stamp_value(ctx.clock.now())
        _files_still_stored(files)
        blocked = _dependencies_pending(deps)
        job = Job.create(id=job_id, name=name, job_type=job_type.job_type,
                         status=JobStatus.UNDER_CONSTRUCTION.value, priority=body.get("priority", 50),
                         settings=settings, metadata=body.get("metadata") or {}, project=project.id,
                         manager=manager.id, user=user.id, created=created, updated=created,
                         start_paused=bool(body.get("start_paused")), worker_tag=body.get("worker_tag"),
                         memory_mb=body.get("memory_mb"), files_mode=plan.files_mode,
                         blocked=blocked)
        for dep in deps:
            JobDependency.create(job=job_id, depends_on=dep.id)
        if files:
            bulk_insert(JobFile, ("job", "relpath", "sha256", "size"),
                        ((job_id, rel, e["sha256"], e["size"]) for rel, e in files.items()))
        JobLogEntry.create(job=job_id, created=created, who=who,
                           what=f"submitted {job_type.job_type} job with {len(rows)} tasks for manager "
                                f"{manager.name}" + (f", depending on {', '.join(d.id for d in deps)}" if deps else ""))
        if failure:
            ctx.machine.construction_failed(job, who, failure)
        else:
            store_rows(now, job, task_status.value, stamp)
            ctx.machine.flip_new_job(job, len(now), who, to_store=len(later))
    log.info("job %s (%s, %d tasks) submitted by %s to manager %s%s", job_id, job_type.job_type, len(rows),
             user.name, manager.name, f"; FAILED: {failure}" if failure else "")
    # Freed now by their reference counts: with the collector on again, its first pass would
    # walk them all (a quarter of a second for 100,000 tasks) before they go.
    plan.specs.clear()
    del rows, now
    return job, plan, later


def _files_still_stored(files: dict[str, dict[str, Any]]) -> None:
    """Inside the write lock: the checked files were not collected as unused meanwhile (blobs.collect)."""
    shas = sorted({e["sha256"] for e in files.values()})
    present = sum(Blob.select().where(Blob.sha256.in_(chunk)).count() for chunk in chunks(shas))
    if present != len(shas):
        raise bad_request("a file of the job was removed as unused while it was being submitted; "
                          "upload it again", "file_missing")


def _dependencies_pending(deps: list[Job]) -> bool:
    """Whether the job must wait, from the dependencies' statuses now (inside the write lock)."""
    if not deps:
        return False
    statuses = dict(Job.select(Job.id, Job.status).where(Job.id.in_([d.id for d in deps])).tuples())
    for dep in deps:
        status = statuses.get(dep.id)
        if status is None or status in _DEAD_DEPENDENCY:
            raise bad_request(f"depends_on: job {dep.name} ({dep.id}) is {status or 'deleted'}", "failed_dependency")
    return any(st != JobStatus.COMPLETED for st in statuses.values())


# --- deleting -------------------------------------------------------------------

def delete_job(ctx: ServerContext, user: User, job: Job) -> None:
    """Delete a finished job with its tasks, files and outputs; blobs nobody else uses go too."""
    if JobStatus(job.status) not in JOB_DELETABLE:
        raise conflict(f"job {job.id} is {job.status}; only finished, paused or failed jobs can be deleted "
                       "(cancel it first)", "job_not_finished")
    with ctx.write():
        job = Job.get_by_id(job.id)
        if JobStatus(job.status) not in JOB_DELETABLE:
            raise conflict(f"job {job.id} is {job.status}", "job_not_finished")
        orphans = remove_job_rows(ctx, job)
    forget_job_files(ctx, job, orphans)
    log.info("job %s deleted by %s (%d blobs removed)", job.id, user.name, len(orphans))


def remove_job_rows(ctx: ServerContext, job: Job) -> list[str]:
    """Inside a write transaction: the job's rows (tasks, runs, files, outputs, log); the blobs no other job
    uses any more (their rows too; the caller removes their files after the commit). 409 while jobs that
    are not finished depend on it."""
    waiting = list(Job.select(Job.id, Job.name).join(JobDependency, on=(JobDependency.job == Job.id))
                   .where(JobDependency.depends_on == job.id, Job.status.not_in(list(JOB_DELETABLE))))
    if waiting:
        raise conflict(f"job(s) {', '.join(f'{j.name} ({j.id})' for j in waiting)} depend on job {job.id}",
                       "job_has_dependents")
    shas = {s for (s,) in JobFile.select(JobFile.sha256).where(JobFile.job == job.id).tuples()}
    shas |= {s for (s,) in JobOutput.select(JobOutput.sha256).where(JobOutput.job == job.id).tuples()}
    for model in (Task, TaskRun, JobFile, JobOutput, JobLogEntry):
        model.delete().where(model.job == job.id).execute()
    JobDependency.delete().where((JobDependency.job == job.id) | (JobDependency.depends_on == job.id)).execute()
    LogRequest.delete().where(LogRequest.job == job.id).execute()
    job.delete_instance()
    ctx.feed.note(*job_topics(job), f"manager:{job.manager_id}")
    orphans = []
    for sha in shas:
        used = JobFile.select().where(JobFile.sha256 == sha).exists() or \
            JobOutput.select().where(JobOutput.sha256 == sha).exists()
        if not used:
            Blob.delete().where(Blob.sha256 == sha).execute()
            orphans.append(sha)
    blobs.forget(orphans)
    return orphans


def forget_job_files(ctx: ServerContext, job: Job, orphans: list[str]) -> None:
    """After the commit that removed the job's rows: its unused blobs and its task logs."""
    for sha in orphans:
        ctx.store.delete(sha)
    ctx.store.delete_job_logs(job.id)


def visible_workers(user: User) -> list[tuple[WorkerRecord, str]]:
    from .admin import visible_manager_ids
    managers = visible_manager_ids(user)
    query = WorkerRecord.select(WorkerRecord, Manager.id, Manager.name).join(Manager)
    if managers is not None:
        if not managers:
            return []
        query = query.where(WorkerRecord.manager.in_(list(managers)))
    return [(w, w.manager.name) for w in query.order_by(Manager.name, WorkerRecord.nickname)]


