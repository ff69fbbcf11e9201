"""What users may see of the farm: managers with their link health, and their workers."""

from __future__ import annotations

from backend.web import not_found

from .. import waiting
from ..admin import find_project, visible_manager_ids, visible_project_ids
from ..jobs import visible_workers
from ..models import Manager, Project, ProjectManager
from ..views import manager_doc, worker_doc
from .common import query_str


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
                tag="farm", responses={200: ("the workers", "Workers")})
    def workers(user):
        return {"workers": [worker_doc(w, name) for w, name in visible_workers(user)]}
