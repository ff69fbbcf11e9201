"""`flamenco`: the artist's and admin's command line.

    flamenco submit TYPE --setting k=v ... [--name N] [--priority P] [--watch]
    flamenco jobs [--status S] [--project P] [--mine]
    flamenco job ID
    flamenco watch ID
    flamenco cancel ID
    flamenco farm --data-dir D [--port P] [--workers N]

The subcommands are thin: they call the Server's user API through the client the
Blender add-on uses too (shared/user_client.py); setting values are parsed with the
job types' shared vocabulary (shared/setting_types.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from shared import setting_types, user_client
from shared.statuses import JOB_FINAL, JobStatus
from shared.user_client import AuthError, ClientError
from shared.version import __version__

from .config import ConfigError, resolve


class UsageError(Exception):
    pass


class ServerClient(user_client.Client):
    USER_AGENT = "flamenco-cli"
    WHO = "this command line tool"

    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        super().__init__(url, token, timeout)


def _coerce(key: str, raw: str, schema: dict | None) -> Any:
    if schema is None:
        return raw
    try:
        return setting_types.parse(schema.get("type"), raw)
    except setting_types.UnknownSettingType as ex:
        raise UsageError(f"setting '{key}': {ex} (is this CLI older than the Server?)") from None
    except setting_types.SettingValueError as ex:
        raise UsageError(f"setting '{key}' {ex}") from None


def parse_settings(pairs: list[str], schema: list[dict] | None) -> dict[str, Any]:
    by_key = {s["key"]: s for s in (schema or []) if isinstance(s, dict) and "key" in s}
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--setting takes KEY=VALUE, not '{pair}'")
        if by_key and key not in by_key:
            raise UsageError(f"unknown setting '{key}'; this job type has: {', '.join(sorted(by_key))}")
        settings[key] = _coerce(key, raw, by_key.get(key))
    return settings


def _job_progress(job: dict) -> float:
    for key in ("progress", "progress_percent", "progress_percentage"):
        if isinstance(job.get(key), (int, float)):
            return float(job[key])
    return 0.0


def _job_line(job: dict) -> str:
    reason = f"  ({job['status_reason']})" if job.get("status_reason") else ""
    return (f"{job.get('id', '?'):<10} {job.get('status', '?'):<18} {_job_progress(job):5.1f}%  "
            f"{job.get('type', ''):<18} {job.get('name', '')}{reason}")


def cmd_submit(client: ServerClient, args) -> int:
    types = {t.get("name"): t for t in client.job_types()}
    if args.type not in types:
        raise UsageError(f"unknown job type '{args.type}'; the Server knows: {', '.join(sorted(types))}")
    schema = types[args.type].get("settings")
    doc: dict[str, Any] = {"name": args.name or f"{args.type} from the command line", "type": args.type,
                           "settings": parse_settings(args.setting, schema)}
    for field in ("priority", "project", "manager", "worker_tag", "memory_mb"):
        value = getattr(args, field)
        if value is not None:
            doc[field] = value
    if args.depends_on:
        doc["depends_on"] = args.depends_on
    if args.start_paused:
        doc["start_paused"] = True
    job = client.submit_job(doc)
    reason = f": {job['status_reason']}" if job.get("status_reason") else ""
    print(f"submitted job {job['id']} ({job.get('status', '?')}{reason})")
    if args.watch:
        return watch(client, job["id"])
    return 0


def cmd_jobs(client: ServerClient, args) -> int:
    jobs = client.jobs(status=args.status, project=args.project, mine=1 if args.mine else None)
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    if not jobs:
        print("no jobs")
    for job in jobs:
        print(_job_line(job))
    return 0


def cmd_job(client: ServerClient, args) -> int:
    job = client.job(args.id)
    tasks = client.tasks(args.id)
    if args.json:
        print(json.dumps({"job": job, "tasks": tasks}, indent=2))
        return 0
    print(_job_line(job))
    if job.get("status_reason"):
        print(f"  reason: {job['status_reason']}")
    for task in tasks:
        activity = task.get("activity") or ""
        print(f"  {task.get('name', '?'):<32} {task.get('status', '?'):<18} "
              f"{float(task.get('progress') or task.get('task_progress_percentage') or 0):5.1f}%  {activity}")
    return 0


def watch(client: ServerClient, job_id: str, interval: float = 1.0) -> int:
    """A progress bar until the job ends; exit code 0 only when it completed."""
    from tqdm import tqdm

    job = client.job(job_id)
    with tqdm(total=100, unit="%", desc=f"job {job_id}", bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
              file=sys.stderr) as bar:
        while True:
            pct = _job_progress(job)
            bar.n = round(pct, 1)
            reason = f" ({job['status_reason']})" if job.get("status_reason") else ""
            bar.set_postfix_str(job.get("status", "?") + reason)
            bar.refresh()
            if job.get("status") in JOB_FINAL:
                break
            time.sleep(interval)
            job = client.job(job_id)
    status = job.get("status")
    reason = f": {job['status_reason']}" if job.get("status_reason") else ""
    print(f"job {job_id} {status}{reason}")
    return 0 if status == JobStatus.COMPLETED else 1


def cmd_watch(client: ServerClient, args) -> int:
    return watch(client, args.id, args.interval)


def cmd_cancel(client: ServerClient, args) -> int:
    client.set_job_status(args.id, JobStatus.CANCEL_REQUESTED, args.reason or "canceled from the command line")
    job = client.job(args.id)
    print(f"job {args.id} is {job.get('status')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flamenco", description="Flamenco render farm command line.")
    parser.add_argument("--version", action="version", version=f"flamenco {__version__}")
    parser.add_argument("--server", help="Server URL (or FLAMENCO_SERVER)")
    parser.add_argument("--token", help="API token (or FLAMENCO_TOKEN)")
    parser.add_argument("--farm", help="a `flamenco farm` data dir to take the URL and token from")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("submit", help="submit a job")
    p.add_argument("type", help="job type, e.g. blender-render (see GET /api/job-types)")
    p.add_argument("--setting", "-s", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--name")
    p.add_argument("--priority", type=int)
    p.add_argument("--project")
    p.add_argument("--manager")
    p.add_argument("--worker-tag")
    p.add_argument("--memory-mb", type=int)
    p.add_argument("--depends-on", action="append", default=[], metavar="JOB_ID")
    p.add_argument("--start-paused", action="store_true")
    p.add_argument("--watch", action="store_true", help="show progress until the job ends")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("jobs", help="list jobs")
    p.add_argument("--status")
    p.add_argument("--project")
    p.add_argument("--mine", action="store_true", help="only the jobs you submitted")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("job", help="show a job and its tasks")
    p.add_argument("id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("watch", help="a live progress bar until the job ends")
    p.add_argument("id")
    p.add_argument("--interval", type=float, default=1.0)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("id")
    p.add_argument("--reason")
    p.set_defaults(func=cmd_cancel)

    from . import farm
    farm.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "local", False):
            return args.func(args)
        cfg = resolve(args.server, args.token, args.farm)
        return args.func(ServerClient(cfg.server_url, cfg.token), args)
    except AuthError as ex:
        print(f"flamenco: the Server refused the token ({ex})", file=sys.stderr)
        return 2
    except (ConfigError, UsageError, ClientError) as ex:
        print(f"flamenco: {ex}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
