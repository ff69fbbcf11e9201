"""The 'exec-command' job type: one 'debug' task that runs a command line on a worker.

Any command line, as the worker's user: only admins may submit it (admin_only).
"""

from __future__ import annotations

import shlex

from .base import CompileContext, JobType, Setting, SettingError, TaskSpec, command, register_compiler


@register_compiler("exec-command")
class ExecCommand(JobType):
    label = "Execute command"
    description = "Runs one command line on a worker (task type 'debug'); admins only."
    artist_visible = False
    admin_only = True
    settings_schema = [
        Setting("cmd", "string", required=True, label="Command",
                description="The command line, split the way a POSIX shell would (no shell is run)."),
    ]

    def task_types(self, settings, ctx):
        return {"debug"}

    def check(self, settings, ctx):
        try:
            if not shlex.split(settings["cmd"]):
                raise SettingError("cmd", "may not be empty")
        except ValueError as ex:
            raise SettingError("cmd", f"cannot be split into arguments: {ex}") from None

    def compile(self, settings, ctx: CompileContext) -> list[TaskSpec]:
        return [TaskSpec("exec-command", "debug", [command("exec", cmd=settings["cmd"])])]
