"""Packing a .blend with its dependencies (Blender Asset Tracer), and hashing the pack.

Two ways, one per file mode:

* Upload: BAT decides where every file goes in the pack and rewrites the .blend
  files whose paths must change; the rewritten ones are kept in a staging folder,
  every other file is read in place. Nothing big is copied, so a scene with
  gigabytes of textures is hashed and (where the Server lacks them) uploaded
  straight from where it lies.
* Shared storage: BAT copies the pack to a folder on the shared storage.

The relative layout below the project folder is kept either way.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import threading
from dataclasses import dataclass, field
from typing import Callable

from . import batimport  # noqa: F401 - makes blender_asset_tracer importable in Blender

from blender_asset_tracer import blendfile  # noqa: E402
from blender_asset_tracer.pack import Aborted, Packer, progress as bat_progress, transfer  # noqa: E402

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, "float | None", str], None]
"""(stage, fraction 0..1 or None when unknown, text)."""

HASH_BLOCK = 1 << 20
PACK_INFO = "pack-info.txt"


class PackError(Exception):
    """Packing failed; the message is for the artist."""


class PackCanceled(PackError):
    """The artist pressed Cancel."""


@dataclass
class PackedFile:
    relpath: str
    """Where the file is in the pack, '/'-separated."""
    path: str
    """Where to read it on this computer."""
    size: int
    sha256: str = ""


@dataclass
class PackResult:
    blend_relpath: str
    files: list[PackedFile]
    missing: list[str] = field(default_factory=list)
    root: str = ""
    """The pack folder (shared storage), or '' when the files are read in place."""

    def manifest(self) -> dict[str, dict]:
        """The `files` table of POST /api/jobs: {relpath: {sha256, size}}."""
        return {f.relpath: {"sha256": f.sha256, "size": f.size} for f in self.files}

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)


class _Progress(bat_progress.Callback):
    """BAT's callbacks -> our ProgressFn; also where a Cancel reaches the packer."""

    def __init__(self, report: ProgressFn | None, cancel: threading.Event | None):
        self.report = report or (lambda *a: None)
        self.cancel = cancel
        self.packer: Packer | None = None
        self.assets = 0
        self.missing: list[str] = []

    def _check(self) -> None:
        if self.cancel is not None and self.cancel.is_set() and self.packer is not None:
            self.packer.abort("Canceled.")

    def trace_blendfile(self, filename: pathlib.Path) -> None:
        self._check()
        self.report("Finding dependencies", None, f"Reading {filename.name}")

    def trace_asset(self, filename: pathlib.Path) -> None:
        self.assets += 1
        self._check()
        self.report("Finding dependencies", None, f"{self.assets} files found")

    def missing_file(self, filename: pathlib.Path) -> None:
        self.missing.append(str(filename))

    def transfer_progress(self, total_bytes: int, transferred_bytes: int) -> None:
        self._check()
        if total_bytes:
            self.report("Copying files", transferred_bytes / total_bytes,
                        f"{_mb(transferred_bytes)} of {_mb(total_bytes)}")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class _Recorder(transfer.FileTransferer):
    """A file 'transferer' that copies nothing: it notes where each file belongs.

    BAT hands it moves for the .blend files it rewrote (temporary files it deletes
    on close) and copies for everything else; the rewritten ones are linked into
    our staging folder, the rest are read in place later.
    """

    def __init__(self, staging: pathlib.Path):
        super().__init__()
        self.staging = staging
        self.placed: dict[pathlib.PurePath, pathlib.Path] = {}

    def run(self) -> None:
        for src, dst, act in self.iter_queue():
            try:
                if act == transfer.Action.MOVE:
                    # Linked (or copied), not moved: BAT stats the file right
                    # after queueing it, and deletes its temporary dir itself.
                    keep = self.staging / f"{len(self.placed):05d}-{src.name}"
                    try:
                        os.link(src, keep)
                    except OSError:
                        shutil.copy2(src, keep)
                    src = keep
                self.placed[dst] = src
                self.report_transferred(src.stat().st_size)
            except Exception as ex:  # noqa: BLE001 - a thread: report, never raise
                self.error_set(f"Cannot read {src}: {ex}")
                return


class _TrackingPacker(Packer):
    """Keeps a handle on BAT's file-transfer thread, so that a failure anywhere can stop it.

    BAT only stops that thread on success, abort or Ctrl+C; an error such as a file
    vanishing mid-pack would leave it waiting for work forever and keep Blender's
    Python from exiting. It is also made a daemon thread for the same reason.
    """

    transferer: transfer.FileTransferer | None = None

    def _create_file_transferer(self) -> transfer.FileTransferer:
        self.transferer = self._make_transferer()
        self.transferer.daemon = True
        return self.transferer

    def _make_transferer(self) -> transfer.FileTransferer:
        return super()._create_file_transferer()

    def stop_transferer(self) -> None:
        t = self.transferer
        if t is not None and t.is_alive():
            t.abort()
            t.join(timeout=10)


class _RecordingPacker(_TrackingPacker):
    def __init__(self, *args, staging: pathlib.Path, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorder = _Recorder(staging)

    def _make_transferer(self) -> transfer.FileTransferer:
        return self.recorder

    def _write_info_file(self) -> None:
        """BAT's pack-info.txt names the temporary copy; the job does not need it."""


def _relpath(path: pathlib.PurePath, root: pathlib.PurePath) -> str:
    return path.relative_to(root).as_posix()


def _run_packer(packer: _TrackingPacker, cb: _Progress) -> None:
    cb.packer = packer
    packer.progress_cb = cb
    try:
        packer.strategise()
        packer.execute()
    except Aborted as ex:
        if cb.cancel is not None and cb.cancel.is_set():
            raise PackCanceled("Canceled.") from None
        raise PackError(f"Packing stopped: {ex}") from None
    except transfer.FileTransferError as ex:
        first = f" (starting with {ex.files_remaining[0]})" if ex.files_remaining else ""
        raise PackError(f"Packing failed: {ex}{first}") from None
    except EnvironmentError as ex:
        if "ZStandard" in str(ex):
            raise PackError("A .blend file in this scene is compressed with Zstandard, which this "
                            "Blender's Python cannot read. Save it without compression "
                            "(File > Save As, untick Compress) and submit again.") from None
        raise PackError(f"Packing failed: {ex}") from None
    except blendfile.exceptions.BlendFileError as ex:
        raise PackError(f"Cannot read a .blend file while packing: {ex}") from None
    finally:
        packer.stop_transferer()


def pack_in_place(blend: str, project_root: str, staging: str, *, blend_name: str | None = None,
                  progress: ProgressFn | None = None,
                  cancel: threading.Event | None = None) -> PackResult:
    """Work out the pack of `blend` for upload mode (see the module docstring).

    `blend_name` renames the .blend itself in the pack (the temporary copy
    'shot.flamenco.blend' is sent as 'shot.blend').
    """
    staging_path = pathlib.Path(staging)
    staging_path.mkdir(parents=True, exist_ok=True)
    target = staging_path / "pack"
    cb = _Progress(progress, cancel)
    try:
        with _RecordingPacker(pathlib.Path(blend), pathlib.Path(project_root), str(target),
                              staging=staging_path) as packer:
            _run_packer(packer, cb)
            placed = dict(packer.recorder.placed)
            out_blend = packer.output_path
            missing = sorted({str(p) for p in packer.missing_files} | set(cb.missing))
    finally:
        blendfile.close_all_cached()
    files = []
    blend_rel = _relpath(out_blend, target)
    renamed = _renamed(blend_rel, blend_name, {_relpath(d, target) for d in placed})
    for dst, src in sorted(placed.items()):
        rel = _relpath(dst, target)
        files.append(PackedFile(renamed if rel == blend_rel else rel, str(src), src.stat().st_size))
    return PackResult(renamed, files, missing)


def pack_to_folder(blend: str, project_root: str, target: str, *, blend_name: str | None = None,
                   progress: ProgressFn | None = None,
                   cancel: threading.Event | None = None) -> PackResult:
    """BAT-pack `blend` into the folder `target` (shared-storage mode)."""
    cb = _Progress(progress, cancel)
    try:
        with _TrackingPacker(pathlib.Path(blend), pathlib.Path(project_root), target) as packer:
            _run_packer(packer, cb)
            out_blend = pathlib.Path(packer.output_path)
            missing = sorted({str(p) for p in packer.missing_files} | set(cb.missing))
    finally:
        blendfile.close_all_cached()
    root = pathlib.Path(target)
    blend_rel = _relpath(out_blend, root)
    existing = {_relpath(p, root) for p in root.rglob("*") if p.is_file()}
    renamed = _renamed(blend_rel, blend_name, existing)
    if renamed != blend_rel:
        os.replace(out_blend, root / renamed)
    files = [PackedFile(_relpath(p, root), str(p), p.stat().st_size)
             for p in sorted(root.rglob("*")) if p.is_file() and _relpath(p, root) != PACK_INFO]
    return PackResult(renamed, files, missing, root=str(root))


def _renamed(blend_rel: str, blend_name: str | None, taken: set[str]) -> str:
    if not blend_name:
        return blend_rel
    candidate = "/".join([*blend_rel.split("/")[:-1], blend_name])
    return blend_rel if candidate in taken and candidate != blend_rel else candidate


def sha256_file(path: str, cancel: threading.Event | None = None,
                progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            if cancel is not None and cancel.is_set():
                raise PackCanceled("Canceled.")
            block = f.read(HASH_BLOCK)
            if not block:
                break
            h.update(block)
            if progress:
                progress(len(block))
    return h.hexdigest()


def hash_files(files: list[PackedFile], progress: ProgressFn | None = None,
               cancel: threading.Event | None = None) -> None:
    """Fill in every file's sha256 (the Server stores files by content)."""
    total = sum(f.size for f in files) or 1
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress("Hashing files", min(done / total, 1.0), f"{_mb(done)} of {_mb(total)}")

    for f in files:
        try:
            f.sha256 = sha256_file(f.path, cancel, step)
        except OSError as ex:
            raise PackError(f"Cannot read {f.path}: {ex.strerror or ex}") from None
