"""Upload mode: a job's files come from the Manager, its outputs go back to it.

Files are cached by SHA-256 (`cache/ab/abcdef...`, read-only, verified on
download) so a worker downloads each file once however many tasks and jobs use
it; a job's files are then laid out under `jobs/<job>/files/<relpath>` as hard
links into the cache (copies where links are impossible). Commands name them
as `{job_files}/...` and write to `{job_output}/...` (`jobs/<job>/output`);
what a task added or changed there is uploaded when it completes.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable
from urllib.parse import quote

from shared.checksums import HashingFile, HashMismatch, is_sha256

from .manager_client import ManagerClient, ManagerError

log = logging.getLogger(__name__)


class JobFilesError(Exception):
    """The job's files could not be made available; the message says which and why."""


@dataclass
class JobDirs:
    files: Path
    output: Path


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
        if not re.match(r"^[A-Za-z0-9_.-]+$", job_id):
            raise JobFilesError(f"job id '{job_id}' cannot be used as a directory name")
        base = self.jobs_dir / job_id
        return JobDirs(base / "files", base / "output")

    def prepare(self, job_id: str, log_line: Callable[[str], None]) -> JobDirs:
        dirs = self.dirs(job_id)
        try:
            manifest = self.client.job_files_manifest(job_id)
        except ManagerError as ex:
            raise JobFilesError(f"cannot get the file list of job {job_id}: {ex}") from None
        dirs.files.mkdir(parents=True, exist_ok=True)
        dirs.output.mkdir(parents=True, exist_ok=True)
        downloaded = 0
        for relpath, info in sorted(manifest.items()):
            rel = safe_relpath(relpath)
            sha, size = str(info.get("sha256", "")).lower(), info.get("size")
            if not is_sha256(sha):
                raise JobFilesError(f"the job's file '{relpath}' has no valid sha256")
            cached, fresh = self.fetch(sha, size)
            downloaded += fresh
            self._place(cached, dirs.files.joinpath(*rel.parts))
        log_line(f"job files: {len(manifest)} file(s) in {dirs.files}, {downloaded} downloaded, "
                 f"{len(manifest) - downloaded} from the cache")
        return dirs

    def cache_path(self, sha: str) -> Path:
        return self.cache_dir / sha[:2] / sha

    def fetch(self, sha: str, size: int | None) -> tuple[Path, bool]:
        """The cached file with this hash, downloading it first if needed (-> path, downloaded)."""
        path = self.cache_path(sha)
        if path.is_file() and (size is None or path.stat().st_size == size):
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

    @classmethod
    def changed(cls, output_dir: Path, before: dict[str, tuple[int, int]]) -> list[str]:
        after = cls.snapshot(output_dir)
        return sorted(rel for rel, sig in after.items() if before.get(rel) != sig)

    @staticmethod
    def upload_path(job_id: str, task_id: str, relpath: str) -> str:
        return f"/jobs/{job_id}/outputs/{quote(relpath, safe='/')}?task={quote(task_id)}"
