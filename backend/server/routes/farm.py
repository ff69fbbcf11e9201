"""What users may see of the farm: managers with their link health, and their workers."""

from __future__ import annotations

from ..admin import visible_manager_ids
from ..jobs import visible_workers
from ..models import Manager, Project, ProjectManager
from ..views import manager_doc, worker_doc


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

    @routes.add("GET", "/api/workers", summary="Workers of all (visible) managers, as last reported",
                tag="farm", responses={200: ("the workers", "Workers")})
    def workers(user):
        return {"workers": [worker_doc(w, name) for w, name in visible_workers(user)]}
