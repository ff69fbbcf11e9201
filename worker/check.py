"""`flamenco-worker --check`: can this machine join the farm? Each check says what to fix.

Blender and FFmpeg (found, and their versions), the GPU devices Blender can
render on, free disk where the worker writes, the pre-task check paths, the
Manager (reachable, and a Flamenco Manager rather than the Server or some
other web page) and the clock against the Manager's (from its HTTP `Date`
header). Nothing is registered or changed anywhere.
"""

from __future__ import annotations

import email.utils
import json
import logging
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

from shared.version import USER_AGENT

from . import resources
from .config import WorkerConfig

log = logging.getLogger(__name__)

OK, WARN, FAIL = "ok", "warn", "FAIL"
MIN_FREE_GB = 5.0
MAX_CLOCK_SKEW = 5.0
GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")
DEVICES_SCRIPT = """
import bpy
prefs = bpy.context.preferences.addons["cycles"].preferences
for backend in %r:
    try:
        prefs.compute_device_type = backend
    except TypeError:
        continue  # this Blender was built without it
    for device in prefs.get_devices_for_type(backend):
        if device.type == backend:
            print("FLAMENCO-DEVICE", backend, device.name, flush=True)
print("FLAMENCO-DEVICES-DONE", flush=True)
""" % (GPU_BACKENDS,)


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _version(argv: list[str], timeout: float = 60) -> str:
    """The first line a program prints about its version, without FFmpeg's copyright."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = [line.strip() for line in (out.stdout or out.stderr).splitlines() if line.strip()]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"exit code {out.returncode}: {(out.stderr or out.stdout).strip()[-300:]}")
    return lines[0].split(" Copyright")[0]


def _unreachable(ex: requests.RequestException) -> str:
    text = str(ex)
    for needle, short in (("Connection refused", "connection refused"), ("Name or service not known", "unknown "
                          "host name"), ("Temporary failure in name resolution", "unknown host name"),
                          ("timed out", "no answer in time"), ("No route to host", "no route to host")):
        if needle in text:
            return short
    return text[:300]


def check_program(name: str, exe: str | None, version_flag: str, package: str) -> tuple[Check, str | None]:
    """(the check, the executable's full path when it works)."""
    path = shutil.which(exe) if exe else None
    label = exe or name.lower()
    if not path:
        return Check(name, FAIL, f"'{label}' not found" + ("" if exe and "/" in exe else " on PATH"),
                     f"install {name} (e.g. apt install {package}) or give --{name.lower()} /path/to/{package}"), None
    try:
        version = _version([path, version_flag])
    except (OSError, subprocess.SubprocessError, RuntimeError) as ex:
        return Check(name, FAIL, f"{path} does not run: {ex}", f"reinstall {name}"), None
    return Check(name, OK, f"{version} ({path})"), path


def check_gpus(blender: str | None) -> Check:
    if not blender:
        return Check("GPU", WARN, "not checked: no Blender")
    try:
        out = subprocess.run([blender, "--background", "--factory-startup", "-noaudio", "--python-expr",
                              DEVICES_SCRIPT], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as ex:
        return Check("GPU", WARN, f"Blender could not list its devices: {ex}")
    if "FLAMENCO-DEVICES-DONE" not in out.stdout:
        return Check("GPU", WARN, f"Blender could not list its devices: {out.stdout[-300:]}{out.stderr[-300:]}")
    devices = [line.split(" ", 2)[1:] for line in out.stdout.splitlines() if line.startswith("FLAMENCO-DEVICE ")]
    if not devices:
        return Check("GPU", OK, "CPU only: Blender sees no GPU it can render on",
                     "nothing, unless this machine has a GPU: then install its driver (NVIDIA: CUDA/OptiX, "
                     "AMD: HIP, Intel: oneAPI)")
    return Check("GPU", OK, ", ".join(f"{name} ({backend})" for backend, name in devices))


def check_disk(config: WorkerConfig, min_free_gb: float = MIN_FREE_GB) -> list[Check]:
    checks = []
    seen = set()
    for label, path in (("disk", config.data_path()), ("disk (jobs)", config.jobs_path),
                        ("disk (file cache)", config.cache_path)):
        where = resources.existing_parent(Path(path))
        try:
            device = where.stat().st_dev
        except OSError as ex:
            checks.append(Check(label, FAIL, f"{path}: {ex}", "create the directory or fix its permissions"))
            continue
        if device in seen:
            continue
        seen.add(device)
        free_gb = shutil.disk_usage(where).free / 1e9
        detail = f"{free_gb:.1f} GB free for {path}"
        if free_gb < min_free_gb:
            checks.append(Check(label, FAIL, detail, f"free disk space (at least {min_free_gb:g} GB) or move "
                                                     "data_dir / jobs_dir / cache_dir to a larger disk"))
        else:
            checks.append(Check(label, OK, detail))
    problems = resources.pre_task_problems(config.pre_task_check_read, config.pre_task_check_write)
    if config.pre_task_check_read or config.pre_task_check_write:
        checks.append(Check("pre-task paths", FAIL if problems else OK, "; ".join(problems) or "readable/writable",
                            "mount the shared storage, or fix pre_task_check in the config" if problems else ""))
    return checks


def clock_skew(date_header: str, sent: float, received: float) -> tuple[float, float]:
    """(the Manager's clock minus ours, its uncertainty) in seconds, from an HTTP Date header.

    The Date has whole seconds and was written somewhere between `sent` and
    `received` (our wall clock), so the answer is good to half a second plus
    half the round trip.
    """
    theirs = email.utils.parsedate_to_datetime(date_header).timestamp() + 0.5
    ours = (sent + received) / 2
    return theirs - ours, 0.5 + (received - sent) / 2


def check_manager(url: str, timeout: float = 10) -> list[Check]:
    if not url:
        return [Check("Manager", FAIL, "no Manager URL", "give --manager URL, FLAMENCO_MANAGER_URL or "
                                                          "manager_url in the config")]
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    sent = time.time()
    try:
        resp = requests.get(url.rstrip("/") + "/", headers=headers, timeout=timeout, allow_redirects=False)
    except requests.exceptions.SSLError as ex:
        return [Check("Manager", FAIL, f"{url}: the HTTPS connection failed: {ex}",
                      "if the Manager's certificate comes from your own CA, give it with "
                      "REQUESTS_CA_BUNDLE=/path/to/ca.pem")]
    except requests.RequestException as ex:
        return [Check("Manager", FAIL, f"{url}: cannot connect: {_unreachable(ex)}",
                      "check the URL, that the Manager runs and that no firewall blocks the port")]
    received = time.time()
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if not (resp.status_code == 200 and isinstance(doc, dict) and doc.get("service") == "flamenco-manager"):
        try:
            server = requests.get(url.rstrip("/") + "/api/version", headers=headers, timeout=timeout).json()
        except (requests.RequestException, ValueError):
            server = None
        if isinstance(server, dict) and "api_version" in server:
            return [Check("Manager", FAIL, f"{url} is the Flamenco Server, not a Manager",
                          "give the Manager's URL (port 8083 by default); the Server is for artists and Managers")]
        return [Check("Manager", FAIL, f"{url} answered HTTP {resp.status_code}, but not as a Flamenco Manager",
                      "check the URL (host and port of the Manager)")]
    checks = [Check("Manager", OK, f"{url}: Flamenco Manager {doc.get('version', '?')}"
                    + ("" if doc.get("linked", True) else " (not linked to a Server)"))]
    date = resp.headers.get("Date")
    if not date:
        checks.append(Check("clock", WARN, "the Manager's answer has no Date header to compare clocks with"))
        return checks
    skew, error = clock_skew(date, sent, received)
    detail = f"{skew:+.1f} s from the Manager's clock (±{error:.1f} s)"
    if abs(skew) - error > MAX_CLOCK_SKEW:
        checks.append(Check("clock", FAIL, detail, "synchronise the clocks of this machine and the Manager "
                                                   "(NTP: timedatectl set-ntp true, or chrony)"))
    else:
        checks.append(Check("clock", OK, detail))
    return checks


def run_checks(config: WorkerConfig, blender: str | None = "blender", ffmpeg: str | None = "ffmpeg",
               min_free_gb: float = MIN_FREE_GB) -> list[Check]:
    blender_check, blender_path = check_program("Blender", blender, "--version", "blender")
    ffmpeg_check, _ = check_program("FFmpeg", ffmpeg, "-version", "ffmpeg")
    return [blender_check, ffmpeg_check, check_gpus(blender_path), *check_disk(config, min_free_gb),
            *check_manager(config.manager_url, config.http_timeout_seconds)]


def report(checks: list[Check], as_json: bool = False) -> tuple[str, int]:
    """The text (or JSON) to print, and the exit code: 1 when a check failed."""
    failed = [c for c in checks if c.status == FAIL]
    if as_json:
        return json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2), 1 if failed else 0
    width = max(len(c.name) for c in checks)
    lines = [f"{c.status:<5} {c.name:<{width}}  {c.detail}" + (f"\n{'':<{width + 8}}fix: {c.fix}"
                                                                if c.fix and c.status != OK else "")
             for c in checks]
    lines.append(f"{len(failed)} check(s) failed: fix them before this worker joins the farm" if failed
                 else "all checks passed")
    return "\n".join(lines), 1 if failed else 0
