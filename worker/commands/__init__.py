"""The commands a worker can run, by name. Importing this package registers them all."""

from . import bake, basic, blender, ffmpeg, files, merge  # noqa: F401 - registration by import
from .base import COMMANDS, Command, CommandContext, CommandError, SettingError, get

__all__ = ["COMMANDS", "Command", "CommandContext", "CommandError", "SettingError", "get"]
