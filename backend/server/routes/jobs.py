"""The user API for jobs and tasks."""

from __future__ import annotations

import bottle

from backend.web import bad_request, not_found, read_json, read_object
from shared.statuses import JobStatus, TaskStatus

from .. import jobs as job_service
from .. import task_logs
from ..database import write
from ..models import Job, JobLogEntry, LogRequest, Task
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
        job = job_service.submit_job(ctx, user, read_object())
        bottle.response.status = 201
        return _job_with_extras(Job.get_by_id(job.id))

    @routes.add("GET", "/api/jobs", summary="List jobs, newest first", tag="jobs",
                query={"status": "comma-separated job statuses", "project": "project id or name",
                       "manager": "manager id or name", "type": "job type",
                       "mine": "1 or true: only the jobs the signed-in user submitted",
                       "user": "only the jobs this user (id or name) submitted",
                       "limit": "page size, 1-500 (50)", "offset": "jobs to skip (0)",
                       "before": "only jobs older than this job id (keyset paging: pass the last id of a page)"},
                responses={200: ("a page of jobs", "JobList")})
    def list_jobs(user):
        limit, offset = paging()
        submitter = user.id if query_bool("mine") else query_str("user")
        return job_service.list_jobs(user, query_str("status"), query_str("project"), query_str("manager"),
                                     query_str("type"), limit, offset, query_str("before"), submitter=submitter)

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
        with write(ctx.db):
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
        priority = body.get("priority")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 100:
            raise bad_request("'priority' must be an integer from 1 to 100", "invalid_field")
        reason = reason_of(body)
        job_service.get_visible_job(user, job_id)
        with write(ctx.db):
            ctx.machine.set_job_priority(Job.get_by_id(job_id), priority, f"user {user.name}", reason)
        return _job_with_extras(Job.get_by_id(job_id))

    @routes.add("DELETE", "/api/jobs/<job_id>", summary="Delete a finished job, its tasks, files and outputs",
                tag="jobs", responses={204: "deleted", 404: "no such job", 409: "the job is not finished"})
    def delete(user, job_id):
        job_service.delete_job(ctx, user, job_service.get_visible_job(user, job_id))
        return no_content()

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
        total = query.count() if status else job.tasks_total
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
        task, _ = job_service.get_visible_task(user, task_id)
        doc = task_doc(task)
        doc["log_requested"] = LogRequest.get_or_none(LogRequest.task == task.id) is not None
        return doc

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
        with write(ctx.db):
            task = Task.get_by_id(task_id)
            n = ctx.machine.requeue_task(task, Job.get_by_id(task.job_id), f"user {user.name}", reason)
        return {"requeued": n}

    @routes.add("GET", "/api/tasks/<task_id>/log", summary="The task's full log, once its Manager uploaded it",
                tag="tasks", responses={200: "the log as text/plain",
                                        404: "no such task, or no log uploaded (request it first)"})
    def task_log(user, task_id):
        task, _ = job_service.get_visible_task(user, task_id)
        blocks = task_logs.read(ctx.store, task.job_id, task.id)
        if blocks is None:
            raise not_found(f"no full log of task {task.id} on the Server yet; "
                            f"POST /api/tasks/{task.id}/log-request and try again in a minute")
        bottle.response.content_type = "text/plain; charset=utf-8"
        return blocks

    @routes.add("POST", "/api/tasks/<task_id>/log-request", summary="Ask the task's Manager to upload its log",
                tag="tasks", responses={202: "requested; the Manager uploads it after its next update batch",
                                        404: "no such task"})
    def request_log(user, task_id):
        task, job = job_service.get_visible_task(user, task_id)
        with write(ctx.db):
            if LogRequest.get_or_none(LogRequest.task == task.id) is None and job.manager_id:
                LogRequest.create(task=task.id, job=job.id, manager=job.manager_id, requested=ctx.clock.now())
        bottle.response.status = 202
        return {"requested": True}

