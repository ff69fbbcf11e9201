"""Submitting a job: pack, hash, upload what the Server lacks, submit. Off the main thread.

The UI starts a Submission on a thread and reads the small messages it posts on
a queue (Progress, Submitted, Failed, Canceled) from a timer on Blender's main
thread. In background mode (`blender -b`) the same run() is simply called and
the messages are read afterwards. run() never raises: every failure becomes a
Failed message worded for the artist.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Callable

from . import client as client_mod, job_builder, packing
from .client import Client, ClientError
from .job_builder import SHARED, BuildError, FarmSettings, Plan

log = logging.getLogger(__name__)


@dataclass
class Progress:
    stage: str
    fraction: float | None
    text: str = ""


@dataclass
class Note:
    """Something the artist should know that does not stop the submission."""
    text: str


@dataclass
class Submitted:
    job_ids: list[str]
    jobs: list[dict]
    files: int = 0
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    missing: list[str] = field(default_factory=list)

    @property
    def job_id(self) -> str:
        return self.job_ids[-1]

    def summary(self) -> str:
        names = ", ".join(f"'{j.get('name', '?')}'" for j in self.jobs)
        what = "Jobs" if len(self.jobs) > 1 else "Job"
        files = f"{_count(self.files, 'file')}, {self.uploaded_files} uploaded ({self.uploaded_bytes / 1e6:.1f} MB)" \
            if self.files else "files on shared storage"
        return f"{what} {names} submitted: {files}."


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


@dataclass
class Failed:
    message: str


@dataclass
class Canceled:
    message: str = "Submission canceled; nothing was submitted."


Message = Progress | Note | Submitted | Failed | Canceled
FINAL = (Submitted, Failed, Canceled)


class Submission:
    """One press of Render on Flamenco, from the saved temporary .blend to job ids."""

    def __init__(self, client: Client, plan: Plan, farm: FarmSettings, blend_to_pack: str, *,
                 blend_name: str | None = None, cleanup: list[str] | None = None,
                 now: Callable[[], datetime.datetime] | None = None):
        self.client = client
        self.plan = plan
        self.farm = farm
        self.blend = blend_to_pack
        self.blend_name = blend_name
        self.cleanup = list(cleanup or [])
        self.now = now or (lambda: datetime.datetime.now().astimezone())
        self.messages: queue.Queue[Message] = queue.Queue()
        self.cancel_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.result: Message | None = None
        self._pack_root = ""
        self._submitted_any = False

    # --- control ----------------------------------------------------------

    def start(self) -> threading.Thread:
        self.thread = threading.Thread(target=self.run, name="flamenco-submit", daemon=True)
        self.thread.start()
        return self.thread

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def done(self) -> bool:
        return self.result is not None

    def drain(self) -> list[Message]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def _post(self, msg: Message) -> None:
        if isinstance(msg, FINAL):
            self.result = msg
        self.messages.put(msg)

    def _progress(self, stage: str, fraction: float | None, text: str = "") -> None:
        self._post(Progress(stage, fraction, text))

    def _check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise packing.PackCanceled("Canceled.")

    # --- the work ---------------------------------------------------------

    def run(self) -> None:
        try:
            self._post(self._run())
        except (packing.PackCanceled, client_mod.Canceled):
            self._post(Canceled())
        except (ClientError, packing.PackError, BuildError) as ex:
            self._post(Failed(str(ex)))
        except OSError as ex:
            where = f" ({ex.filename})" if getattr(ex, "filename", None) else ""
            self._post(Failed(f"A file could not be read or written{where}: {ex.strerror or ex}"))
        except Exception as ex:  # noqa: BLE001 - the artist gets a message, the log the trace
            log.exception("submission failed")
            self._post(Failed(f"Unexpected error while submitting: {ex!r}. See the system console."))
        finally:
            self._clean_up()

    def _run(self) -> Submitted:
        if self.farm.file_mode == SHARED:
            pack, filepath, files = self._pack_shared()
        else:
            pack, filepath, files = self._pack_upload()
        for path in pack.missing:
            self._post(Note(f"Missing file, not sent: {path}"))
        self._check_cancel()

        self._progress("Submitting", None, "Creating the job")
        jobs = job_builder.finalize(self.plan, filepath, files)
        created: list[dict] = []
        for job in jobs:
            doc = dict(job.doc)
            if job.depends_on_previous and created:
                doc["depends_on"] = [created[-1]["id"]]
            try:
                created.append(self.client.submit_job(doc))
            except ClientError as ex:
                if created:
                    self._abandon(created)
                    raise ClientError(f"The render job was refused after its bake job was created "
                                      f"(the bake job was canceled): {ex}") from None
                raise
            self._submitted_any = True
        stats = getattr(self, "_upload_stats", (0, 0, 0))
        return Submitted([str(j["id"]) for j in created], created, files=stats[0],
                         uploaded_files=stats[1], uploaded_bytes=stats[2], missing=pack.missing)

    def _abandon(self, created: list[dict]) -> None:
        for job in created:
            try:
                self.client.set_job_status(job["id"], "cancel-requested", "the job depending on it was refused")
            except ClientError:
                log.warning("could not cancel job %s", job.get("id"))

    def _pack_upload(self) -> tuple[packing.PackResult, str, dict]:
        staging = tempfile.mkdtemp(prefix="flamenco-pack-")
        self.cleanup.append(staging)
        self._progress("Finding dependencies", None, "Reading the .blend file")
        pack = packing.pack_in_place(self.blend, self.plan.project_root, staging,
                                     blend_name=self.blend_name, progress=self._progress,
                                     cancel=self.cancel_event)
        self._check_cancel()
        packing.hash_files(pack.files, self._progress, self.cancel_event)
        self._check_cancel()

        self._progress("Checking files", None, f"Asking the Server which of {len(pack.files)} files it has")
        by_sha: dict[str, packing.PackedFile] = {}
        for f in pack.files:
            by_sha.setdefault(f.sha256, f)
        missing = set(self.client.files_check((sha, f.size) for sha, f in by_sha.items()))
        to_send = [by_sha[sha] for sha in by_sha if sha in missing]
        total = sum(f.size for f in to_send) or 1
        sent = 0

        def step(n: int) -> None:
            nonlocal sent
            sent += n
            self._progress("Uploading", min(sent / total, 1.0),
                           f"{sent / 1e6:.1f} of {total / 1e6:.1f} MB")

        for i, f in enumerate(to_send, 1):
            self._check_cancel()
            log.info("uploading %s (%s, %d bytes)", f.relpath, f.sha256, f.size)
            self.client.upload_file(f.sha256, f.path, f.size, progress=step, cancel=self.cancel_event)
        self._upload_stats = (len(pack.files), len(to_send), sum(f.size for f in to_send))
        return pack, pack.blend_relpath, pack.manifest()

    def _pack_shared(self) -> tuple[packing.PackResult, str, None]:
        name = job_builder.pack_dir_name(os.path.splitext(self.blend_name or os.path.basename(self.blend))[0],
                                         self.farm.username, self.now().isoformat())
        target = os.path.join(self.farm.shared_storage, name)
        if os.path.exists(target):
            raise BuildError(f"The pack folder {target} already exists; submit again in a second.")
        self._pack_root = target
        self._progress("Finding dependencies", None, "Reading the .blend file")
        pack = packing.pack_to_folder(self.blend, self.plan.project_root, target,
                                      blend_name=self.blend_name, progress=self._progress,
                                      cancel=self.cancel_event)
        local = os.path.join(target, *pack.blend_relpath.split("/"))
        filepath, warning = job_builder.to_farm_path(local, self.farm, what="pack folder")
        if warning:
            self._post(Note(warning))
        return pack, filepath, None

    def _clean_up(self) -> None:
        for path in self.cleanup:
            try:
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.exists(path):
                    os.unlink(path)
            except OSError as ex:
                log.warning("could not remove %s: %s", path, ex)
        if self._pack_root and not self._submitted_any and os.path.isdir(self._pack_root):
            shutil.rmtree(self._pack_root, ignore_errors=True)
