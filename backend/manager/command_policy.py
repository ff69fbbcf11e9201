"""What this Manager lets its workers run, checked when it takes a task (shared/commands.py).

The Server checks the same when a job is submitted; the Manager's own lists
are the site admin's say over the machines of this site, whatever the Server
allows.
"""

from __future__ import annotations

from shared import documents
from shared.commands import COMMAND_SUFFIX, EXEC_COMMAND, command_problem

from .config import ManagerConfig


def task_problem(doc: documents.Task, config: ManagerConfig) -> str | None:
    """Why this Manager will not run the task (None when it will)."""
    for command in doc.commands:
        if command.name == EXEC_COMMAND and not config.exec_command:
            return "this Manager does not run 'exec' commands (manager.exec_command = false)"
        for key, value in (command.settings or {}).items():
            if key.endswith(COMMAND_SUFFIX) and isinstance(value, str):
                problem = command_problem(key, value, config.allowed_executables, config.allowed_command_arguments,
                                          who="this Manager")
                if problem:
                    return f"command {command.name}: setting '{key}' {problem}"
    return None
