"""The job types a Server knows: the built-in ones plus those loaded from directories.

A registry is built per app (no global state): `Registry.builtin()` scans the
built-in modules for classes marked by `@register_compiler`, and
`load_directory(path)` does the same for every `*.py` in a directory named in
the server config (`job_types_dirs`), so a studio adds a job type by dropping
a module there:

    from backend.server.compilers import JobType, Setting, TaskSpec, command, register_compiler

    @register_compiler("my-type")
    class MyType(JobType):
        settings_schema = [Setting("frames", "frames", required=True)]
        def task_types(self, settings, ctx): return {"sleep"}
        def compile(self, settings, ctx): return [TaskSpec("one", "sleep", [command("sleep", time_in_seconds=1)])]

A loaded type with the name of a built-in one replaces it (with a warning).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path

from .base import JobType, is_registered

log = logging.getLogger(__name__)


class RegistryError(RuntimeError):
    """A job-type module that cannot be loaded, or a bad job type in it."""


class Registry:
    def __init__(self):
        self._types: dict[str, JobType] = {}

    @classmethod
    def builtin(cls) -> "Registry":
        from . import blender_bake, blender_render, blender_render_still, exec_command, sleep, video_encode
        reg = cls()
        for module in (sleep, exec_command, blender_render, video_encode, blender_bake, blender_render_still):
            reg.add_module(module)
        return reg

    def add(self, job_type_cls: type[JobType], origin: str = "built-in") -> None:
        name = job_type_cls.job_type
        if not name:
            raise RegistryError(f"{job_type_cls.__name__} from {origin} has no job type name")
        if name in self._types:
            log.warning("job type '%s' from %s replaces the one already registered", name, origin)
        self._types[name] = job_type_cls()

    def add_module(self, module: types.ModuleType, origin: str | None = None) -> int:
        found = 0
        for value in vars(module).values():
            if is_registered(value) and value.__module__ == module.__name__:
                self.add(value, origin or module.__name__)
                found += 1
        return found

    def load_directory(self, directory: str | Path) -> list[str]:
        """Import every *.py in `directory` and register its job types; their names."""
        path = Path(directory)
        if not path.is_dir():
            raise RegistryError(f"job types directory '{path}' does not exist")
        before = set(self._types)
        for file in sorted(path.glob("*.py")):
            if file.name.startswith("_"):
                continue
            mod_name = f"flamenco_job_types_{abs(hash(str(file.resolve())))}_{file.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, file)
            if spec is None or spec.loader is None:
                raise RegistryError(f"cannot load job type module {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as ex:
                sys.modules.pop(mod_name, None)
                raise RegistryError(f"job type module {file} failed to load: {ex}") from ex
            if not self.add_module(module, str(file)):
                log.warning("job type module %s registers no job type", file)
        added = sorted(set(self._types) - before)
        log.info("loaded job types %s from %s", ", ".join(added) or "(none new)", path)
        return added

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def describe(self) -> list[dict]:
        return [self._types[n].describe() for n in self.names()]
