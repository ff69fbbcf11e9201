"""Unauthenticated basics, and what a signed-in user may ask about themselves (signing in: account.py)."""

from __future__ import annotations

from backend.web import not_found
from shared.version import API_VERSION, __version__

from .. import blobs
from ..admin import user_projects
from ..models import Manager, ProjectManager
from ..views import project_doc, user_doc


def install(routes, ctx) -> None:
    @routes.add("GET", "/api/version", summary="Server version and API version", tag="meta", auth_kind="none",
                responses={200: ("the versions", "Version")})
    def version():
        return {"version": __version__, "api_version": API_VERSION}

    @routes.add("GET", "/api/openapi.json", summary="This API, as an OpenAPI 3 document", tag="meta",
                auth_kind="none", responses={200: "the OpenAPI document"})
    def openapi():
        return routes.document()

    @routes.add("GET", "/api/me", summary="The signed-in user and their projects", tag="meta",
                responses={200: ("the user", "User")})
    def me(user):
        return user_doc(user, user_projects(user))

    @routes.add("GET", "/api/projects", summary="The projects the user works in (all, for admins)", tag="meta",
                responses={200: ("the projects", "Projects")})
    def projects(user):
        found = user_projects(user)
        links: dict[str, list] = {}
        if found:
            rows = (Manager.select(Manager.id, Manager.name, ProjectManager.project)
                    .join(ProjectManager).where(ProjectManager.project.in_([p.id for p in found]))
                    .order_by(Manager.name))
            for m in rows:
                links.setdefault(m.projectmanager.project_id, []).append(m)
        return {"projects": [project_doc(p, links.get(p.id, [])) for p in found]}

    @routes.add("GET", "/api/projects/<project_ref>/usage", summary="What a project's jobs store, and its quota",
                tag="meta", responses={200: ("bytes used and the quota (0: none)", "ProjectUsage"),
                                       404: "no such project among yours"})
    def project_usage(user, project_ref):
        project = next((p for p in user_projects(user) if project_ref in (p.id, p.name)), None)
        if project is None:
            raise not_found(f"no project '{project_ref}'")
        used, _ = blobs.project_usage(project.id)
        return {"project": project.id, "used_bytes": used,
                "quota_bytes": blobs.project_quota(project, ctx.config.project_quota_bytes)}

    @routes.add("GET", "/api/job-types", summary="The job types with their settings schemas", tag="meta",
                responses={200: ("the job types", "JobTypes")})
    def job_types(user):
        return {"job_types": ctx.registry.describe()}
