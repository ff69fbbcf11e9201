"""echo, sleep, exec: the debugging commands."""

from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass

from .base import Command, CommandContext, CommandError, SettingError, register, req_number, req_str


@register
class Echo(Command):
    name = "echo"

    def validate(self, settings):
        return req_str(settings, "message", allow_empty=True)

    def execute(self, ctx: CommandContext, message: str) -> None:
        ctx.log(message)
        ctx.activity(message)


@register
class Sleep(Command):
    name = "sleep"

    def validate(self, settings):
        return req_number(settings, "time_in_seconds", minimum=0)

    def execute(self, ctx: CommandContext, seconds: float) -> None:
        ctx.log(f"sleeping {seconds:g} seconds")
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ctx.sleep(min(remaining, 1.0))
            ctx.progress(1 - max(deadline - time.monotonic(), 0) / seconds if seconds else 1.0,
                         f"sleeping, {max(deadline - time.monotonic(), 0):.0f} s left")


@dataclass
class ExecParams:
    argv: list[str]


@register
class Exec(Command):
    name = "exec"

    def validate(self, settings):
        cmd = req_str(settings, "cmd")
        try:
            argv = shlex.split(cmd)
        except ValueError as ex:
            raise SettingError("cmd", f"cannot split '{cmd}' into words: {ex}") from None
        found = shutil.which(argv[0])
        if not found:
            raise SettingError("cmd", f"executable '{argv[0]}' not found on this worker")
        return ExecParams([found] + argv[1:])

    def execute(self, ctx: CommandContext, params: ExecParams) -> None:
        result = ctx.run(params.argv, check=False)
        if result.returncode != 0:
            raise CommandError(f"exec: '{shlex.join(params.argv)}' exited with code {result.returncode}")
