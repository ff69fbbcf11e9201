"""The user API for jobs and tasks."""

from __future__ import annotations

import bottle

from backend.web import ApiError, bad_request, forbidden, not_found, read_json, read_object
from shared.statuses import JobStatus, TaskStatus

from .. import archive, task_logs
from .. import jobs as job_service
from .. import task_logs
from ..admin import visible_project_ids
from ..models import Job, JobArchive, JobLogEntry, LogRequest, Project, Task, TaskRun
from ..news import LOG
from ..views import iso, task_doc
from .common import no_content, paging, query_bool, query_int, query_str, reason_of

J = JobStatus

STATUS_WORDS = {
    "cancel": J.CANCEL_REQUESTED, "canceled": J.CANCEL_REQUESTED, "cancel-requested": J.CANCEL_REQUESTED,
    "fail": J.FAIL_REQUESTED, "failed": J.FAIL_REQUESTED, "fail-requested": J.FAIL_REQUESTED,
    "pause": J.PAUSE_REQUESTED, "paused": J.PAUSE_REQUESTED, "pause-requested": J.PAUSE_REQUESTED,
    "resume": J.QUEUED, "queued": J.QUEUED,
    "requeue": J.REQUEUED, "requeued": J.REQUEUED,
}
REQUEUE_FAILED = ("requeue-failed", "requeue-failed-tasks")


BULK_ACTIONS = ("pause", "resume", "cancel", "requeue", "requeue-failed", "priority", "delete", "archive")
MAX_BULK = 500
TASK_ACTIONS = ("requeue", "cancel")


def check_priority(body: dict) -> int:
    priority = body.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
        raise bad_request("'priority' must be an integer from 1 to 100", "invalid_field")
    return priority


def _job_with_extras(job: Job) -> dict:
    return job_service.job_docs([job])[0]


def install(routes, ctx) -> None:
    @routes.add("POST", "/api/jobs", summary="Submit a job", tag="jobs", body="JobSubmit",
                responses={201: ("the job; status 'construction-failed' (with status_reason) if its compiler "
                                 "crashed", "Job")},
                description="Checks the settings against the job type's schema (400 naming the setting), "
                            "picks the Manager (named, or the linked one supporting the job's task types with "
                            "the most idle workers), compiles and stores the job and its tasks in one "
                            "transaction. A job no worker can run yet (task type or worker tag) is accepted "
                            "and waits; its status_reason says for what.")
    def submit(user):
        doc = job_service.submit_job_doc(ctx, user, read_object())
        bottle.response.status = 201
        return doc

    @routes.add("POST", "/api/jobs/validate", summary="Check a job without submitting it", tag="jobs",
                body="JobCheck", responses={200: ("what submitting it would do", "JobCheckResult")},
                description="Every check of POST /api/jobs (400 with the same code and message) and the "
                            "compilation, storing nothing. Before the files are uploaded: give "
                            "'files_mode': 'upload' instead of 'files' (file settings are then not checked "
                            "against a manifest), or 'files' with files the Server does not have yet "
                            "(listed in 'missing_files'). The add-on calls it before it packs anything.")
    def validate(user):
        return job_service.validate_job(ctx, user, read_object())

    @routes.add("GET", "/api/jobs", summary="List jobs, newest first", tag="jobs",
                query={"status": "comma-separated job statuses", "project": "project id or name",
                       "manager": "manager id or name", "type": "job type",
                       "mine": "1 or true: only the jobs the signed-in user submitted",
                       "user": "only the jobs this user (id or name) submitted",
                       "limit": "page size, 1-500 (50)", "offset": "jobs to skip (0)",
                       "before": "only jobs older than this job id (keyset paging: pass the last id of a page)",
                       "q": "only jobs whose name or submitter contains this (any case)",
                       "sort": f"order: {', '.join(job_service.SORTS)} (newest first by default; '-' reverses)"},
                responses={200: ("a page of jobs", "JobList")})
    def list_jobs(user):
        limit, offset = paging()
        submitter = user.id if query_bool("mine") else query_str("user")
        return job_service.list_jobs(user, query_str("status"), query_str("project"), query_str("manager"),
                                     query_str("type"), limit, offset, query_str("before"), submitter=submitter,
                                     q=query_str("q"), sort=query_str("sort"))

    @routes.add("POST", "/api/jobs/actions", summary="One action on several jobs", tag="jobs", body="JobActions",
                responses={200: ("per job: the job after it, or the error", "JobActionResults")},
                description="action: pause, resume, cancel, requeue, requeue-failed, priority (with 'priority'), "
                            "delete, or archive (admins). Each job is changed in its own transaction; a job "
                            "that refuses (409) or that the user may not see (404) is reported, the others go on.")
    def job_actions(user):
        body = read_object()
        action, ids = body.get("action"), body.get("jobs")
        if action not in BULK_ACTIONS:
            raise bad_request(f"'action' must be one of {', '.join(BULK_ACTIONS)}", "invalid_action")
        if not isinstance(ids, list) or not ids or len(ids) > MAX_BULK or not all(isinstance(i, str) for i in ids):
            raise bad_request(f"'jobs' must be a list of 1 to {MAX_BULK} job ids", "invalid_field")
        if action == "archive" and not user.is_admin:
            raise forbidden("archiving jobs is for admins")
        reason = reason_of(body)
        results = {}
        for job_id in dict.fromkeys(ids):
            try:
                results[job_id] = {"ok": True, "job": one_job_action(user, job_id, action, body, reason)}
            except ApiError as ex:
                results[job_id] = {"ok": False, "code": ex.code, "message": ex.message, "status": ex.status}
        return {"results": results}

    def one_job_action(user, job_id: str, action: str, body: dict, reason: str):
        job = job_service.get_visible_job(user, job_id)
        who = f"user {user.name}"
        if action == "delete":
            job_service.delete_job(ctx, user, job)
            return None
        if action == "archive":
            archive.archive_job(ctx, job, who)
            return None
        with ctx.write():
            job = Job.get_by_id(job_id)
            if action == "priority":
                ctx.machine.set_job_priority(job, check_priority(body), who, reason)
            elif action == "requeue-failed":
                ctx.machine.requeue_job(job, who, reason, failed_only=True)
            else:
                ctx.machine.request_job_status(job, STATUS_WORDS[action], who, reason)
        return _job_with_extras(Job.get_by_id(job_id))

    @routes.add("GET", "/api/jobs/<job_id>", summary="A job with its task counts and progress", tag="jobs",
                responses={200: ("the job", "Job"), 404: "no such job (or not yours to see)"})
    def get_job(user, job_id):
        return _job_with_extras(job_service.get_visible_job(user, job_id))

    @routes.add("POST", "/api/jobs/<job_id>/status", summary="Cancel, pause, resume, fail or requeue a job",
                tag="jobs", body="JobStatusChange",
                responses={200: ("the job after the change", "Job"), 404: "no such job",
                           409: "the job cannot go to that status from its current one (invalid_transition), "
                                "or a requeue would move no task (nothing_to_requeue)"},
                description="status: cancel-requested (or 'cancel'), pause-requested ('pause'), "
                            "queued ('resume'), fail-requested ('fail'), requeued ('requeue': the unfinished "
                            "tasks, or all of a completed job), requeue-failed (only failed/canceled tasks). "
                            "A requeue of a queued or active job with no failed, canceled or paused task "
                            "changes nothing and is answered 409 nothing_to_requeue.")
    def set_status(user, job_id):
        body = read_object()
        word, reason = body.get("status"), reason_of(body)
        if not isinstance(word, str):
            raise bad_request("'status' is required", "invalid_field")
        if word not in STATUS_WORDS and word not in REQUEUE_FAILED:
            raise bad_request(f"'{word}' cannot be requested; use one of "
                              f"{', '.join(sorted(set(STATUS_WORDS) | set(REQUEUE_FAILED)))}", "invalid_status")
        job_service.get_visible_job(user, job_id)
        with ctx.write():
            job = Job.get_by_id(job_id)
            if word in REQUEUE_FAILED:
                ctx.machine.requeue_job(job, f"user {user.name}", reason, failed_only=True)
            else:
                ctx.machine.request_job_status(job, STATUS_WORDS[word], f"user {user.name}", reason)
        return _job_with_extras(Job.get_by_id(job_id))

    @routes.add("POST", "/api/jobs/<job_id>/priority", summary="Set a job's priority (1-100)", tag="jobs",
                body="JobPriority", responses={200: ("the job", "Job"), 404: "no such job"})
    def set_priority(user, job_id):
        body = read_object()
        priority = check_priority(body)
        reason = reason_of(body)
        job_service.get_visible_job(user, job_id)
        with ctx.write():
            ctx.machine.set_job_priority(Job.get_by_id(job_id), priority, f"user {user.name}", reason)
        return _job_with_extras(Job.get_by_id(job_id))

    @routes.add("DELETE", "/api/jobs/<job_id>", summary="Delete a finished job, its tasks, files and outputs",
                tag="jobs", responses={204: "deleted", 404: "no such job", 409: "the job is not finished"})
    def delete(user, job_id):
        job_service.delete_job(ctx, user, job_service.get_visible_job(user, job_id))
        return no_content()

    @routes.add("POST", "/api/jobs/<job_id>/archive", summary="Archive a finished job (admins)", tag="jobs",
                auth_kind="admin",
                responses={200: ("the archive: its record is kept, the job's rows, files and outputs are gone",
                                 "Archive"), 404: "no such job", 409: "the job is not finished, or others depend on it"})
    def archive_one(user, job_id):
        row = archive.archive_job(ctx, job_service.get_visible_job(user, job_id), f"user {user.name}")
        return archive.archive_doc(row)

    @routes.add("GET", "/api/archives", summary="Archived jobs (of the user's projects), newest first",
                tag="jobs", query={"limit": "1-500 (50)", "offset": "archives to skip (0)"},
                responses={200: ("the archives", "Archives")})
    def archives(user):
        limit, offset = paging()
        query = JobArchive.select().order_by(JobArchive.archived.desc())
        visible = visible_project_ids(user)
        if visible is not None:
            query = query.where(JobArchive.project.in_(list(visible) or [""]))
        names = dict(Project.select(Project.id, Project.name).tuples())
        return {"archives": [archive.archive_doc(r, names.get(r.project)) for r in query.limit(limit).offset(offset)],
                "total": query.count()}

    @routes.add("GET", "/api/archives/<job_id>", summary="An archived job's record (gzip'd JSON)", tag="jobs",
                responses={200: ("the record", {"type": "string", "format": "binary"}, "application/gzip"),
                           404: "no such archive (or not yours to see)"})
    def archive_file(user, job_id):
        row = JobArchive.get_or_none(JobArchive.id == job_id)
        visible = visible_project_ids(user)
        if row is None or (visible is not None and row.project not in visible):
            raise not_found(f"no archived job '{job_id}'")
        path = ctx.store.archive_path(row.id)
        resp = bottle.static_file(path.name, root=str(path.parent), mimetype="application/gzip",
                                  download=f"flamenco-job-{row.id}.json.gz")
        if resp.status_code == 404:
            raise not_found(f"the record of archived job '{job_id}' is missing on the Server")
        return resp

    @routes.add("POST", "/api/jobs/<job_id>/tasks/actions", summary="Requeue or cancel several tasks of a job",
                tag="tasks", body="TaskActions",
                responses={200: ("how many tasks moved", "TaskActionResult"), 404: "no such job",
                           409: "the job does not allow it now, or no task would move"},
                description="requeue: each task and the tasks depending on it (tasks still running are left "
                            "alone). cancel: waiting tasks at once, those a Manager holds or runs through "
                            "cancel-requested; they stay canceled until requeued; the job goes on.")
    def task_actions(user, job_id):
        job_service.get_visible_job(user, job_id)  # 404 before anything about the body
        body = read_object()
        action, ids = body.get("action"), body.get("tasks")
        if action not in TASK_ACTIONS:
            raise bad_request(f"'action' must be one of {', '.join(TASK_ACTIONS)}", "invalid_action")
        if not isinstance(ids, list) or not ids or len(ids) > 10000 or not all(isinstance(i, str) for i in ids):
            raise bad_request("'tasks' must be a list of 1 to 10000 task ids of the job", "invalid_field")
        reason = reason_of(body)
        return {action + ("d" if action == "requeue" else "ed"): job_service.act_on_tasks(
            ctx, job_id, ids, action, f"user {user.name}", reason)}

    @routes.add("GET", "/api/jobs/<job_id>/runs", summary="Every run of the job's tasks (the timeline)",
                tag="jobs", query={"limit": "1-20000 (5000)"},
                responses={200: ("the runs, oldest first", "Runs"), 404: "no such job"})
    def job_runs(user, job_id):
        job = job_service.get_visible_job(user, job_id)
        limit = query_int("limit", 5000, 1, 20000)
        names = dict(Task.select(Task.id, Task.name).where(Task.job == job.id).tuples())
        query = TaskRun.select().where(TaskRun.job == job.id)
        rows = query.order_by(TaskRun.started, TaskRun.id).limit(limit)
        return {"runs": [{**archive.run_doc(r), "task_name": names.get(r.task, r.task)} for r in rows],
                "total": query.count()}

    @routes.add("GET", "/api/jobs/<job_id>/tasks", summary="The job's tasks, in creation order", tag="jobs",
                query={"status": "comma-separated task statuses", "limit": "page size, 1-10000 (1000)",
                       "offset": "tasks to skip (0)"},
                responses={200: ("a page of tasks (without commands)", "TaskList"), 404: "no such job"})
    def list_tasks(user, job_id):
        job = job_service.get_visible_job(user, job_id)
        limit, offset = query_int("limit", 1000, 1, 10000), query_int("offset", 0, 0, 10 ** 9)
        query = Task.select().where(Task.job == job.id)
        status = query_str("status")
        if status:
            wanted = [s.strip() for s in status.split(",") if s.strip()]
            for s in wanted:
                if s not in set(TaskStatus):
                    raise bad_request(f"unknown task status '{s}'", "invalid_status")
            query = query.where(Task.status.in_(wanted))
        total = query.count() if status else job.tasks_total - job.tasks_to_store
        tasks = query.order_by(Task.id).limit(limit).offset(offset)
        return {"tasks": [task_doc(t, full=False) for t in tasks], "total": total, "limit": limit,
                "offset": offset}

    @routes.add("GET", "/api/jobs/<job_id>/log", summary="The job's operations log: who did what, when, why",
                tag="jobs", responses={200: ("the entries, oldest first", "JobLog"), 404: "no such job"})
    def job_log(user, job_id):
        job = job_service.get_visible_job(user, job_id)
        rows = JobLogEntry.select().where(JobLogEntry.job == job.id).order_by(JobLogEntry.id)
        return {"entries": [{"created": iso(e.created), "who": e.who, "what": e.what, "reason": e.reason}
                            for e in rows]}

    @routes.add("GET", "/api/tasks/<task_id>", summary="A task with its commands and log tail", tag="tasks",
                responses={200: ("the task", "Task"), 404: "no such task"})
    def get_task(user, task_id):
        task, job = job_service.get_visible_task(user, task_id)
        doc = task_doc(task)
        doc["log_requested"] = LogRequest.get_or_none(LogRequest.task == task.id) is not None
        doc["runs"] = [archive.run_doc(r) for r in TaskRun.select().where(TaskRun.task == task.id)
                       .order_by(TaskRun.started, TaskRun.id)]
        doc["job_name"], doc["job_status"] = job.name, job.status
        return doc

    @routes.add("POST", "/api/tasks/<task_id>/cancel", summary="Cancel one task (the job goes on)", tag="tasks",
                body="Reason", responses={200: ("how many tasks were canceled", "TaskActionResult"),
                                          404: "no such task", 409: "the task is not waiting or running"})
    def cancel_task(user, task_id):
        body = read_json(required=False) or {}
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object", "invalid_json")
        task, job = job_service.get_visible_task(user, task_id)
        return {"canceled": job_service.act_on_tasks(ctx, job.id, [task.id], "cancel", f"user {user.name}",
                                                     reason_of(body))}

    @routes.add("POST", "/api/tasks/<task_id>/requeue", summary="Requeue a task and the tasks depending on it",
                tag="tasks", body="Reason",
                responses={200: ("how many tasks were requeued", "Requeued"), 404: "no such task",
                           409: "the task is running, or its job cannot be requeued now"})
    def requeue_task(user, task_id):
        body = read_json(required=False) or {}
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object", "invalid_json")
        reason = reason_of(body)
        job_service.get_visible_task(user, task_id)
        with ctx.write():
            task = Task.get_by_id(task_id)
            n = ctx.machine.requeue_task(task, Job.get_by_id(task.job_id), f"user {user.name}", reason)
        return {"requeued": n}

    @routes.add("GET", "/api/tasks/<task_id>/log", summary="The task's full log, once its Manager uploaded it",
                tag="tasks", query={"download": "1: as a file (Content-Disposition: attachment)"}, responses={200: "the log as text/plain",
                                        404: "no such task, or no log uploaded (request it first)"})
    def task_log(user, task_id):
        task, _ = job_service.get_visible_task(user, task_id)
        blocks = task_logs.read(ctx.store, task.job_id, task.id)
        if blocks is None:
            raise not_found(f"no full log of task {task.id} on the Server yet; "
                            f"POST /api/tasks/{task.id}/log-request and try again in a minute")
        bottle.response.content_type = "text/plain; charset=utf-8"
        if bottle.request.query.get("download"):
            bottle.response.set_header("Content-Disposition", f'attachment; filename="{task.id}.log"')
        return blocks

    @routes.add("POST", "/api/tasks/<task_id>/log-request", summary="Ask the task's Manager to upload its log",
                tag="tasks", responses={202: "requested; the Manager uploads it after its next update batch",
                                        404: "no such task"})
    def request_log(user, task_id):
        task, job = job_service.get_visible_task(user, task_id)
        with ctx.write():
            if LogRequest.get_or_none(LogRequest.task == task.id) is None and job.manager_id:
                LogRequest.create(task=task.id, job=job.id, manager=job.manager_id, requested=ctx.clock.now())
                ctx.feed.note(f"manager:{job.manager_id}")
                ctx.news.notify(job.manager_id, LOG)
        bottle.response.status = 202
        return {"requested": True}

