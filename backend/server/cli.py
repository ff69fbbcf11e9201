"""flamenco-server: serve the Server, and set up users, projects and managers.

Every subcommand finds the database the way `serve` does: `--data-dir D`
(SQLite in D/server.sqlite) or `--database URL`, optionally from `--config
server.toml`. The create-* commands take `--json` for scripts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from typing import Any

from backend.backup import backup_sqlite, restore_sqlite
from backend.db import WalCheckpointer, database_url
from backend.migrations import MigrationError
from backend.web import ApiError
from shared import logsetup
from shared.serving import parse_listen, serve_forever
from shared.version import __version__

from . import admin
from . import migrations as schema_migrations
from .compilers import RegistryError
from .config import DEFAULT_PORT, ConfigError, ServerConfig
from .database import connect
from .models import Manager

log = logging.getLogger("flamenco.server")


def _config(args) -> ServerConfig:
    database = args.database or os.environ.get("FLAMENCO_DATABASE") or None
    overrides: dict[str, Any] = {"data_dir": args.data_dir, "database": database,
                                 "metrics_token": os.environ.get("FLAMENCO_METRICS_TOKEN") or None}
    for key in ("listen", "threads"):
        if getattr(args, key, None) is not None:
            overrides[key] = getattr(args, key)
    if getattr(args, "job_types_dir", None):
        overrides["job_types_dirs"] = args.job_types_dir
    if getattr(args, "trusted_proxy", None):
        overrides["trusted_proxies"] = args.trusted_proxy
    if args.config:
        return ServerConfig.from_toml(args.config, **overrides)
    return ServerConfig.from_dict({}, **overrides)


def _db(cfg: ServerConfig, migrate: bool = True):
    if cfg.data_dir is None and not cfg.database:
        raise ConfigError("give --data-dir DIR or --database URL (or set them in --config)")
    return connect(cfg.data_dir, cfg.database, migrate=migrate)


def _emit(args, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data) if args.json else text)


def cmd_serve(args) -> int:
    from .app import context_of, make_app
    from .housekeeping import Housekeeping
    cfg = _config(args)
    if cfg.data_dir is None:
        raise ConfigError("serve needs --data-dir (job files and task logs are kept there)")
    host, port = parse_listen(cfg.listen, DEFAULT_PORT)
    db = _db(cfg)
    if not cfg.manager_threads:
        with db.connection_context():
            cfg.manager_threads = Manager.select().count() + 8
    app = make_app(cfg, db)
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    keeper = threading.Thread(target=Housekeeping(context_of(app)).run, args=(stop,), name="housekeeping",
                              daemon=True)
    keeper.start()
    threading.Thread(target=WalCheckpointer(db).run, args=(stop,), name="wal-checkpoint", daemon=True).start()
    ctx = context_of(app)
    with db.connection_context():
        if resumed := ctx.storer.resume():
            log.info("storing the rest of the tasks of %d job(s) a stopped Server left halfway", resumed)
    log.info("Flamenco Server %s, database %s, data in %s", __version__,
             cfg.database or f"{cfg.data_dir}/server.sqlite", cfg.data_dir)
    serve_forever(app, host, port, cfg.threads + cfg.manager_threads, "flamenco-server", stop)
    if not ctx.storer.drain(timeout=30):
        log.warning("stopping with tasks of a job not stored yet: the next start stores them")
    return 0


def cmd_create_user(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        user, token = admin.create_user(db, args.name, "admin" if args.admin else "artist", args.password,
                                        args.project or [], token_label="flamenco-server create-user")
        projects = [p.name for p in admin.user_projects(user)] if not user.is_admin else []
    _emit(args, {"id": user.id, "name": user.name, "role": user.role, "projects": projects, "token": token}, token)
    return 0


def cmd_create_manager(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        manager, token = admin.create_manager(db, args.name)
        for project in args.project or []:
            admin.link_manager(db, manager.id, project)
    _emit(args, {"id": manager.id, "name": manager.name, "token": token, "projects": args.project or []},
          f"manager id:    {manager.id}\nmanager token: {token}")
    return 0


def cmd_create_project(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        project = admin.create_project(db, args.name, args.description or "")
    _emit(args, {"id": project.id, "name": project.name}, project.id)
    return 0


def cmd_link_manager(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        manager, project = admin.link_manager(db, args.manager, args.project)
    _emit(args, {"manager": manager.id, "manager_name": manager.name, "project": project.id,
                 "project_name": project.name}, f"linked manager {manager.name} to project {project.name}")
    return 0


def cmd_add_member(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        project, user = admin.add_member(db, args.project, args.user, args.role)
    _emit(args, {"user": user.id, "project": project.id, "role": args.role},
          f"added {user.name} to project {project.name} as {args.role}")
    return 0


def cmd_set_password(args) -> int:
    password = args.password if args.password is not None else sys.stdin.readline().rstrip("\n")
    db = _db(_config(args))
    with db.connection_context():
        user = admin.set_password(db, args.name, password)
    _emit(args, {"id": user.id, "name": user.name}, f"password of {user.name} set")
    return 0


def cmd_new_token(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        user, token = admin.new_token(db, args.name, "flamenco-server new-token", args.days)
    _emit(args, {"id": user.id, "name": user.name, "token": token}, token)
    return 0


def cmd_sign_out_everywhere(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        user, n = admin.sign_out_everywhere(db, args.name)
    _emit(args, {"id": user.id, "name": user.name, "ended": n}, f"ended {n} tokens and sessions of {user.name}")
    return 0


def cmd_reset_manager_token(args) -> int:
    db = _db(_config(args))
    with db.connection_context():
        manager, token = admin.reset_manager_token(db, args.manager)
    _emit(args, {"id": manager.id, "name": manager.name, "token": token},
          f"manager id:    {manager.id}\nmanager token: {token}")
    return 0


def cmd_migrate(args) -> int:
    db = _db(_config(args), migrate=False)
    if args.status:
        st = schema_migrations.status(db)
        _emit(args, {"current": st.current, "latest": st.latest, "unknown": st.unknown,
                     "pending": [{"version": s.version, "name": s.name} for s in st.pending]},
              f"database at schema version {st.current}; this flamenco-server knows {st.latest}"
              + "".join(f"\n  pending: {s.version} {s.name}" for s in st.pending)
              + (f"\n  newer than this code: {st.unknown}" if st.unknown else ""))
        return 1 if st.unknown else 0
    applied = schema_migrations.migrate(db)
    current = schema_migrations.status(db).current
    _emit(args, {"applied": [{"version": s.version, "name": s.name} for s in applied], "current": current},
          f"database at schema version {current}"
          + (f"; applied {', '.join(f'{s.version} ({s.name})' for s in applied)}" if applied else
             "; nothing to do"))
    return 0


def _sqlite_path(cfg: ServerConfig, what: str) -> str:
    url = database_url(cfg.data_dir, cfg.database, "server.sqlite")
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"{what} handles the SQLite database; for PostgreSQL use pg_dump / pg_restore "
                          "(docs/operations-server.md, 'Backups')")
    return url[len("sqlite:///"):]


def cmd_backup(args) -> int:
    cfg = _config(args)
    if cfg.data_dir is None and not cfg.database:
        raise ConfigError("give --data-dir DIR (or --config) to say which database to back up")
    size = backup_sqlite(_sqlite_path(cfg, "backup"), args.to, "job")
    _emit(args, {"backup": args.to, "bytes": size}, f"backed up the database to {args.to} ({size} bytes); "
          f"back up {cfg.data_dir}/files/ next")
    return 0


def cmd_restore(args) -> int:
    cfg = _config(args)
    if cfg.data_dir is None:
        raise ConfigError("give --data-dir DIR: the restored database goes to DIR/server.sqlite")
    target = _sqlite_path(cfg, "restore")
    restore_sqlite(args.from_file, target, "job", force=args.force)
    _emit(args, {"restored": target, "from": args.from_file}, f"restored {target} from {args.from_file}")
    return 0


def cmd_report_render_time(args) -> int:
    from . import reports
    from .models import utcnow
    start = reports.parse_time(args.from_time)
    end = reports.parse_time(args.to_time) if args.to_time else utcnow()
    by = [g.strip() for g in args.by.split(",") if g.strip()]
    reports.check_groups(by)
    db = _db(_config(args))
    out = open(args.csv, "w", newline="", encoding="utf-8") if args.csv else sys.stdout
    try:
        with db.connection_context():
            items = reports.runs(start, end, args.project, args.user)
            if args.runs:
                n = reports.write_csv(out, list(reports.RUN_COLUMNS), reports.run_rows(items))
            else:
                n = reports.write_csv(out, reports.summary_columns(by), reports.summarise(items, by))
    finally:
        if args.csv:
            out.close()
    if args.csv:
        print(f"wrote {n} rows to {args.csv} (render time from {start.isoformat()}Z to {end.isoformat()}Z)",
              file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="directory of the SQLite database, job files and task logs")
    common.add_argument("--database", help="database URL instead of SQLite in --data-dir, "
                                           "e.g. postgresql://user:pw@host/db (or FLAMENCO_DATABASE, "
                                           "which `ps` does not show)")
    common.add_argument("--config", help="a TOML config file (flags override it)")
    common.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (INFO)")
    js = argparse.ArgumentParser(add_help=False)
    js.add_argument("--json", action="store_true", help="print a JSON object instead of text")

    parser = argparse.ArgumentParser(prog="flamenco-server", description="The Flamenco Server.")
    parser.add_argument("--version", action="version", version=f"flamenco-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", parents=[common], help="run the Server")
    p.add_argument("--listen", help="HOST:PORT to listen on (127.0.0.1:8080)")
    p.add_argument("--threads", type=int, help="HTTP worker threads (32)")
    p.add_argument("--job-types-dir", action="append", help="load more job types from this directory "
                                                            "(repeatable)")
    p.add_argument("--trusted-proxy", action="append", metavar="ADDR",
                   help="a reverse proxy (address or network) whose X-Forwarded-* headers are believed "
                        "(repeatable)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("create-user", parents=[common, js], help="create a user and print an API token")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="an admin (sees and manages everything)")
    p.add_argument("--project", action="append", help="make them a member of this project (repeatable)")
    p.add_argument("--password", help="a password for signing in from the add-on or the web pages")
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser("create-manager", parents=[common, js], help="create a manager; print its id and token")
    p.add_argument("name")
    p.add_argument("--project", action="append", help="link it to this project (repeatable)")
    p.set_defaults(func=cmd_create_manager)

    p = sub.add_parser("create-project", parents=[common, js], help="create a project; print its id")
    p.add_argument("name")
    p.add_argument("--description")
    p.set_defaults(func=cmd_create_project)

    p = sub.add_parser("link-manager", parents=[common, js], help="let a project's jobs go to a manager")
    p.add_argument("manager", help="manager id or name")
    p.add_argument("project", help="project id or name")
    p.set_defaults(func=cmd_link_manager)

    p = sub.add_parser("add-member", parents=[common, js], help="add a user to a project")
    p.add_argument("user", help="user id or name")
    p.add_argument("project", help="project id or name")
    p.add_argument("--role", choices=admin.MEMBER_ROLES, default="member",
                   help="manager-admin: may also run the workers of the Managers linked to the project")
    p.set_defaults(func=cmd_add_member)

    p = sub.add_parser("set-password", parents=[common, js], help="set a user's password (read from stdin "
                                                                  "without --password); ends their sign-ins")
    p.add_argument("name")
    p.add_argument("--password")
    p.set_defaults(func=cmd_set_password)

    p = sub.add_parser("new-token", parents=[common, js], help="print another API token for a user")
    p.add_argument("name")
    p.add_argument("--days", type=float, help="the token expires after this many days (default: never)")
    p.set_defaults(func=cmd_new_token)

    p = sub.add_parser("sign-out-everywhere", parents=[common, js], help="end every API token and web session "
                                                                         "of a user")
    p.add_argument("name")
    p.set_defaults(func=cmd_sign_out_everywhere)

    p = sub.add_parser("reset-manager-token", parents=[common, js], help="give a manager a new token")
    p.add_argument("manager", help="manager id or name")
    p.set_defaults(func=cmd_reset_manager_token)

    p = sub.add_parser("migrate", parents=[common, js], help="bring the database to this version's schema "
                                                             "(serve does it too)")
    p.add_argument("--status", action="store_true", help="only show the schema version and pending steps")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("backup", parents=[common, js], help="copy the SQLite database while the Server runs")
    p.add_argument("--to", required=True, metavar="FILE", help="the backup file (replaced if it exists)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", parents=[common, js], help="put a backup in place (stop the Server first)")
    p.add_argument("--from", dest="from_file", required=True, metavar="FILE", help="a file made by backup")
    p.add_argument("--force", action="store_true", help="replace an existing database")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("report", help="reports from the database (render-time)")
    reports_sub = p.add_subparsers(dest="report", required=True)
    p = reports_sub.add_parser("render-time", parents=[common],
                               help="render time per project and user over a period, as CSV (live and archived "
                                    "jobs alike)")
    p.add_argument("--from", dest="from_time", required=True, metavar="DATE",
                   help="start of the period: 2026-01-01 (midnight UTC) or an ISO 8601 time")
    p.add_argument("--to", dest="to_time", metavar="DATE", help="end of the period, not included (default: now)")
    p.add_argument("--project", help="only this project (name or id)")
    p.add_argument("--user", help="only the jobs of this user (name)")
    p.add_argument("--by", default="project,user",
                   help="group by these, comma-separated: project, user, manager, worker, job, task_type "
                        "(project,user)")
    p.add_argument("--runs", action="store_true", help="one row per task run instead of totals")
    p.add_argument("--csv", metavar="FILE", help="write the CSV here (default: standard output)")
    p.set_defaults(func=cmd_report_render_time)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logsetup.configure(getattr(logging, str(args.log_level).upper(), logging.INFO),
                       "%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ApiError as ex:
        print(f"flamenco-server: {ex.message}", file=sys.stderr)
        return 1
    except (ConfigError, RegistryError, MigrationError, ValueError) as ex:
        print(f"flamenco-server: {ex}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
