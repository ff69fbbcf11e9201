"""A job's outputs: where they go on this computer, fetching them, the latest frame.

Upload mode: workers send what they render to the Server, which lists it per job
(GET /api/jobs/{id}/outputs); "Fetch outputs" downloads the files next to where
the artist's output path points. Shared-storage mode: the frames are already on
the shared disk, so the add-on opens that folder (through the two-way variables).
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import threading
import urllib.parse
from typing import Any

from .client import Client, ClientError
from .sharedcode import variables as variables_mod

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".bmp", ".webp", ".tga"})
_TIME_KEYS = ("updated", "updated_at", "created", "created_at", "uploaded_at", "mtime")


class OutputError(Exception):
    """The outputs cannot be fetched or shown; the message is for the artist."""


def output_relpath(output: dict) -> str:
    for key in ("relpath", "path", "name", "filename"):
        value = output.get(key)
        if isinstance(value, str) and value:
            return value.replace("\\", "/").lstrip("/")
    return ""


def output_url(job_id: str, output: dict) -> str:
    """Where to GET an output: its own URL, its content hash, or its path under the job."""
    for key in ("url", "download_url", "href"):
        if isinstance(output.get(key), str) and output[key]:
            return output[key]
    if isinstance(output.get("sha256"), str) and output["sha256"]:
        return f"/api/files/{output['sha256']}"
    rel = urllib.parse.quote(output_relpath(output))
    return f"/api/jobs/{urllib.parse.quote(str(job_id))}/outputs/{rel}"


def is_image(relpath: str) -> bool:
    return os.path.splitext(relpath)[1].lower() in IMAGE_EXTS


def _sort_key(output: dict) -> tuple:
    stamp = next((str(output[k]) for k in _TIME_KEYS if output.get(k) not in (None, "")), "")
    return stamp, output_relpath(output)


def latest_image(outputs: list[dict]) -> dict | None:
    """The newest image output (frame numbers in the names break ties)."""
    images = [o for o in outputs if isinstance(o, dict) and is_image(output_relpath(o))]
    return max(images, key=_sort_key) if images else None


def destination(relpath: str, local_output: str) -> str:
    """Where an output lands locally: in the folder of the artist's output path.

    The job renders into '{job_output}/<that folder's name>/...', so an output
    'shot/000001.png' of the output path '/renders/shot/######' lands at
    '/renders/shot/000001.png'. Paths never escape that folder.
    """
    folder = os.path.dirname(local_output)
    parts = [p for p in posixpath.normpath(relpath.replace("\\", "/")).split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise OutputError(f"The Server listed an output with an unsafe path: '{relpath}'.")
    if len(parts) > 1 and parts[0] == os.path.basename(folder):
        parts = parts[1:]
    return os.path.join(folder, *parts)


def fetch_outputs(client: Client, job_id: str, outputs: list[dict], local_output: str, *,
                  cancel: threading.Event | None = None, progress=None) -> list[str]:
    """Download every output not already present (same size) to its destination."""
    written = []
    total = len(outputs)
    for i, output in enumerate(outputs, 1):
        rel = output_relpath(output)
        if not rel:
            continue
        dest = destination(rel, local_output)
        size = output.get("size")
        if isinstance(size, int) and os.path.isfile(dest) and os.path.getsize(dest) == size:
            continue
        if progress:
            progress("Fetching outputs", i / total, rel)
        client.download(output_url(job_id, output), dest, cancel=cancel)
        written.append(dest)
    return written


def thumbnail(client: Client, job_id: str, outputs: list[dict], cache_dir: str) -> str | None:
    """The latest rendered frame, downloaded once into `cache_dir`; None when there is none."""
    latest = latest_image(outputs)
    if latest is None:
        return None
    rel = output_relpath(latest)
    key = latest.get("sha256") or hashlib.sha256(f"{job_id}/{rel}/{latest.get('size')}".encode()).hexdigest()
    dest = os.path.join(cache_dir, f"{job_id}-{str(key)[:16]}{os.path.splitext(rel)[1].lower()}")
    if not os.path.exists(dest):
        try:
            client.download(output_url(job_id, latest), dest)
        except ClientError as ex:
            log.info("no thumbnail for job %s: %s", job_id, ex)
            return None
    return dest


def shared_output_folder(job_doc: dict[str, Any], variables: variables_mod.Variables | None,
                         platform: str) -> str:
    """The local folder of a shared-storage job's output ('{render}/shot/######' -> '/mnt/render/shot')."""
    settings = job_doc.get("settings") or {}
    render_output = settings.get("render_output") or ""
    if not render_output:
        raise OutputError("This job has no output path.")
    local = variables.expand(render_output, platform, "users") if variables is not None else render_output
    if "{" in local:
        raise OutputError(f"The output path '{render_output}' uses a variable this computer has no "
                          "value for; ask an admin to add one for your platform.")
    return os.path.dirname(local)
