"""Admin routes: users, projects, managers and their links (the CLI does the same locally)."""

from __future__ import annotations

import bottle

from backend.web import bad_request, read_object

from .. import admin
from ..models import Project, ProjectMember, User
from ..views import manager_doc, project_doc, user_doc
from .common import no_content


def _str(body: dict, key: str, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise bad_request(f"'{key}' must be a non-empty string", "invalid_field")
    return value


def install(routes, ctx) -> None:
    db = ctx.db

    @routes.add("GET", "/api/users", summary="All users", tag="admin", auth_kind="admin",
                responses={200: ("the users", "Users")})
    def users(user):
        members: dict[str, list[Project]] = {}
        for m in ProjectMember.select(ProjectMember, Project).join(Project).order_by(Project.name):
            members.setdefault(m.user_id, []).append(m.project)
        return {"users": [user_doc(u, members.get(u.id, [])) for u in User.select().order_by(User.name)]}

    @routes.add("POST", "/api/users", summary="Create a user; answers its first API token", tag="admin",
                auth_kind="admin", body="NewUser",
                responses={201: ("the user and token", "UserWithToken"), 409: "the name is taken"})
    def create_user(user):
        body = read_object()
        projects = body.get("projects") or []
        if not isinstance(projects, list) or not all(isinstance(p, str) for p in projects):
            raise bad_request("'projects' must be a list of project ids or names", "invalid_field")
        new, token = admin.create_user(db, _str(body, "name"), body.get("role", "artist"),
                                       _str(body, "password", required=False), projects)
        bottle.response.status = 201
        return {"user": user_doc(new, admin.user_projects(new)), "token": token}

    @routes.add("POST", "/api/projects", summary="Create a project", tag="admin", auth_kind="admin",
                body="NewProject", responses={201: ("the project", "Project"), 409: "the name is taken"})
    def create_project(user):
        body = read_object()
        project = admin.create_project(db, _str(body, "name"), body.get("description") or "")
        bottle.response.status = 201
        return project_doc(project, [])

    @routes.add("PATCH", "/api/projects/<project_ref>", summary="Change a project's description, storage quota "
                "or whether its blend files' scripts may run", tag="admin", auth_kind="admin", body="ProjectChange",
                responses={200: ("the project", "Project"), 404: "no such project"})
    def change_project(user, project_ref):
        project = admin.update_project(db, project_ref, read_object())
        return project_doc(project, [])

    @routes.add("POST", "/api/projects/<project_ref>/members", summary="Add a user to a project", tag="admin",
                auth_kind="admin", body="Member", responses={204: "added (or already a member)",
                                                             404: "no such project or user"})
    def add_member(user, project_ref):
        admin.add_member(db, project_ref, _str(read_object(), "user"))
        return no_content()

    @routes.add("POST", "/api/projects/<project_ref>/managers", summary="Link a manager to a project",
                tag="admin", auth_kind="admin", body="Link",
                responses={204: "linked (or already linked)", 404: "no such project or manager"})
    def link(user, project_ref):
        admin.link_manager(db, _str(read_object(), "manager"), project_ref)
        return no_content()

    @routes.add("DELETE", "/api/projects/<project_ref>/managers/<manager_ref>",
                summary="Unlink a manager from a project", tag="admin", auth_kind="admin",
                responses={204: "unlinked", 404: "not linked"})
    def unlink(user, project_ref, manager_ref):
        admin.unlink_manager(db, manager_ref, project_ref)
        return no_content()

    @routes.add("POST", "/api/managers", summary="Create a manager; answers its id and token", tag="admin",
                auth_kind="admin", body="NewManager",
                responses={201: ("the manager and token", "ManagerWithToken"), 409: "the name is taken"})
    def create_manager(user):
        manager, token = admin.create_manager(db, _str(read_object(), "name"))
        bottle.response.status = 201
        return {"manager": manager_doc(manager, ctx.clock.now(), ctx.config.manager_online_seconds, []),
                "token": token}

    @routes.add("POST", "/api/managers/<manager_ref>/token", summary="Give a manager a new token (the old "
                "one stops working)", tag="admin", auth_kind="admin",
                responses={200: ("the manager and its new token", "ManagerWithToken"), 404: "no such manager"})
    def reset_token(user, manager_ref):
        manager, token = admin.reset_manager_token(db, manager_ref)
        return {"manager": manager_doc(manager, ctx.clock.now(), ctx.config.manager_online_seconds),
                "token": token}
