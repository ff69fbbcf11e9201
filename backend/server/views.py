"""Rows as the JSON the APIs answer with; one function per kind of document."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from shared.chunking import chunks
from shared.statuses import TASK_IN_PROGRESS
from shared.timefmt import iso_utc

from .models import Job, Manager, Project, Task, TaskRun, User, WorkerRecord


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 UTC with microseconds and a 'Z', or None."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands back text for raw selects
        value = dt.datetime.fromisoformat(value)
    return iso_utc(value, "microseconds", zulu=True)


def user_doc(user: User, projects: list[Project] | None = None) -> dict[str, Any]:
    out = {"id": user.id, "name": user.name, "role": user.role, "created": iso(user.created)}
    if projects is not None:
        out["projects"] = [{"id": p.id, "name": p.name} for p in projects]
    return out


def project_doc(project: Project, managers: list[Manager] | None = None) -> dict[str, Any]:
    out = {"id": project.id, "name": project.name, "description": project.description,
           "created": iso(project.created), "quota_bytes": project.quota_bytes,
           "allow_scripts": bool(project.allow_scripts)}
    if managers is not None:
        out["managers"] = [{"id": m.id, "name": m.name} for m in managers]
    return out


def manager_doc(manager: Manager, now: dt.datetime, online_seconds: float,
                projects: list[Project] | None = None) -> dict[str, Any]:
    if manager.last_seen is None:
        health, age = "never-seen", None
    else:
        age = max(0.0, (now - manager.last_seen).total_seconds())
        health = "online" if age <= online_seconds else "offline"
    out = {"id": manager.id, "name": manager.name, "url": manager.url, "version": manager.version,
           "nr_of_workers": manager.nr_of_workers, "idle_workers": manager.idle_workers,
           "worker_task_types": manager.worker_task_types, "variables": manager.variables,
           "created": iso(manager.created), "last_seen": iso(manager.last_seen),
           "seconds_since_seen": None if age is None else round(age, 1), "link_health": health,
           "last_startup": iso(manager.last_startup), "last_worker_report": iso(manager.last_worker_report),
           "queue_length": manager.queue_length}
    if projects is not None:
        out["projects"] = [{"id": p.id, "name": p.name} for p in projects]
    return out


def job_page_path(job_id: str) -> str:
    """The job's web page, relative to the Server's URL: behind a proxy the Server cannot know its own."""
    return f"/jobs/{quote(job_id, safe='')}"


def job_doc(row: dict[str, Any], depends_on: list[str] | None = None) -> dict[str, Any]:
    """A job from a dict row (Job fields plus project_name, manager_name, user_name)."""
    total, to_store = row["tasks_total"], row["tasks_to_store"]
    reason = row["status_reason"] or (f"storing its tasks: {to_store:,} of {total:,} to go" if to_store else "")
    return {
        "id": row["id"], "name": row["name"], "type": row["job_type"], "status": row["status"],
        "status_reason": reason, "priority": row["priority"], "settings": row["settings"],
        "metadata": row["metadata"], "project": row["project"], "project_name": row.get("project_name"),
        "manager": row["manager"], "manager_name": row.get("manager_name"), "user": row["user"],
        "user_name": row.get("user_name"), "created": iso(row["created"]), "updated": iso(row["updated"]),
        "start_paused": row["start_paused"], "worker_tag": row["worker_tag"], "memory_mb": row["memory_mb"],
        "files_mode": row["files_mode"], "depends_on": depends_on or [], "blocked": row["blocked"],
        "task_counts": row["task_counts"], "tasks_total": total, "tasks_to_store": to_store,
        "progress": round(row["progress_points"] / total, 2) if total else 0.0,
        "web_url": job_page_path(row["id"]),
    }


def task_doc(task: Task, full: bool = True) -> dict[str, Any]:
    out = {"id": task.id, "job": task.job_id, "name": task.name, "task_type": task.task_type,
           "status": task.status, "priority": task.priority, "job_priority": task.job_priority,
           "parents": task.parents, "worker": task.worker, "activity": task.activity,
           "progress": task.progress, "current_command_idx": task.current_command_idx,
           "command_progress": task.command_progress, "failed_by_workers": task.failed_by_workers,
           "created": iso(task.created), "updated": iso(task.updated), "started": iso(task.started),
           "finished": iso(task.finished), "canceled_by": task.canceled_by}
    if full:
        out.update({"commands": task.commands, "log_tail": task.log_tail, "metrics": task.metrics, "needs": task.needs,
                    "log_uploaded": iso(task.log_uploaded)})
    return out


def worker_doc(w: WorkerRecord, manager_name: str) -> dict[str, Any]:
    return {"id": w.worker_id, "manager": w.manager_id, "manager_name": manager_name, "nickname": w.nickname,
            "status": w.status, "platform": w.platform, "supported_task_types": w.supported_task_types,
            "tags": w.tags, "current_task": w.current_task, "current_job": w.current_job,
            "last_seen": w.last_seen, "status_requested": w.status_requested, "resources": w.resources,
            "running_tasks": w.running_tasks or [], "reported": iso(w.reported)}


def worker_docs(rows: list[tuple[WorkerRecord, str]], actions: dict, may_act: set[str] | None) -> list[dict]:
    """Workers as the pages show them: the tasks they run with the names of those tasks and their
    jobs, the actions asked of them lately (`actions`: (manager, worker) -> docs), and whether the
    reader may act on them (`may_act`: the Managers whose workers they may run, None for all).

    What a worker runs is the Server's own knowledge first: the open runs of its tasks in progress,
    which task updates bring within milliseconds. The Manager's worker report, which may be half a
    minute old, adds only tasks the Server does not have (Manager-local ones)."""
    workers = {(w.manager_id, w.worker_id) for w, _ in rows}
    live: dict[tuple[str, str], list[dict]] = {}
    names: dict[str, tuple[str, str]] = {}
    for worker_ids in chunks(sorted({w for _, w in workers})):
        query = (TaskRun.select(TaskRun.worker, Task.id, Task.name, Task.needs, Job.id, Job.name, Job.manager)
                 .join(Task, on=(Task.id == TaskRun.task)).switch(TaskRun).join(Job)
                 .where(TaskRun.finished.is_null(), TaskRun.worker.in_(worker_ids),
                        Task.status.in_([s.value for s in TASK_IN_PROGRESS]))
                 .order_by(TaskRun.started).tuples())
        for worker, tid, tname, needs, jid, jname, manager in query:
            if (manager, worker) in workers:
                live.setdefault((manager, worker), []).append({"id": tid, "job": jid, "name": tname, "needs": needs,
                                                               "job_name": jname})
                names[tid] = (tname, jname)
    reported = sorted({t for w, _ in rows for t in [w.current_task, *(r.get("id") for r in w.running_tasks or [])]
                       if isinstance(t, str) and t and t not in names})
    for chunk in chunks(reported):
        for tid, tname, jname in (Task.select(Task.id, Task.name, Job.name).join(Job)
                                  .where(Task.id.in_(chunk)).tuples()):
            names[tid] = (tname, jname)
    out = []
    for w, manager_name in rows:
        doc = worker_doc(w, manager_name)
        local = [{**r, "job_name": None} for r in doc["running_tasks"]
                 if isinstance(r, dict) and r.get("id") not in names]
        running = live.get((w.manager_id, w.worker_id), []) + local
        if doc["current_task"] in names and doc["current_task"] not in {r["id"] for r in running}:
            # a task of the Server's that ended since the report: the latest one running instead
            doc["current_task"], doc["current_job"] = (running[-1]["id"], running[-1]["job"]) if running else (None, None)
        tname, jname = names.get(doc["current_task"] or "", (None, None))
        doc.update(running_tasks=running, current_task_name=tname, current_job_name=jname,
                   actions=actions.get((w.manager_id, w.worker_id), []),
                   may_act=may_act is None or w.manager_id in may_act)
        out.append(doc)
    return out
