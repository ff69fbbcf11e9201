"""`flamenco-manager`: the composition root, and the admin's credentials.

    flamenco-manager serve --data-dir D --listen HOST:PORT
        [--server URL --manager-id ID] [--config manager.toml]
        [--manager-url URL] [--threads N] [--allow-open-registration]
    flamenco-manager check-config --config manager.toml
    flamenco-manager set-admin-password --data-dir D [--password-file F | --password-stdin]
    flamenco-manager create-admin-token --data-dir D [--label L] [--json]
    flamenco-manager list-admin-tokens --data-dir D [--json]
    flamenco-manager revoke-admin-token ID --data-dir D

Command-line options win over the environment, which wins over the config
file, which wins over the defaults. Secrets never come from the command line
(anyone on the machine reads it with `ps`): the manager token, the admin token
and the registration secret come from the environment (SECRET_ENV) or the
config file, and the admin password from a prompt, stdin or a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from shared import logsetup
from shared.serving import ServiceThread, parse_listen
from shared.timefmt import iso_utc

from . import config as config_mod
from .admin_auth import AdminAuth
from .app import ManagerCore, make_app
from .persistence import Persistence, open_sqlite

log = logging.getLogger("flamenco.manager")

DEFAULT_PORT = 8083

SECRET_ENV = {"token": "FLAMENCO_MANAGER_TOKEN", "admin_token": "FLAMENCO_MANAGER_ADMIN_TOKEN",
              "registration_secret": "FLAMENCO_REGISTRATION_SECRET",
              "metrics_token": "FLAMENCO_MANAGER_METRICS_TOKEN"}
"""Where each secret comes from besides the config file ([upstream] token, [manager] admin_token,
registration_secret and metrics_token)."""
SECRET_FLAGS = {"--token": "token", "--admin-token": "admin_token", "--registration-secret": "registration_secret",
                "--metrics-token": "metrics_token"}


class SecretOnCommandLine(config_mod.ConfigError):
    pass


def refuse_secret_flags(argv: list[str]) -> None:
    """A secret given as a flag is refused, saying where it goes instead."""
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag in SECRET_FLAGS:
            name = SECRET_FLAGS[flag]
            where = "[upstream] token" if name == "token" else f"[manager] {name}"
            raise SecretOnCommandLine(
                f"{flag} is not accepted: a secret on the command line is visible to every user of this machine "
                f"(ps). Set the environment variable {SECRET_ENV[name]} or '{where}' in the config file (--config)")


def build_config(args) -> config_mod.ManagerConfig:
    cfg = config_mod.load(args.config) if getattr(args, "config", None) else config_mod.ManagerConfig()
    if getattr(args, "data_dir", None):
        cfg.data_dir = Path(args.data_dir)
    if getattr(args, "listen", None):
        cfg.listen = args.listen
    if getattr(args, "manager_url", None) is not None:
        cfg.manager_url = args.manager_url
    if getattr(args, "allow_open_registration", False):
        cfg.allow_open_registration = True
    for name in ("registration_secret", "admin_token", "metrics_token"):
        if os.environ.get(SECRET_ENV[name]):
            setattr(cfg, name, os.environ[SECRET_ENV[name]])
    up = dataclasses.replace(cfg.upstream)
    if getattr(args, "server", None):
        up.server_url = args.server
    if getattr(args, "manager_id", None):
        up.manager_id = args.manager_id
    if os.environ.get(SECRET_ENV["token"]):
        up.token = os.environ[SECRET_ENV["token"]]
    cfg.upstream = up
    if getattr(args, "threads", None):
        cfg.scheduling = dataclasses.replace(cfg.scheduling, http_threads=args.threads)
    if not cfg.manager_url:
        host, port = parse_listen(cfg.listen, DEFAULT_PORT)
        cfg.manager_url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    cfg.validate()
    return cfg


def serve(args) -> int:
    cfg = build_config(args)
    cfg.check_exposure(parse_listen(cfg.listen, DEFAULT_PORT)[0])
    data_dir = Path(cfg.data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    db = open_sqlite(data_dir / "flamenco-manager.sqlite")
    core = ManagerCore(cfg, db)
    app = make_app(cfg, db, core)
    host, port = parse_listen(cfg.listen, DEFAULT_PORT)
    service = ServiceThread(app, host, port, threads=cfg.scheduling.http_threads, name="flamenco-manager")
    stop = threading.Event()
    signals = {"count": 0}

    def on_signal(signum, frame):
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    core.start_loops()
    if not core.admin_auth.configured():
        log.warning("no admin password or token is set: the admin API and pages refuse everyone until you run "
                    "'flamenco-manager set-admin-password' or 'create-admin-token'")
    log.info("Flamenco Manager on %s (data in %s, %s, %d HTTP threads, %d long-poll slots)", service.url,
             data_dir, f"linked to {cfg.upstream.server_url} as {cfg.upstream.manager_id}"
             if cfg.upstream.linked else "not linked", cfg.scheduling.http_threads, cfg.max_long_polls)
    print(f"flamenco-manager listening on {service.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        core.stop_loops()
        service.stop()
        log.info("stopped")
    return 0


def check_config(args) -> int:
    cfg = build_config(args)
    out = {"data_dir": str(cfg.data_dir), "listen": cfg.listen, "manager_url": cfg.manager_url,
           "linked": cfg.upstream.linked, "http_threads": cfg.scheduling.http_threads,
           "max_long_polls": cfg.max_long_polls, "variables": cfg.variables.to_dict()}
    print(json.dumps(out, indent=2))
    return 0


def _admin_records(args) -> tuple[config_mod.ManagerConfig, AdminAuth]:
    """The admin credentials of the Manager whose data directory the arguments name (it may be running)."""
    cfg = build_config(args)
    data_dir = Path(cfg.data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Persistence(open_sqlite(data_dir / "flamenco-manager.sqlite"))
    return cfg, AdminAuth(db, cfg)


def read_new_password(args) -> str:
    """From --password-file, stdin (--password-stdin) or, on a terminal, a prompt asked twice."""
    if args.password_file:
        text = Path(args.password_file).read_text()
        return text.rstrip("\r\n")
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New admin password: ")
    if getpass.getpass("Again: ") != first:
        raise config_mod.ConfigError("the two passwords differ; nothing was changed")
    return first


def set_admin_password(args) -> int:
    _, auth = _admin_records(args)
    try:
        auth.set_password(read_new_password(args))
    except ValueError as ex:
        raise config_mod.ConfigError(str(ex)) from None
    print("admin password set; sign in on the Manager's pages (/login). Earlier page sign-ins have ended.")
    return 0


def create_admin_token(args) -> int:
    _, auth = _admin_records(args)
    try:
        token_id, token = auth.create_token(args.label or "")
    except ValueError as ex:
        raise config_mod.ConfigError(str(ex)) from None
    if args.json:
        print(json.dumps({"id": token_id, "token": token, "label": args.label or ""}))
    else:
        print(f"admin token {token_id} (shown once; tools send it as 'Authorization: Bearer <token>'):\n{token}")
    return 0


def list_admin_tokens(args) -> int:
    _, auth = _admin_records(args)
    rows = [{"id": t.id, "label": t.label, "created": iso_utc(t.created),
             "last_used": iso_utc(t.last_used) if t.last_used else None} for t in auth.db.admin.tokens()]
    if args.json:
        print(json.dumps({"tokens": rows}))
    else:
        for r in rows:
            print(f"{r['id']}  {r['label'] or '-':30}  created {r['created']}  last used {r['last_used'] or 'never'}")
    return 0


def revoke_admin_token(args) -> int:
    _, auth = _admin_records(args)
    if not auth.revoke_token(args.id):
        print(f"flamenco-manager: no admin token '{args.id}'", file=sys.stderr)
        return 1
    print(f"admin token {args.id} revoked")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flamenco-manager", description="Flamenco Manager",
        epilog="Secrets come from the environment (" + ", ".join(SECRET_ENV.values()) + ") or the config file, "
               "never from the command line.")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def where(p):
        p.add_argument("--config", help="TOML config file (see docs/manager.example.toml)")
        p.add_argument("--data-dir", help="database, task logs, file cache, spool")

    def common(p):
        where(p)
        p.add_argument("--listen", help=f"HOST:PORT (default 0.0.0.0:{DEFAULT_PORT})")
        p.add_argument("--server", help="the Server's URL, to link this Manager (token: env FLAMENCO_MANAGER_TOKEN)")
        p.add_argument("--manager-id", help="this Manager's id at the Server")
        p.add_argument("--manager-url", help="the URL workers use for this Manager (announced upstream)")
        p.add_argument("--threads", type=int, help="HTTP worker threads (long-polls hold one each)")
        p.add_argument("--allow-open-registration", action="store_true",
                       help="listen beyond this machine without a registration secret (anyone may register)")

    p_serve = sub.add_parser("serve", help="run the Manager")
    common(p_serve)
    p_serve.set_defaults(func=serve)
    p_check = sub.add_parser("check-config", help="print the effective configuration")
    common(p_check)
    p_check.set_defaults(func=check_config)
    p_pw = sub.add_parser("set-admin-password", help="set the password for the Manager's pages (asked for)")
    where(p_pw)
    p_pw.add_argument("--password-file", help="read it from this file (its first line)")
    p_pw.add_argument("--password-stdin", action="store_true", help="read it from the first line of stdin")
    p_pw.set_defaults(func=set_admin_password)
    p_tok = sub.add_parser("create-admin-token", help="mint a bearer token for the admin API (printed once)")
    where(p_tok)
    p_tok.add_argument("--label", help="what the token is for")
    p_tok.add_argument("--json", action="store_true", help="print {id, token, label} as JSON")
    p_tok.set_defaults(func=create_admin_token)
    p_list = sub.add_parser("list-admin-tokens", help="the minted admin tokens (not their secrets)")
    where(p_list)
    p_list.add_argument("--json", action="store_true")
    p_list.set_defaults(func=list_admin_tokens)
    p_rev = sub.add_parser("revoke-admin-token", help="revoke a minted admin token")
    where(p_rev)
    p_rev.add_argument("id", help="the token's id (list-admin-tokens)")
    p_rev.set_defaults(func=revoke_admin_token)

    argv = sys.argv[1:] if argv is None else argv
    try:
        refuse_secret_flags(argv)
    except SecretOnCommandLine as ex:
        print(f"flamenco-manager: {ex}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logsetup.configure(logging.DEBUG if args.debug else logging.INFO,
                       "%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        return args.func(args)
    except config_mod.ConfigError as ex:
        print(f"flamenco-manager: configuration error: {ex}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
