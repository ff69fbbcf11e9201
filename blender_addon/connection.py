"""The "Test connection" button's logic: find the first thing that is wrong.

Each step builds on the one before (a Server that cannot be reached has no
version to compare), so the report names exactly one problem, in the words an
artist needs to fix it, or says everything is fine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .client import AuthError, Client, ClientError, Unreachable, VersionMismatch

log = logging.getLogger(__name__)

UNREACHABLE = "unreachable"
NOT_FLAMENCO = "not-flamenco"
VERSION_MISMATCH = "version-mismatch"
NOT_SIGNED_IN = "not-signed-in"
BAD_TOKEN = "bad-token"
NO_PROJECT = "no-project"
UNKNOWN_PROJECT = "unknown-project"
NO_MANAGER = "no-manager"
MANAGER_OFFLINE = "manager-offline"
OK = "ok"


@dataclass
class ConnectionReport:
    problem: str
    message: str
    server_version: str = ""
    user: str = ""
    projects: list[str] = field(default_factory=list)
    managers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem == OK


def project_names(projects: list[dict]) -> list[str]:
    return [str(p.get("name") or p.get("id")) for p in projects if isinstance(p, dict)]


def _ref_matches(ref, project: dict) -> bool:
    if isinstance(ref, dict):
        return any(_ref_matches(ref.get(k), project) for k in ("id", "name", "_id") if ref.get(k))
    return ref is not None and str(ref) in {str(project.get("id")), str(project.get("name")),
                                            str(project.get("_id"))}


def managers_for_project(managers: list[dict], project: dict | str) -> list[dict]:
    """The managers linked to `project` (a project document, or its name)."""
    if isinstance(project, str):
        project = {"name": project, "id": project}
    out = []
    for m in managers:
        if not isinstance(m, dict):
            continue
        linked = m.get("projects")
        if linked is None and m.get("project") is not None:
            linked = [m.get("project")]
        if linked is None:
            continue
        if any(_ref_matches(ref, project) for ref in linked):
            out.append(m)
    return out


def manager_name(m: dict) -> str:
    return str(m.get("name") or m.get("nickname") or m.get("id") or "?")


def check_connection(cl: Client, project: str) -> ConnectionReport:
    """Walk the chain Server -> version -> token -> project -> manager."""
    if not cl.url:
        return ConnectionReport(UNREACHABLE, "No Server URL is set. Enter the address of your "
                                "Flamenco Server, for example http://flamenco-server:8080.")
    try:
        ver = cl.check_version()
    except VersionMismatch as ex:
        return ConnectionReport(VERSION_MISMATCH, ex.message)
    except Unreachable as ex:
        return ConnectionReport(UNREACHABLE, ex.message)
    except ClientError as ex:
        return ConnectionReport(NOT_FLAMENCO, ex.message)
    server_version = str(ver.get("version", "?"))

    if not cl.token:
        return ConnectionReport(NOT_SIGNED_IN, f"The Server (Flamenco {server_version}) is reachable, "
                                "but you are not signed in. Press Sign In.", server_version)
    try:
        me = cl.me()
    except AuthError:
        return ConnectionReport(BAD_TOKEN, "The Server does not accept your sign-in token (it expired "
                                "or was revoked). Sign in again.", server_version)
    except ClientError as ex:
        return ConnectionReport(UNREACHABLE, ex.message, server_version)
    user = str((me or {}).get("username") or (me or {}).get("name") or "?")

    try:
        projects = cl.projects()
        managers = cl.managers()
    except ClientError as ex:
        return ConnectionReport(UNREACHABLE, ex.message, server_version, user)
    names = project_names(projects)
    if not project:
        return ConnectionReport(NO_PROJECT, "Signed in, but no project is chosen. Pick one of: "
                                + (", ".join(names) or "(you have no projects; ask an admin)") + ".",
                                server_version, user, names)
    doc = next((p for p in projects if _ref_matches(project, p)), None)
    if doc is None:
        return ConnectionReport(UNKNOWN_PROJECT, f"The project '{project}' does not exist on the Server "
                                "or is not one of yours. Your projects: "
                                + (", ".join(names) or "none") + ".", server_version, user, names)
    linked = managers_for_project(managers, doc)
    if not linked:
        return ConnectionReport(NO_MANAGER, f"No Manager is linked to the project '{project}', so its "
                                "jobs cannot run. Ask an admin to link one "
                                f"(flamenco-server link-manager MANAGER {project}).",
                                server_version, user, names)
    if all(m.get("link_health") == "never-seen" for m in linked):
        names_ = ", ".join(manager_name(m) for m in linked)
        return ConnectionReport(MANAGER_OFFLINE, f"The project's Manager {names_} has never contacted the "
                                "Server, so it cannot take jobs yet. Start it (flamenco-manager) and check "
                                "its Server URL and token.", server_version, user, names,
                                [manager_name(m) for m in linked])
    mnames = [manager_name(m) for m in linked]
    return ConnectionReport(OK, f"Connected to Flamenco {server_version} as {user}; project "
                            f"'{project}' runs on {', '.join(_with_health(m) for m in linked)}.",
                            server_version, user, names, mnames)


def _with_health(m: dict) -> str:
    name = manager_name(m)
    if m.get("link_health") == "offline":
        age = m.get("seconds_since_seen")
        when = f", last seen {int(age) // 60} min ago" if isinstance(age, (int, float)) else ""
        return f"{name} (offline{when})"
    if m.get("link_health") == "never-seen":
        return f"{name} (never seen)"
    return name
