"""What users may see of the farm: managers with their link health, and their workers."""

from __future__ import annotations

import datetime as dt

import bottle
from peewee import fn

from backend.web import not_found, read_object
from shared.statuses import JobStatus

from .. import jobs as job_service
from .. import waiting, worker_actions
from ..admin import find_project, manager_admin_ids, visible_manager_ids, visible_project_ids
from ..jobs import visible_workers
from ..models import Job, Manager, Project, ProjectManager, TaskRun, WorkerRecord
from ..views import iso, manager_doc, worker_docs
from .common import query_str

JOB_RUNNING = (JobStatus.ACTIVE, JobStatus.QUEUED, JobStatus.PAUSE_REQUESTED, JobStatus.CANCEL_REQUESTED,
               JobStatus.FAIL_REQUESTED)


def manager_projects(manager_ids: list[str]) -> dict[str, list[Project]]:
    out: dict[str, list[Project]] = {}
    if manager_ids:
        rows = (Project.select(Project, ProjectManager.manager).join(ProjectManager)
                .where(ProjectManager.manager.in_(manager_ids)).order_by(Project.name))
        for p in rows:
            out.setdefault(p.projectmanager.manager_id, []).append(p)
    return out


def install(routes, ctx) -> None:
    @routes.add("GET", "/api/managers", summary="Managers (of the user's projects) with their link health",
                tag="farm", responses={200: ("the managers", "Managers")})
    def managers(user):
        visible = visible_manager_ids(user)
        query = Manager.select().order_by(Manager.name)
        if visible is not None:
            query = query.where(Manager.id.in_(list(visible)))
        found = list(query)
        projects = manager_projects([m.id for m in found])
        now = ctx.clock.now()
        return {"managers": [manager_doc(m, now, ctx.config.manager_online_seconds, projects.get(m.id, []))
                             for m in found]}

    @routes.add("GET", "/api/worker-tags", summary="The worker tags and task types the farm's workers offer",
                tag="farm", query={"project": "only the Managers linked to this project (id or name)"},
                responses={200: ("what the workers of the (visible) Managers offer", "WorkerOffers"),
                           404: "no such project (or not one of yours)"},
                description="For a job's worker tag: the tags of the workers the Managers last reported, and "
                            "the task types they run. A job asking for a tag or task type outside these is "
                            "accepted but waits (its status_reason says why).")
    def worker_tags(user):
        managers = visible_manager_ids(user)
        ref = query_str("project")
        if ref:
            project = find_project(ref)
            visible = visible_project_ids(user)
            if visible is not None and project.id not in visible:
                raise not_found(f"no project '{ref}'")
            linked = {m for (m,) in ProjectManager.select(ProjectManager.manager)
                      .where(ProjectManager.project == project.id).tuples()}
            managers = linked if managers is None else managers & linked
        if managers is None:
            managers = {m for (m,) in Manager.select(Manager.id).tuples()}
        found = waiting.offers(sorted(managers)).values()
        return {"tags": sorted({t for o in found for t in o.tags}),
                "task_types": sorted({t for o in found for t in o.task_types})}

    @routes.add("GET", "/api/workers", summary="Workers of all (visible) managers, as last reported",
                tag="farm", responses={200: ("the workers", "Workers")},
                description="With the names of their current task and job, the actions asked of them lately "
                            "(pending until their Manager confirms), and whether the reader may act on them.")
    def workers(user):
        rows = visible_workers(user)
        actions = worker_actions.recent_by_worker(sorted({w.manager_id for w, _ in rows}), ctx.clock.now())
        return {"workers": worker_docs(rows, actions, manager_admin_ids(user))}

    @routes.add("POST", "/api/workers/<manager_id>/<worker_id>/actions",
                summary="Ask a worker to sleep, wake, shut down, be forgotten, take tags, clear its blocklist or "
                        "follow a sleep schedule", tag="farm", body="WorkerActionRequest",
                responses={202: ("requested: its Manager applies it on its next contact", "WorkerActionDoc"),
                           403: "not an admin, nor a manager-admin of a project linked to the worker's Manager",
                           404: "no such worker"},
                description="Traffic stays bottom-up: the Server records the action; the Manager receives it in "
                            "its next task-update-batch answer, applies it and confirms it. GET /api/workers "
                            "shows it 'requested' until then, 'done' or 'failed' after.")
    def worker_action(user, manager_id, worker_id):
        worker_actions.check_may_run_workers_of(user, manager_id)  # 403 before anything about the body
        doc = worker_actions.request(ctx, user, manager_id, worker_id, read_object())
        bottle.response.status = 202
        return doc

    @routes.add("GET", "/api/farm", summary="The farm at a glance: Managers, workers, jobs, throughput",
                tag="farm", auth_kind="admin", responses={200: ("the overview", "Farm")},
                description="Managers with their link health and upstream queue, workers and jobs by status, "
                            "the running jobs, and tasks completed per minute over the last hour (oldest first).")
    def farm(user):
        now = ctx.clock.now()
        managers = list(Manager.select().order_by(Manager.name))
        projects = manager_projects([m.id for m in managers])
        workers_by_status = dict(WorkerRecord.select(WorkerRecord.status, fn.COUNT(WorkerRecord.id))
                                 .group_by(WorkerRecord.status).tuples())
        jobs_by_status = dict(Job.select(Job.status, fn.COUNT(Job.id)).group_by(Job.status).tuples())
        running = list(Job.select().where(Job.status.in_(list(JOB_RUNNING))).order_by(Job.id.desc()).limit(50))
        per_minute = [0] * 60
        start = now - dt.timedelta(minutes=60)
        for (finished,) in TaskRun.select(TaskRun.finished).where(TaskRun.finished >= start,
                                                                  TaskRun.status == "completed").tuples():
            index = int((finished - start).total_seconds() // 60)
            per_minute[min(59, max(0, index))] += 1
        return {"managers": [manager_doc(m, now, ctx.config.manager_online_seconds, projects.get(m.id, []))
                             for m in managers],
                "workers_by_status": workers_by_status, "jobs_by_status": jobs_by_status,
                "jobs_running": job_service.job_docs(running), "tasks_per_minute": per_minute, "now": iso(now)}
