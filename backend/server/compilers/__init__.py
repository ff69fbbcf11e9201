"""Job types and their compilers; see base.py for the interface and registry.py for loading."""

from .base import (CompileContext, CompilerError, JobType, Setting, SettingError, TaskSpec, command,
                   register_compiler, validate_settings)
from .registry import Registry, RegistryError

__all__ = ["CompileContext", "CompilerError", "JobType", "Setting", "SettingError", "TaskSpec", "command",
           "register_compiler", "validate_settings", "Registry", "RegistryError"]
