"""Users, projects, managers and their links: used by the CLI and the admin routes alike.

Each function writes in its own write transaction and raises ApiError for
anything the caller got wrong (the CLI prints the message and exits 1).
"""

from __future__ import annotations

import re

import peewee

from backend.web import ApiError, bad_request, conflict, not_found

from . import auth
from .database import write
from .models import Manager, Project, ProjectManager, ProjectMember, User

ROLES = ("admin", "artist")
MAX_DESCRIPTION = 2000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@+-]{0,99}$")


def check_name(kind: str, name) -> str:
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise bad_request(f"{kind} name must be 1-100 letters, digits, spaces or ._@+- "
                          f"(starting with a letter or digit), not {name!r}", "invalid_name")
    return name.strip()


def find_project(ref: str) -> Project:
    project = Project.get_or_none((Project.id == ref) | (Project.name == ref))
    if project is None:
        raise not_found(f"no project '{ref}'")
    return project


def find_manager(ref: str) -> Manager:
    manager = Manager.get_or_none((Manager.id == ref) | (Manager.name == ref))
    if manager is None:
        raise not_found(f"no manager '{ref}'")
    return manager


def find_user(ref: str) -> User:
    user = User.get_or_none((User.id == ref) | (User.name == ref))
    if user is None:
        raise not_found(f"no user '{ref}'")
    return user


def create_project(db, name: str, description: str = "") -> Project:
    name = check_name("project", name)
    check_text("description", description or "", MAX_DESCRIPTION)
    with write(db):
        if Project.get_or_none(Project.name == name):
            raise conflict(f"project '{name}' already exists", "exists")
        return Project.create(name=name, description=description or "")


def update_project(db, project_ref: str, changes: dict) -> Project:
    """Change a project's description, storage quota (bytes; None: the Server's default; 0: none) or
    whether Blender may run the scripts of its blend files (allow_scripts)."""
    unknown = set(changes) - {"description", "quota_bytes", "allow_scripts"}
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(sorted(unknown))}; a project has description, "
                          "quota_bytes and allow_scripts", "unknown_field")
    if "description" in changes:
        check_text("description", changes["description"], MAX_DESCRIPTION)
    quota = changes.get("quota_bytes")
    if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int) or quota < 0):
        raise bad_request("'quota_bytes' must be a number of bytes (0: no limit) or null (the Server's "
                          "default)", "invalid_field")
    if "allow_scripts" in changes and not isinstance(changes["allow_scripts"], bool):
        raise bad_request("'allow_scripts' must be true or false", "invalid_field")
    with write(db):
        project = find_project(project_ref)
        for key, value in changes.items():
            setattr(project, key, value)
        project.save()
    return project


def check_password(password) -> None:
    if not isinstance(password, str) or not 8 <= len(password) <= 1024:
        raise bad_request("a password needs 8 to 1024 characters", "invalid_password")


def check_text(key: str, value, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise bad_request(f"'{key}' must be a text of at most {limit} characters", "invalid_field")
    return value


def create_user(db, name: str, role: str = "artist", password: str | None = None,
                projects: list[str] | None = None, token_label: str = "created") -> tuple[User, str]:
    """A new user with one API token: (user, token)."""
    name = check_name("user", name)
    if role not in ROLES:
        raise bad_request(f"role must be one of {', '.join(ROLES)}, not '{role}'", "invalid_role")
    if password is not None:
        check_password(password)
    password_hash = auth.hash_password(password) if password else None
    with write(db):
        if User.get_or_none(User.name == name):
            raise conflict(f"user '{name}' already exists", "exists")
        found = [find_project(p) for p in projects or []]
        user = User.create(name=name, role=role, password_hash=password_hash)
        for project in found:
            ProjectMember.create(project=project, user=user)
        token = auth.new_user_token(user, token_label)
    return user, token


def set_password(db, user_ref: str, password: str) -> User:
    """A new password; every API token and web session of the user ends."""
    check_password(password)
    password_hash = auth.hash_password(password)
    with write(db):
        user = find_user(user_ref)
        user.password_hash = password_hash
        user.save()
        auth.end_all_sign_ins(user)
        return user


def new_token(db, user_ref: str, label: str = "cli", days: float | None = None) -> tuple[User, str]:
    with write(db):
        user = find_user(user_ref)
        return user, auth.new_user_token(user, label, days)


def sign_out_everywhere(db, user_ref: str) -> tuple[User, int]:
    """End every API token and web session of the user: (user, how many ended)."""
    with write(db):
        user = find_user(user_ref)
        return user, auth.end_all_sign_ins(user)


def add_member(db, project_ref: str, user_ref: str) -> tuple[Project, User]:
    with write(db):
        project, user = find_project(project_ref), find_user(user_ref)
        try:
            with db.atomic():
                ProjectMember.create(project=project, user=user)
        except peewee.IntegrityError:
            pass
        return project, user


def create_manager(db, name: str) -> tuple[Manager, str]:
    """A new manager and its token: (manager, token)."""
    name = check_name("manager", name)
    token, token_hash = auth.new_manager_secret()
    with write(db):
        if Manager.get_or_none(Manager.name == name):
            raise conflict(f"manager '{name}' already exists", "exists")
        manager = Manager.create(name=name, token_hash=token_hash)
    return manager, token


def reset_manager_token(db, manager_ref: str) -> tuple[Manager, str]:
    token, token_hash = auth.new_manager_secret()
    with write(db):
        manager = find_manager(manager_ref)
        manager.token_hash = token_hash
        manager.save()
    return manager, token


def link_manager(db, manager_ref: str, project_ref: str) -> tuple[Manager, Project]:
    with write(db):
        manager, project = find_manager(manager_ref), find_project(project_ref)
        if not ProjectManager.get_or_none(ProjectManager.project == project, ProjectManager.manager == manager):
            ProjectManager.create(project=project, manager=manager)
        return manager, project


def unlink_manager(db, manager_ref: str, project_ref: str) -> None:
    with write(db):
        manager, project = find_manager(manager_ref), find_project(project_ref)
        n = ProjectManager.delete().where(ProjectManager.project == project,
                                          ProjectManager.manager == manager).execute()
        if not n:
            raise not_found(f"manager '{manager.name}' is not linked to project '{project.name}'")


def user_projects(user: User) -> list[Project]:
    if user.is_admin:
        return list(Project.select().order_by(Project.name))
    return list(Project.select().join(ProjectMember).where(ProjectMember.user == user.id).order_by(Project.name))


def visible_project_ids(user: User) -> set[str] | None:
    """The projects whose jobs the user sees; None means all (admins)."""
    if user.is_admin:
        return None
    return {pid for (pid,) in ProjectMember.select(ProjectMember.project).where(
        ProjectMember.user == user.id).tuples()}


def visible_manager_ids(user: User) -> set[str] | None:
    projects = visible_project_ids(user)
    if projects is None:
        return None
    if not projects:
        return set()
    return {mid for (mid,) in ProjectManager.select(ProjectManager.manager).where(
        ProjectManager.project.in_(list(projects))).tuples()}


__all__ = ["ApiError", "create_project", "update_project", "create_user", "create_manager", "link_manager", "unlink_manager",
           "add_member", "set_password", "new_token", "sign_out_everywhere", "reset_manager_token", "find_project", "find_manager",
           "find_user", "user_projects", "visible_project_ids", "visible_manager_ids"]
