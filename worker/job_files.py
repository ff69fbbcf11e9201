"""Upload mode: a job's files and the outputs of earlier tasks come from the Manager,
what a task makes goes back to it.

Files are cached by SHA-256 (`cache/ab/abcdef...`, read-only, verified on
download) so a worker downloads each file once however many tasks and jobs use
it. Each job has one tree, `jobs/<job>/files`: its files laid out at their
relpaths as hard links into the cache (copies where links are impossible), then
what the task reads of earlier tasks' outputs (`io.inputs`) and of the jobs it
depends on (`io.input_jobs`), fetched the same way. Commands name the tree
`{job_files}` (and `{job_output}`, the same directory). What a task added,
changed or removed under its declared outputs (`io.outputs`; everything it
added or changed when it declares none) is reported afterwards: each new file
is copied into the cache (so a later command that rewrites it in place cannot
change what is sent), and the upstream queue sends the Manager the blobs it
lacks, then the list.

The cache and the job trees are kept under `cache_max_bytes`: job trees of
other jobs first (least recently used), then cached files no tree uses and no
queued upload still needs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from shared.checksums import HashingFile, HashMismatch, is_sha256

from .manager_client import ManagerClient, ManagerError

log = logging.getLogger(__name__)

_BLEND_BACKUP = re.compile(r"\.blend\d+$")
"""Blender's backups of a saved .blend (scene.blend1, ...): never outputs."""


class JobFilesError(Exception):
    """The job's files could not be made available; the message says which and why."""


@dataclass
class JobDirs:
    files: Path
    output: Path


@dataclass
class TaskIO:
    """What travels for one task (the task document's 'io'); see the module docstring."""
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    input_jobs: list[str] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: Any) -> "TaskIO":
        if not isinstance(doc, dict):
            return cls()

        def strings(key: str) -> list[str]:
            value = doc.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise JobFilesError(f"the task's io.{key} is not a list of paths")
            return value
        ins, outs = strings("inputs"), strings("outputs")
        for p in ins + outs:
            if p:
                safe_relpath(p)
        return cls(ins, outs, strings("input_jobs"))


def under(relpath: str, prefixes: list[str]) -> bool:
    """Whether `relpath` is one of `prefixes` or lies below one ('' is everything)."""
    return any(p == "" or relpath == p or relpath.startswith(p + "/") for p in prefixes)


@dataclass
class Produced:
    """What a task changed in its job's tree: {relpath: (sha256, size)} and removed relpaths."""
    files: dict[str, tuple[str, int]]
    removed: list[str]

    def body(self, task_id: str) -> dict:
        return {"task": task_id, "removed": self.removed,
                "files": {rel: {"sha256": sha, "size": size} for rel, (sha, size) in sorted(self.files.items())}}


def safe_relpath(relpath: str) -> PurePosixPath:
    p = PurePosixPath(relpath)
    if (not relpath or p.is_absolute() or ".." in p.parts or "\\" in relpath
            or re.match(r"^[A-Za-z]:", relpath)):
        raise JobFilesError(f"the job's file list has an unsafe path '{relpath}'")
    return p


def substitute(obj: Any, values: dict[str, str]) -> Any:
    """Replace '{name}' for each of `values` in every string of a JSON-like structure."""
    if isinstance(obj, str):
        for name, value in values.items():
            obj = obj.replace("{" + name + "}", value)
        return obj
    if isinstance(obj, list):
        return [substitute(v, values) for v in obj]
    if isinstance(obj, dict):
        return {k: substitute(v, values) for k, v in obj.items()}
    return obj


class JobFiles:
    def __init__(self, client: ManagerClient, cache_dir: Path, jobs_dir: Path):
        self.client = client
        self.cache_dir = Path(cache_dir)
        self.jobs_dir = Path(jobs_dir)

    def dirs(self, job_id: str) -> JobDirs:
        """The job's tree: both the files it was given and what its tasks make."""
        if not re.match(r"^[A-Za-z0-9_.-]+$", job_id):
            raise JobFilesError(f"job id '{job_id}' cannot be used as a directory name")
        tree = self.jobs_dir / job_id / "files"
        return JobDirs(tree, tree)

    def prepare(self, job_id: str, log_line: Callable[[str], None]) -> JobDirs:
        dirs = self.dirs(job_id)
        try:
            manifest = self.client.job_files_manifest(job_id)
        except ManagerError as ex:
            raise JobFilesError(f"cannot get the file list of job {job_id}: {ex}") from None
        dirs.files.mkdir(parents=True, exist_ok=True)
        os.utime(dirs.files.parent)  # the least recently used job trees go first when space runs out
        count, downloaded = self._lay_out(manifest, dirs.files, "job's file")
        log_line(f"job files: {count} file(s) in {dirs.files}, {downloaded} downloaded, "
                 f"{count - downloaded} from the cache")
        return dirs

    def place_inputs(self, job_id: str, io: TaskIO, tree: Path, log_line: Callable[[str], None]) -> None:
        """Lay the outputs this task reads over its tree: all of the jobs it depends on, then
        the earlier outputs of its own job under `io.inputs`."""
        wanted = [(dep, None) for dep in io.input_jobs]
        if io.inputs:
            wanted.append((job_id, io.inputs))
        for source, prefixes in wanted:
            try:
                manifest = self.client.job_outputs(source, prefixes)
            except ManagerError as ex:
                raise JobFilesError(f"cannot get the outputs of job {source}: {ex}") from None
            count, downloaded = self._lay_out(manifest, tree, f"output of job {source}")
            what = f"job {source}" if prefixes is None else ", ".join(p or "(all)" for p in prefixes)
            log_line(f"inputs: {count} output(s) of {what}, {downloaded} downloaded, "
                     f"{count - downloaded} from the cache")

    def _lay_out(self, manifest: dict, tree: Path, what: str) -> tuple[int, int]:
        downloaded = 0
        for relpath, info in sorted(manifest.items()):
            rel = safe_relpath(relpath)
            sha, size = str(info.get("sha256", "")).lower(), info.get("size")
            if not is_sha256(sha):
                raise JobFilesError(f"the {what} '{relpath}' has no valid sha256")
            cached, fresh = self.fetch(sha, size)
            downloaded += fresh
            self._place(cached, tree.joinpath(*rel.parts))
        return len(manifest), downloaded

    def cache_path(self, sha: str) -> Path:
        return self.cache_dir / sha[:2] / sha

    def fetch(self, sha: str, size: int | None) -> tuple[Path, bool]:
        """The cached file with this hash, downloading it first if needed (-> path, downloaded)."""
        path = self.cache_path(sha)
        if path.is_file() and (size is None or path.stat().st_size == size):
            _touch(path)
            return path, False
        path.parent.mkdir(parents=True, exist_ok=True)
        with HashingFile(path.parent, f"{sha}.part-") as download:
            try:
                self.client.download_file(sha, download)
                download.check(sha, size)
            except ManagerError as ex:
                raise JobFilesError(f"cannot download file {sha}: {ex}") from None
            except HashMismatch as ex:
                raise JobFilesError(f"file {sha}: {ex}; not using it") from None
            download.move_to(path, mode=0o444)
        return path, True

    @staticmethod
    def _place(cached: Path, target: Path) -> None:
        if target.exists():
            try:
                if os.path.samefile(cached, target):
                    return
            except OSError:
                pass
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(cached, target)
        except OSError:
            shutil.copyfile(cached, target)

    # --- outputs -------------------------------------------------------------------

    @staticmethod
    def snapshot(output_dir: Path) -> dict[str, tuple[int, int]]:
        state = {}
        if output_dir.is_dir():
            for root, _, files in os.walk(output_dir):
                for name in files:
                    p = Path(root, name)
                    try:
                        st = p.stat()
                    except OSError:
                        continue
                    state[p.relative_to(output_dir).as_posix()] = (st.st_size, st.st_mtime_ns)
        return state

    def produced(self, tree: Path, before: dict[str, tuple[int, int]], io: TaskIO) -> Produced:
        """What the task made and removed under its declared outputs, the new files copied into the cache.

        A declared folder that was there before and is gone now is reported itself, so the
        Manager forgets what is under it even where this worker never had it."""
        after = self.snapshot(tree)
        declared = io.outputs
        files = {}
        for rel, sig in sorted(after.items()):
            if before.get(rel) == sig or _BLEND_BACKUP.search(rel) or (declared and not under(rel, declared)):
                continue
            files[rel] = self.cache_add(tree / rel)
        removed: list[str] = []
        if declared:
            gone = [rel for rel in before if rel not in after and under(rel, declared)]
            for prefix in declared:
                if prefix and any(under(r, [prefix]) for r in gone) and not (tree / prefix).exists():
                    removed.append(prefix)
            removed += [rel for rel in sorted(gone) if not under(rel, removed)]
        return Produced(files, removed)

    def cache_add(self, path: Path) -> tuple[str, int]:
        """Put a file the task made into the cache (a copy, hashed as it is made): (sha256, size)."""
        st = path.stat()
        if st.st_nlink > 1:  # most likely a link into the cache already (moved, not rewritten)
            with open(path, "rb") as fh:
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
            cached = self.cache_path(sha)
            if cached.is_file() and cached.stat().st_size == st.st_size:
                return sha, st.st_size
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with HashingFile(self.cache_dir, ".add-") as copy, open(path, "rb") as src:
            copy.copy(src)
            cached = self.cache_path(copy.sha256)
            if not cached.is_file():
                cached.parent.mkdir(parents=True, exist_ok=True)
                copy.move_to(cached, mode=0o444)
            return copy.sha256, copy.size

    # --- keeping the disk in bounds -----------------------------------------------------

    def usage(self) -> int:
        """Bytes of the cache and the job trees (a file linked from both counted once)."""
        seen, total = set(), 0
        for top in (self.cache_dir, self.jobs_dir):
            for root, _, names in os.walk(top):
                for name in names:
                    try:
                        st = os.lstat(os.path.join(root, name))
                    except OSError:
                        continue
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
        return total

    def evict(self, max_bytes: int, keep_jobs: set[str], pinned: set[str]) -> tuple[int, int]:
        """Bring cache + job trees to 90 % of `max_bytes`: other jobs' trees (least recently
        used first), then cached files no tree links to and no queued upload needs.
        -> (items removed, bytes before minus bytes after)."""
        if not max_bytes:
            return 0, 0
        before = used = self.usage()
        if used <= max_bytes:
            return 0, 0
        target = int(max_bytes * 0.9)
        removed = 0
        trees = sorted((d for d in self.jobs_dir.iterdir() if d.is_dir() and d.name not in keep_jobs),
                       key=lambda d: d.stat().st_mtime) if self.jobs_dir.is_dir() else []
        blobs = []
        for tree in trees:
            shutil.rmtree(tree, ignore_errors=True)
            removed += 1
            used = self.usage()
            if used <= target:
                break
        if used > target and self.cache_dir.is_dir():
            for sub in self.cache_dir.iterdir():
                if sub.is_dir() and len(sub.name) == 2:
                    for f in sub.iterdir():
                        try:
                            st = f.stat()
                        except OSError:
                            continue
                        if st.st_nlink == 1 and f.name not in pinned:
                            blobs.append((st.st_mtime, st.st_size, f))
            for _, size, f in sorted(blobs):
                f.unlink(missing_ok=True)
                removed += 1
                used -= size
                if used <= target:
                    break
        log.info("cache: removed %d job tree(s) or file(s), %d -> %d bytes (limit %d)", removed, before, used,
                 max_bytes)
        return removed, before - used


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass

