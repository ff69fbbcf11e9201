"""File management commands: remove, move out of the way, move to final, copy, ..."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shared.overrides import OverrideError, check_source

from .base import Command, CommandContext, CommandError, SettingError, register, req_str


def _path(settings: dict, key: str) -> Path:
    return Path(os.path.expanduser(req_str(settings, key)))


def _absolute(settings: dict, key: str) -> Path:
    path = _path(settings, key)
    if not path.is_absolute():
        raise SettingError(key, f"must be an absolute path, not '{path}'")
    return path


def move_out_of_way(path: Path) -> Path:
    """Rename `path` to '<name>-YYYY-MM-DD_HHMMSS' (its mtime), adding '~N' if that is taken."""
    stamp = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d_%H%M%S")
    target = path.with_name(f"{path.name}-{stamp}")
    counter = 1
    while target.exists() or target.is_symlink():
        target = path.with_name(f"{path.name}-{stamp}~{counter}")
        counter += 1
    path.rename(target)
    return target


@register
class RemoveTree(Command):
    name = "remove_tree"

    def validate(self, settings):
        path = _absolute(settings, "path")
        if path == Path(path.anchor) or path == Path.home():
            raise SettingError("path", f"refusing to remove '{path}'")
        return path

    def execute(self, ctx: CommandContext, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            ctx.log(f"remove_tree: '{path}' does not exist, nothing to remove")
            return
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        ctx.log(f"remove_tree: removed '{path}'")


@register
class RemoveFile(Command):
    name = "remove_file"

    def validate(self, settings):
        return _path(settings, "path")

    def execute(self, ctx: CommandContext, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            ctx.log(f"remove_file: '{path}' does not exist, nothing to remove")
            return
        if path.is_dir() and not path.is_symlink():
            raise CommandError(f"remove_file: '{path}' is a directory; use remove_tree")
        path.unlink()
        ctx.log(f"remove_file: removed '{path}'")


@register
class MoveOutOfWay(Command):
    name = "move_out_of_way"

    def validate(self, settings):
        return _path(settings, "src")

    def execute(self, ctx: CommandContext, src: Path) -> None:
        if not src.exists():
            ctx.log(f"move_out_of_way: '{src}' does not exist, nothing to move")
            return
        target = move_out_of_way(src)
        ctx.log(f"move_out_of_way: moved '{src}' to '{target}'")


@dataclass
class SrcDest:
    src: Path
    dest: Path


def _src_dest(settings: dict) -> SrcDest:
    return SrcDest(_path(settings, "src"), _path(settings, "dest"))


@register
class MoveToFinal(Command):
    name = "move_to_final"

    def validate(self, settings):
        return _src_dest(settings)

    def execute(self, ctx: CommandContext, p: SrcDest) -> None:
        if not p.src.exists():
            ctx.log(f"move_to_final: '{p.src}' does not exist, nothing to move")
            return
        if p.dest.exists():
            moved = move_out_of_way(p.dest)
            ctx.log(f"move_to_final: moved the existing '{p.dest}' out of the way to '{moved}'")
        p.dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(p.src), str(p.dest))
        ctx.log(f"move_to_final: moved '{p.src}' to '{p.dest}'")


@register
class CopyFile(Command):
    name = "copy_file"

    def validate(self, settings):
        return _src_dest(settings)

    def execute(self, ctx: CommandContext, p: SrcDest) -> None:
        if not p.src.is_file():
            raise CommandError(f"copy_file: source '{p.src}' does not exist or is not a file")
        p.dest.parent.mkdir(parents=True, exist_ok=True)
        if p.dest.exists():
            p.dest.unlink()
        shutil.copyfile(p.src, p.dest)
        shutil.copymode(p.src, p.dest)
        ctx.log(f"copy_file: copied '{p.src}' to '{p.dest}'")
        ctx.output_produced([str(p.dest)])


_NUMERIC_PREFIX = re.compile(r"^([0-9_]*[0-9])(.*)$")


def counter_path(dest: Path) -> Path:
    """dest with the next free counter: '2024_01_15-x.mkv' -> '2024_01_15_001-x.mkv', 'x.mkv' -> 'x_001.mkv'."""
    match = _NUMERIC_PREFIX.match(dest.name)
    if match:
        head, tail = match.group(1) + "_", match.group(2)
    else:
        head, tail = dest.stem + "_", dest.suffix
    pattern = re.compile("^" + re.escape(head) + r"(\d+)" + re.escape(tail) + "$")
    highest = 0
    if dest.parent.is_dir():
        for entry in dest.parent.iterdir():
            m = pattern.match(entry.name)
            if m:
                highest = max(highest, int(m.group(1)))
    return dest.with_name(f"{head}{highest + 1:03d}{tail}")


@register
class MoveWithCounter(Command):
    name = "move_with_counter"

    def validate(self, settings):
        return _src_dest(settings)

    def execute(self, ctx: CommandContext, p: SrcDest) -> None:
        if not p.src.exists():
            raise CommandError(f"move_with_counter: source '{p.src}' does not exist")
        p.dest.parent.mkdir(parents=True, exist_ok=True)
        target = counter_path(p.dest)
        shutil.move(str(p.src), str(target))
        ctx.log(f"move_with_counter: moved '{p.src}' to '{target}'")
        ctx.output_produced([str(target)])


@dataclass
class PythonFile:
    filepath: Path
    contents: str


@register
class CreatePythonFile(Command):
    """Writes a render-overrides file; Blender runs it, so it may hold only what shared/overrides.py allows."""
    name = "create_python_file"

    def validate(self, settings):
        filepath = _path(settings, "filepath")
        if filepath.suffix != ".py":
            raise SettingError("filepath", f"must end in '.py', not '{filepath.name}'")
        contents = req_str(settings, "contents", allow_empty=True)
        try:
            check_source(contents)
        except OverrideError as ex:
            raise SettingError("contents", f"only literal values assigned to Blender data paths may be "
                                           f"written: {ex}") from None
        return PythonFile(filepath, contents)

    def execute(self, ctx: CommandContext, p: PythonFile) -> None:
        p.filepath.parent.mkdir(parents=True, exist_ok=True)
        p.filepath.write_text(p.contents, encoding="utf-8")
        ctx.log(f"create_python_file: wrote {len(p.contents)} characters to '{p.filepath}'")
