"""`flamenco-manager`: the composition root.

    flamenco-manager serve --data-dir D --listen HOST:PORT
        [--server URL --manager-id ID --token T] [--config manager.toml]
        [--registration-secret S] [--admin-token T] [--manager-url URL] [--threads N]
    flamenco-manager check-config --config manager.toml

Command-line options win over the config file, which wins over the defaults.
The token may also come from the FLAMENCO_MANAGER_TOKEN environment variable,
so it need not show in `ps`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from shared.serving import ServiceThread, parse_listen

from . import config as config_mod
from .app import ManagerCore, make_app
from .persistence import open_sqlite

log = logging.getLogger("flamenco.manager")

DEFAULT_PORT = 8083


def build_config(args) -> config_mod.ManagerConfig:
    cfg = config_mod.load(args.config) if getattr(args, "config", None) else config_mod.ManagerConfig()
    if getattr(args, "data_dir", None):
        cfg.data_dir = Path(args.data_dir)
    if getattr(args, "listen", None):
        cfg.listen = args.listen
    for name in ("manager_url", "registration_secret", "admin_token"):
        value = getattr(args, name, None)
        if value is not None:
            setattr(cfg, name, value)
    up = dataclasses.replace(cfg.upstream)
    if getattr(args, "server", None):
        up.server_url = args.server
    if getattr(args, "manager_id", None):
        up.manager_id = args.manager_id
    token = getattr(args, "token", None) or os.environ.get("FLAMENCO_MANAGER_TOKEN")
    if token:
        up.token = token
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flamenco-manager", description="Flamenco Manager")
    parser.add_argument("--debug", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--config", help="TOML config file (see docs/manager.example.toml)")
        p.add_argument("--data-dir", help="database, task logs, file cache, spool")
        p.add_argument("--listen", help=f"HOST:PORT (default 0.0.0.0:{DEFAULT_PORT})")
        p.add_argument("--server", help="the Server's URL, to link this Manager")
        p.add_argument("--manager-id", help="this Manager's id at the Server")
        p.add_argument("--token", help="the manager token (or env FLAMENCO_MANAGER_TOKEN)")
        p.add_argument("--registration-secret", help="workers must register with an HS256 JWT signed with this")
        p.add_argument("--admin-token", help="bearer token for /api/admin, logs and images")
        p.add_argument("--manager-url", help="the URL workers use for this Manager (announced upstream)")
        p.add_argument("--threads", type=int, help="HTTP worker threads (long-polls hold one each)")

    p_serve = sub.add_parser("serve", help="run the Manager")
    common(p_serve)
    p_serve.set_defaults(func=serve)
    p_check = sub.add_parser("check-config", help="print the effective configuration")
    common(p_check)
    p_check.set_defaults(func=check_config)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        return args.func(args)
    except config_mod.ConfigError as ex:
        print(f"flamenco-manager: configuration error: {ex}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
