"""Which programs a task may run: the allow-list check of settings that name one.

Settings ending in `_cmd` (`blender_cmd`, `ffmpeg_cmd`) name the program a
worker runs. The Server checks them when a job is submitted and each Manager
again, with its own lists, when it takes the task: only a Manager variable
(`{blender}`, set by whoever runs the Manager) or an allowed executable,
followed only by allowed arguments, so a project member cannot make a worker
run `/bin/sh -c ...`. The `exec` command runs any command line: its job type
is for admins, and a Manager may refuse it altogether.
"""

from __future__ import annotations

import re
import shlex

COMMAND_SUFFIX = "_cmd"
EXEC_COMMAND = "exec"
"""The worker command that runs an arbitrary command line (job type exec-command)."""

_VARIABLE = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")


def command_problem(key: str, value: str, executables: list[str], arguments: list[str],
                    who: str = "the Server") -> str | None:
    """Why the program setting `key` = `value` may not run (None when it may)."""
    try:
        words = shlex.split(value)
    except ValueError as ex:
        return f"cannot be split into words: {ex}"
    if not words:
        return "may not be empty"
    exe, args = words[0], words[1:]
    if not _VARIABLE.match(exe) and exe not in executables:
        return (f"'{exe[:100]}' is not allowed: use a Manager variable such as '{{{key[:-len(COMMAND_SUFFIX)]}}}' "
                f"or one of {who}'s allowed executables ({', '.join(executables) or 'none'})")
    bad = [a for a in args if a not in arguments]
    if bad:
        return f"argument '{bad[0][:100]}' is not allowed; allowed are: {', '.join(arguments) or 'none'}"
    return None
