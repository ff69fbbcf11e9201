"""`flamenco-worker`: the command line around worker.daemon.Worker.

    flamenco-worker --manager URL [--config worker.toml] [--data-dir D] [--nickname N]
                    [--task-types T ...] [--tags T ...] [--single] [--reregister] [--debug]

Signals: SIGTERM/SIGINT return the running task, flush and sign off (a second
one stops at once); SIGUSR1 sends the worker to sleep, SIGUSR2 wakes it.
Exit codes: 0 normal stop, 1 bad configuration or forced stop, 2 refused by the Manager.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from . import config as config_mod
from .daemon import ASLEEP, AWAKE, Worker

log = logging.getLogger("worker")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flamenco-worker", description="Flamenco Worker: runs tasks of a Manager.")
    p.add_argument("--manager", metavar="URL", help="the Manager's URL (or manager_url in the config file)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (see docs/worker.example.toml)")
    p.add_argument("--data-dir", metavar="DIR", help="credentials, queue, PID file and cache (one per worker)")
    p.add_argument("--nickname", help="name shown on the Manager (default: the host name)")
    p.add_argument("--task-types", nargs="+", metavar="TYPE", help="task types this worker runs")
    p.add_argument("--tags", nargs="+", metavar="TAG", help="worker tags for the Manager's scheduling")
    p.add_argument("--registration-secret", metavar="SECRET",
                   help="the Manager's registration secret (default: FLAMENCO_REGISTRATION_SECRET or config)")
    p.add_argument("--long-poll", type=float, metavar="SECONDS", help="how long POST /task may wait for work")
    p.add_argument("--single", action="store_true", help="stop after one task")
    p.add_argument("--reregister", action="store_true", help="forget the stored credentials and register anew")
    p.add_argument("--debug", action="store_true", help="debug logging")
    return p


def config_from_args(args: argparse.Namespace) -> config_mod.WorkerConfig:
    overrides = {
        "manager_url": args.manager,
        "data_dir": args.data_dir,
        "nickname": args.nickname,
        "task_types": args.task_types,
        "tags": args.tags,
        "registration_secret": args.registration_secret or os.environ.get("FLAMENCO_REGISTRATION_SECRET") or None,
        "long_poll_seconds": args.long_poll,
    }
    cfg = config_mod.load(args.config, overrides)
    cfg.validate()
    return cfg


def install_signal_handlers(worker: Worker) -> None:
    stopping = {"count": 0}

    def on_stop(signum, frame):
        stopping["count"] += 1
        if stopping["count"] == 1:
            worker.request_shutdown(f"signal {signal.Signals(signum).name}")
            return
        log.warning("second signal: stopping at once")
        try:
            worker.force_stop()
        finally:
            os._exit(1)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *_: worker.request_state(ASLEEP))
        signal.signal(signal.SIGUSR2, lambda *_: worker.request_state(AWAKE))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    try:
        cfg = config_from_args(args)
    except config_mod.ConfigError as ex:
        print(f"flamenco-worker: {ex}", file=sys.stderr)
        return 1
    cfg.data_path().mkdir(parents=True, exist_ok=True)
    worker = Worker(cfg, single=args.single)
    if args.reregister:
        worker.client.forget_credentials()
    install_signal_handlers(worker)
    log.info("worker %s for %s, task types %s, data in %s", cfg.nickname or "(host name)", cfg.manager_url,
             " ".join(cfg.task_types), cfg.data_path())
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
