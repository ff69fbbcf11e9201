"""The commands a worker can run, by name. Importing this package registers them all."""

from . import basic, blender, ffmpeg, files  # noqa: F401 - registration by import
from .base import COMMANDS, Command, CommandContext, CommandError, SettingError, get

__all__ = ["COMMANDS", "Command", "CommandContext", "CommandError", "SettingError", "get"]
