"""Add-on preferences: the Server, signing in (only the token is kept), project, file mode."""

from __future__ import annotations

import logging

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, StringProperty

from . import connection, runtime, scene_data, ui_record
from .client import AuthError, Client, ClientError, Unreachable, normalize_url
from .props import FLAMENCO_PG_name

log = logging.getLogger(__name__)

FILE_MODES = [
    ("upload", "Upload to the Server",
     "Pack the scene and upload the files the Server does not have yet. Needs no shared disk"),
    ("shared", "Shared Storage",
     "Pack the scene onto a disk the workers share; paths are translated with the Manager's "
     "two-way variables"),
]

PROJECT_FINDERS = [
    ("AUTO", "Automatic", "The nearest folder above the .blend with .blender_project, .git or .svn; "
                          "otherwise the .blend's own folder"),
    ("BLENDER_PROJECT", "Blender Project", "The nearest folder with a .blender_project"),
    ("GIT", "Git", "The nearest folder with a .git"),
    ("SUBVERSION", "Subversion", "The nearest folder with a .svn"),
    ("NONE", "The .blend's Folder", "The folder the .blend file is in"),
]


def _fill(collection, names) -> None:
    collection.clear()
    for name in names:
        collection.add().name = name


def refresh_server_lists(p, client: Client) -> None:
    """Projects and managers for the preference fields (on sign-in and after a test)."""
    _fill(p.known_projects, connection.project_names(client.projects()))
    _fill(p.known_managers, [connection.manager_name(m) for m in client.managers()])
    if not p.project and len(p.known_projects) == 1:
        p.project = p.known_projects[0].name


def _server_url_changed(self, context) -> None:
    """A token belongs to the Server that gave it: another Server URL signs out."""
    if self.token and self.signed_in_url and normalize_url(self.server_url) != self.signed_in_url:
        self.token = ""
        self.signed_in_url = ""
        self.connection_ok = False
        self.connection_message = "The Server URL changed; sign in to that Server."
        wm = context.window_manager if context else None
        if wm is not None:
            wm.flamenco_jobs.clear()


class FlamencoPreferences(bpy.types.AddonPreferences):
    bl_idname = scene_data.ADDON_ID

    server_url: StringProperty(name="Server URL", default="http://localhost:8080", update=_server_url_changed,
                               description="The address of your Flamenco Server")
    token: StringProperty(name="Token", subtype="PASSWORD", options={"HIDDEN"},
                          description="The API token the Server gave at sign-in (never the password)")
    signed_in_url: StringProperty(options={"HIDDEN"}, description="The Server the token is from")
    username: StringProperty(name="Signed In As", options={"HIDDEN"})
    project: StringProperty(name="Project", description="The project your jobs belong to")
    manager: StringProperty(name="Manager", description="Run jobs on this Manager. Empty: let the "
                                                        "Server choose one linked to the project")
    file_mode: EnumProperty(name="Files", items=FILE_MODES, default="upload")
    shared_storage_path: StringProperty(
        name="Shared Storage", subtype="DIR_PATH",
        description="Where jobs are packed on the shared disk, as this computer sees it")
    project_finder: EnumProperty(name="Project Folder", items=PROJECT_FINDERS, default="AUTO",
                                 description="Which folder's layout the job keeps")
    open_browser_after_submit: BoolProperty(name="Open the Job's Page After Submitting")
    known_projects: CollectionProperty(type=FLAMENCO_PG_name)
    known_managers: CollectionProperty(type=FLAMENCO_PG_name)
    connection_message: StringProperty()
    connection_ok: BoolProperty()
    connection_unreachable: BoolProperty(description="The message says the Server could not be reached; "
                                                     "the next answer from it clears the message")

    def draw(self, context):
        layout = ui_record.wrap(self.layout, "preferences")
        layout.use_property_split = True
        col = layout.column()
        col.prop(self, "server_url")
        row = col.row(align=True)
        if self.token:
            row.label(text=f"Signed in as {self.username or '?'}", icon="CHECKMARK")
            row.operator(FLAMENCO_OT_sign_out.bl_idname, icon="X")
        else:
            row.label(text="Not signed in", icon="ERROR")
            row.operator(FLAMENCO_OT_sign_in.bl_idname, icon="USER")
        col.prop_search(self, "project", self, "known_projects", icon="FILE_FOLDER")
        col.prop_search(self, "manager", self, "known_managers", icon="NETWORK_DRIVE")
        col.prop(self, "file_mode")
        if self.file_mode == "shared":
            col.prop(self, "shared_storage_path")
        col.prop(self, "project_finder")
        col.prop(self, "open_browser_after_submit")
        row = layout.row()
        row.operator(FLAMENCO_OT_test_connection.bl_idname, icon="LINKED")
        if self.connection_message:
            box = layout.box()
            icon = "CHECKMARK" if self.connection_ok else "ERROR"
            for i, line in enumerate(_wrap(self.connection_message, 70)):
                box.label(text=line, icon=icon if i == 0 else "BLANK1")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width) or [""]


class FLAMENCO_OT_sign_in(bpy.types.Operator):
    """Sign in to the Flamenco Server with your user name and password, or with an API token;
    only the token is kept"""
    bl_idname = "flamenco.sign_in"
    bl_label = "Sign In"
    bl_options = {"INTERNAL"}

    username: StringProperty(name="User Name", options={"SKIP_SAVE"})
    password: StringProperty(name="Password", subtype="PASSWORD", options={"SKIP_SAVE", "HIDDEN"})
    token: StringProperty(name="API Token", subtype="PASSWORD", options={"SKIP_SAVE", "HIDDEN"},
                          description="Instead of a password: a token an admin made for you "
                                      "(flamenco-server create-user / new-token)")

    def invoke(self, context, event):
        p = scene_data.prefs()
        if p and p.username and not self.username:
            self.username = p.username
        return context.window_manager.invoke_props_dialog(self, width=420)

    def draw(self, context):
        self.layout.prop(self, "username")
        self.layout.prop(self, "password")
        self.layout.label(text="Or, without a password:")
        self.layout.prop(self, "token")

    def _fail(self, p, message: str) -> set[str]:
        self.password = self.token = ""
        p.connection_ok, p.connection_message, p.connection_unreachable = False, message, False
        log.warning("sign-in failed: %s", message)
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def execute(self, context):
        p = scene_data.prefs()
        token = self.token.strip()
        client = Client(p.server_url, token, timeout=10.0)
        try:
            if token:
                user = client.me()
            else:
                answer = client.login(self.username, self.password)
                token, user = answer["token"], answer.get("user")
        except AuthError as ex:
            return self._fail(p, "The Server does not accept this API token." if token else ex.message)
        except ClientError as ex:
            self._fail(p, ex.message)
            p.connection_unreachable = isinstance(ex, Unreachable)
            return {"CANCELLED"}
        self.password = self.token = ""
        p.token = token
        p.signed_in_url = normalize_url(p.server_url)
        p.username = str((user.get("username") or user.get("name")) if isinstance(user, dict) else
                         (self.username or "?"))
        client.token = p.token
        try:
            refresh_server_lists(p, client)
        except ClientError as ex:
            self.report({"WARNING"}, ex.message)
        runtime.fetch_job_types_now()
        p.connection_ok, p.connection_message = True, f"Signed in as {p.username}."
        self.report({"INFO"}, f"Signed in to Flamenco as {p.username}")
        return {"FINISHED"}


class FLAMENCO_OT_sign_out(bpy.types.Operator):
    """Forget the sign-in token"""
    bl_idname = "flamenco.sign_out"
    bl_label = "Sign Out"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        p = scene_data.prefs()
        p.token = p.signed_in_url = ""
        p.connection_ok, p.connection_message = False, "Signed out."
        context.window_manager.flamenco_jobs.clear()
        return {"FINISHED"}


class FLAMENCO_OT_test_connection(bpy.types.Operator):
    """Check the Server URL, the API version, your sign-in, the project and its Manager"""
    bl_idname = "flamenco.test_connection"
    bl_label = "Test Connection"

    def execute(self, context):
        p = scene_data.prefs()
        client = Client(p.server_url, p.token, timeout=8.0)
        report = connection.check_connection(client, p.project)
        p.connection_ok, p.connection_message = report.ok, report.message
        p.connection_unreachable = report.problem == connection.UNREACHABLE
        if report.projects:
            _fill(p.known_projects, report.projects)
        if report.ok:
            try:
                _fill(p.known_managers, [connection.manager_name(m) for m in client.managers()])
            except ClientError:
                pass
            runtime.fetch_job_types_now()
        else:
            log.warning("Test Connection: %s", report.message)
        self.report({"INFO"} if report.ok else {"ERROR"}, report.message)
        return {"FINISHED"} if report.ok else {"CANCELLED"}


classes = (FlamencoPreferences, FLAMENCO_OT_sign_in, FLAMENCO_OT_sign_out, FLAMENCO_OT_test_connection)
register, unregister = bpy.utils.register_classes_factory(classes)
