"""Add-on preferences: the Server, signing in (only the token is kept), project, file mode."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, StringProperty

from . import connection, runtime, scene_data, ui_record
from .client import Client, ClientError
from .props import FLAMENCO_PG_name

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


class FlamencoPreferences(bpy.types.AddonPreferences):
    bl_idname = scene_data.ADDON_ID

    server_url: StringProperty(name="Server URL", default="http://localhost:8080",
                               description="The address of your Flamenco Server")
    token: StringProperty(name="Token", subtype="PASSWORD", options={"HIDDEN"},
                          description="The API token the Server gave at sign-in (never the password)")
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
            for i, line in enumerate(_wrap(self.connection_message, 90)):
                box.label(text=line, icon=icon if i == 0 else "BLANK1")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width) or [""]


class FLAMENCO_OT_sign_in(bpy.types.Operator):
    """Sign in to the Flamenco Server; only the token it returns is kept"""
    bl_idname = "flamenco.sign_in"
    bl_label = "Sign In"
    bl_options = {"INTERNAL"}

    username: StringProperty(name="User Name", options={"SKIP_SAVE"})
    password: StringProperty(name="Password", subtype="PASSWORD", options={"SKIP_SAVE", "HIDDEN"})

    def invoke(self, context, event):
        p = scene_data.prefs()
        if p and p.username and not self.username:
            self.username = p.username
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context):
        self.layout.prop(self, "username")
        self.layout.prop(self, "password")

    def execute(self, context):
        p = scene_data.prefs()
        client = Client(p.server_url, timeout=10.0)
        try:
            answer = client.login(self.username, self.password)
        except ClientError as ex:
            self.password = ""
            p.connection_ok, p.connection_message = False, ex.message
            self.report({"ERROR"}, ex.message)
            return {"CANCELLED"}
        self.password = ""
        p.token = answer["token"]
        user = answer.get("user")
        p.username = (user.get("username") or user.get("name")) if isinstance(user, dict) else \
            str(answer.get("username") or self.username)
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
        p.token = ""
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
        if report.projects:
            _fill(p.known_projects, report.projects)
        if report.ok:
            try:
                _fill(p.known_managers, [connection.manager_name(m) for m in client.managers()])
            except ClientError:
                pass
            runtime.fetch_job_types_now()
        self.report({"INFO"} if report.ok else {"ERROR"}, report.message)
        return {"FINISHED"} if report.ok else {"CANCELLED"}


classes = (FlamencoPreferences, FLAMENCO_OT_sign_in, FLAMENCO_OT_sign_out, FLAMENCO_OT_test_connection)
register, unregister = bpy.utils.register_classes_factory(classes)
